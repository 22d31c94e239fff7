"""The only data about a patient's result that may leave the portal.

`ExplanationPayload` is an allowlist by construction: four fields, each checked against a
closed set of values, a frozen slotted dataclass so nothing else can be attached to it.
A name, an ID, a date, a note or a pixel has no field to go in, and a free-text value is
refused by validation. Anything sent to a remote language model is rendered from this
object alone (see prompt.py).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from inference.data import CLASSES as TUMOUR_CLASSES  # the classifier's classes (one definition in the ML core)

# What a radiologist can sign: a tumour class, or "the images could not be assessed"
# (scans.findings.UNASSESSABLE). The patient text for the latter names no class at all.
UNASSESSABLE = "unassessable"
FINDINGS = (*TUMOUR_CLASSES, UNASSESSABLE)

# Confidence bands, from the calibrated confidence of the AI result. "unknown" is used when
# the report has no AI result to speak of (e.g. the radiologist classified a study the model
# could not read).
CONFIDENCE_BANDS = ("high", "moderate", "low", "unknown")
HIGH_CONFIDENCE = 0.90
MODERATE_CONFIDENCE = 0.70

_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z]{2,4})?$")


def confidence_band(confidence: float | None) -> str:
    """Map a calibrated probability in [0, 1] to a band a patient text can speak about."""
    if confidence is None:
        return "unknown"
    value = float(confidence)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"confidence must lie in [0, 1], got {value!r}")
    if value >= HIGH_CONFIDENCE:
        return "high"
    if value >= MODERATE_CONFIDENCE:
        return "moderate"
    return "low"


@dataclass(frozen=True, slots=True)
class ExplanationPayload:
    final_class: str
    confidence_band: str
    # True when the radiologist's final class differs from the AI result (an override).
    overridden: bool
    language: str = "en"

    def __post_init__(self) -> None:
        if self.final_class not in FINDINGS:
            raise ValueError(f"final_class must be one of {FINDINGS}, got {self.final_class!r}")
        if self.confidence_band not in CONFIDENCE_BANDS:
            raise ValueError(f"confidence_band must be one of {CONFIDENCE_BANDS}, got {self.confidence_band!r}")
        if not isinstance(self.overridden, bool):
            raise ValueError("overridden must be a bool")
        if not isinstance(self.language, str) or not _LANGUAGE_RE.match(self.language):
            raise ValueError(f"language must be a language code such as 'en', got {self.language!r}")

    @property
    def decision(self) -> str:
        return "overridden" if self.overridden else "confirmed"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
