"""The AI's scope, decided from a DICOM header: the one check every entry uses before any AI.

`assess(ds)` takes a pydicom Dataset (a whole file or only its header) and answers a `Verdict`:

- `image` False: the object is not an image the portal stores as slices (a segmentation, a
  structured report, a presentation state, a key-object selection, an RT object, an
  encapsulated PDF, a raw-data object...). `problem` names the SOP class; the upload answers
  415 with it (scans.dicom.parse raises NotAnImage).
- `reason` non-empty: an image the portal stores (it belongs to the record) but the classifier
  must not label: another modality, another body part, or a sequence the model never saw.
  The series is marked with the reason and gets no class, probabilities, heat map or
  explanation.
- otherwise in scope as far as the header tells; the image check (inference.ood) still runs.

A missing tag never rules an image out: it falls through to the image check. The rules and
their reasons are in docs/scope.md. This module imports no Django, so the DICOM listener and
scripts can call it directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from pydicom.dataset import Dataset
from pydicom.uid import UID

PREFIX = "outside the model's scope"
# Image storage SOP classes that are not pictures of anatomy the classifier could read
# (RT images are portal images of a treatment beam).
_NOT_SLICE_KEYWORDS = ("RTImage",)
BRAIN_BODY_PARTS = {
    "HEAD", "BRAIN", "SKULL", "CRANIUM", "CEREBRUM", "HEADNECK", "HEAD_NECK",
    # vendor/locale spellings seen in the wild
    "KOPF", "SCHAEDEL", "SCHADEL", "CERVEAU", "TETE", "CABEZA", "CRANEO", "CRANE", "TESTA", "CRANIO",
}
# Anatomic Region Sequence codes for head / brain / skull (SNOMED CT and legacy SNOMED RT).
BRAIN_REGION_CODES = {"69536005", "12738006", "89546000", "T-D1100", "T-A0100", "T-11100", "774007", "T-D1000"}
_BRAIN_WORDS = re.compile(r"\b(head|brain|skull|cran|cerebr)", re.IGNORECASE)

# Sequence rules: (ImageType values, SequenceName pattern, description pattern, what it is).
_SEQUENCES: tuple[tuple[set[str], str, str, str], ...] = (
    ({"DIFFUSION", "ADC", "TRACEW", "TRACE", "EADC", "FA", "DTI", "ISODWI"},
     r"(^|[*_])(ep_b|epb|re_b|ez_b)|dwi|diff|tensor",
     r"\b(dwi|diff\w*|adc|trace\w*|dti|tensor)\b", "diffusion"),
    ({"PERFUSION", "PERF", "CBF", "CBV", "MTT", "TTP", "DSC", "ASL"}, r"perf|asl|pasl|pcasl",
     r"\b(perf\w*|dsc|dce|asl|pcasl|pasl|cbf|cbv|mtt|ttp)\b", "perfusion"),
    ({"SWI", "SWI_MIP", "MNIP", "PHASE_MAP", "SUSCEPTIBILITY"}, r"swi",
     r"\b(swi|swan|susc\w*|sw[ai]p|venobold)\b", "susceptibility-weighted"),
    ({"LOCALIZER", "SCOUT", "SURVEY"}, r"(^|[*_])(scout|loc)",
     r"\b(loc|localiz\w*|localis\w*|scout|survey|3 ?plane|tripilot)\b", "localiser"),
    ({"T1_MAP", "T2_MAP", "T2STAR_MAP", "R2STAR_MAP", "MAP", "MOCO", "FMRI", "BOLD", "MIP", "MIN IP", "SUBTRACTION",
      "SUB", "PROJECTION IMAGE", "MOSAIC"},
     r"bold|fmri", r"\b(map|mip|mosaic|moco\w*|bold|fmri|resting|subtract\w*|sub)\b", "derived or functional map"),
)


@dataclass(frozen=True)
class Verdict:
    image: bool        # False: not an image object; never stored as slices
    reason: str        # non-empty: stored, but the AI gives no class (see PREFIX)
    problem: str = ""  # why it is not an image (for the 415)

    @property
    def in_scope(self) -> bool:
        return self.image and not self.reason


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _values(ds: Dataset, keyword: str) -> set[str]:
    return {v.strip().upper() for v in _text(ds, keyword).split("\\") if v.strip()}


def sop_class_of(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = (meta.get("MediaStorageSOPClassUID") if meta is not None else None) or ds.get("SOPClassUID")
    return str(uid or "").strip()


def sop_class_problem(ds: Dataset) -> str:
    """Empty when the SOP class is an image storage class (or missing: a hand-made file then
    falls through to the other checks); else a sentence naming the class."""
    uid = sop_class_of(ds)
    if not uid:
        return ""
    sop = UID(uid)
    name, keyword = sop.name, getattr(sop, "keyword", "") or ""
    if name == uid:  # not in pydicom's dictionary: a private class. Judge by the pixel data.
        return "" if "PixelData" in ds or "FloatPixelData" in ds else f"SOP class {uid} is not an image object"
    if "Image Storage" in name and keyword not in _NOT_SLICE_KEYWORDS:
        return ""
    return f"{name} ({uid}) is not an image the AI can read; it is not stored as slices"


def _modality_reason(ds: Dataset) -> str:
    modality = _text(ds, "Modality").upper()
    if modality and modality != "MR":
        return f"{PREFIX}: modality {modality}"
    return ""


def _regions(ds: Dataset) -> Iterable[tuple[str, str]]:
    for item in ds.get("AnatomicRegionSequence") or []:
        yield str(item.get("CodeValue", "") or "").strip(), str(item.get("CodeMeaning", "") or "").strip()


def _body_part_reason(ds: Dataset) -> str:
    part = re.sub(r"[^A-Z_]", "", _text(ds, "BodyPartExamined").upper())
    if part and part not in BRAIN_BODY_PARTS and not _BRAIN_WORDS.search(part.replace("_", " ")):
        return f"{PREFIX}: body part {_text(ds, 'BodyPartExamined').upper()}"
    for code, meaning in _regions(ds):
        if code in BRAIN_REGION_CODES or _BRAIN_WORDS.search(meaning):
            continue
        if code or meaning:
            return f"{PREFIX}: body part {meaning or code}"
    return ""


def sequence_kind(ds: Dataset) -> str:
    """'diffusion', 'perfusion', ... when the header names a sequence the model never saw."""
    image_type = _values(ds, "ImageType")
    sequence_name = _text(ds, "SequenceName").lower()
    description = re.sub(r"[^a-z0-9]+", " ", " ".join(_text(ds, k) for k in ("SeriesDescription", "ProtocolName")).lower())
    b_value = ds.get("DiffusionBValue")
    if b_value not in (None, "") or "DiffusionGradientDirectionSequence" in ds or "MRDiffusionSequence" in ds:
        return "diffusion"
    for types, name_pattern, description_pattern, kind in _SEQUENCES:
        if image_type & types or (sequence_name and re.search(name_pattern, sequence_name)) or (
            description and re.search(description_pattern, description)
        ):
            return kind
    return ""


def _sequence_reason(ds: Dataset) -> str:
    kind = sequence_kind(ds)
    return f"{PREFIX}: sequence not supported ({kind})" if kind else ""


def assess(ds: Dataset) -> Verdict:
    """The scope verdict for one DICOM object (see the module docstring)."""
    problem = sop_class_problem(ds)
    if problem:
        return Verdict(image=False, reason="", problem=problem)
    for rule in (_modality_reason, _body_part_reason, _sequence_reason):
        reason = rule(ds)
        if reason:
            return Verdict(image=True, reason=reason)
    return Verdict(image=True, reason="")

