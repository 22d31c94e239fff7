"""Plain-language explanations of a signed result, for patients.

Django-light: the offline texts use Django's gettext, nothing here touches the database or
imports scans/portal. Callers pass the settings dict (settings.EXPLAINER) in.

    from inference.explainer import ExplanationPayload, confidence_band, explain
    result = explain(ExplanationPayload("glioma", confidence_band(0.93), False, "en"), settings.EXPLAINER)
"""
from inference.explainer.payload import (
    CONFIDENCE_BANDS,
    FINDINGS,
    TUMOUR_CLASSES,
    UNASSESSABLE,
    ExplanationPayload,
    confidence_band,
)
from inference.explainer.service import ExplanationResult, explain

__all__ = [
    "CONFIDENCE_BANDS",
    "FINDINGS",
    "TUMOUR_CLASSES",
    "UNASSESSABLE",
    "ExplanationPayload",
    "ExplanationResult",
    "confidence_band",
    "explain",
]
