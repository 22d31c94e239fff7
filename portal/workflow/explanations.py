"""Draft, regenerate and approve the plain-language explanation a patient reads.

Release rule: the pipeline drafts an explanation after the AI result (draft_explanation);
the radiologist's sign-off approves one with the signed review (approve_explanation); the
patient portal shows only an APPROVED explanation linked to the study's latest signed review
(approved_explanation_for).

Privacy: the explainer receives an ExplanationPayload built here from four values (final
class, confidence band, confirmed/overridden, language) and nothing else from the study.
"""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import record
from inference.explainer import ExplanationPayload, confidence_band, explain
from inference.explainer.offline import offline_text
from scans.models import ExplanationStatus, PatientExplanation, Prediction, Review, ReviewDecision, Study

logger = logging.getLogger(__name__)


class ExplanationError(ValueError):
    pass


def explanation_language() -> str:
    return (getattr(settings, "LANGUAGE_CODE", "en") or "en").split("-")[0].lower()


def _band(prediction: Prediction | None) -> str:
    if prediction is None or not prediction.is_brain_mri or not prediction.label:
        return "unknown"
    return confidence_band(prediction.confidence)


def build_payload(study: Study, review: Review | None = None) -> ExplanationPayload | None:
    """The payload for the study: from the review when there is one, else from the AI result
    (worded as if the radiologist confirms it: the patient sees it only after they have).
    None when there is no class to explain yet (no review, and no AI class)."""
    from portal.workflow.review import primary_prediction

    if review is not None:
        prediction = review.prediction or primary_prediction(study)
        return ExplanationPayload(
            final_class=review.final_class,
            confidence_band=_band(prediction),
            overridden=review.decision == ReviewDecision.OVERRIDE,
            language=explanation_language(),
        )
    prediction = primary_prediction(study)
    if prediction is None or not prediction.is_brain_mri or not prediction.label:
        return None
    return ExplanationPayload(
        final_class=prediction.label,
        confidence_band=_band(prediction),
        overridden=False,
        language=explanation_language(),
    )


def _payload_of(explanation: PatientExplanation) -> tuple[str, bool]:
    """(final class, overridden) an explanation was written for."""
    overridden = explanation.review is not None and explanation.review.decision == ReviewDecision.OVERRIDE
    return explanation.final_class, overridden


def draft_explanation(study: Study) -> PatientExplanation | None:
    """Draft an explanation with the configured provider and store it as the study's one
    DRAFT (older drafts are superseded). Returns None when there is nothing to explain yet."""
    review = study.reviews.order_by("-version").first()
    payload = build_payload(study, review)
    if payload is None:
        logger.info("study %s: no class to explain yet; no draft made", study.pk)
        return None
    # The remote call happens outside any transaction: it may take seconds.
    result = explain(payload, getattr(settings, "EXPLAINER", {}))
    with transaction.atomic():
        study.explanations.filter(status=ExplanationStatus.DRAFT).update(status=ExplanationStatus.SUPERSEDED)
        explanation = PatientExplanation.objects.create(
            study=study,
            # Drafts written from a review remember it: approval compares it with the signed one.
            review=review,
            final_class=payload.final_class,
            language=payload.language,
            text=result.text,
            provider=result.provider,
            model=result.model,
            fell_back=result.fell_back,
            flagged=result.flagged,
            flag_reason=result.flag_reason,
            status=ExplanationStatus.DRAFT,
        )
    return explanation


def _offline_for_review(study: Study, review: Review, reason: str) -> PatientExplanation:
    payload = build_payload(study, review)
    assert payload is not None  # a review always has a final class
    return PatientExplanation.objects.create(
        study=study,
        review=review,
        final_class=payload.final_class,
        language=payload.language,
        text=offline_text(payload),
        provider="offline",
        model="",
        flag_reason=reason,
        status=ExplanationStatus.DRAFT,
    )


@transaction.atomic
def approve_explanation(
    explanation: PatientExplanation | None, *, review: Review, user: Any, text: str | None = None
) -> PatientExplanation:
    """Approve the explanation with the radiologist's signed review.

    - `text` given (and different): the radiologist's edit is kept as it is (edited_by).
    - Not edited, but written for another class or decision than the review's (e.g. drafted
      for the AI class and then overridden): replaced by the offline text for the final class.
    - `explanation` None (no draft was ever made): the offline text for the review.
    Every other explanation of the study is superseded, so exactly one is approved.
    """
    study = review.study
    if explanation is not None and explanation.study_id != study.pk:
        raise ExplanationError("The explanation belongs to another study.")
    edited = text is not None and (explanation is None or text.strip() != explanation.text.strip())
    if edited and not text.strip():
        raise ExplanationError("The explanation text is empty.")

    regenerated = False
    if explanation is None:
        explanation = _offline_for_review(study, review, "No draft existed at sign-off; offline text used.")
        regenerated = True
    elif not edited and _payload_of(explanation) != (
        review.final_class,
        review.decision == ReviewDecision.OVERRIDE,
    ):
        explanation = _offline_for_review(
            study,
            review,
            f"Draft was written for {explanation.final_class or 'no class'}; offline text for the final class "
            f"{review.final_class} used at sign-off.",
        )
        regenerated = True
    elif explanation.status != ExplanationStatus.DRAFT:
        # An explanation approved with an earlier version (or superseded) is copied, so the
        # earlier version's record stays as it was.
        explanation.pk = None
        explanation._state.adding = True
        explanation.status = ExplanationStatus.DRAFT
        explanation.approved_by = None
        explanation.approved_at = None

    if edited:
        explanation.text = text.strip()
        explanation.edited_by = user
    explanation.final_class = review.final_class
    explanation.review = review
    explanation.status = ExplanationStatus.APPROVED
    explanation.approved_by = user
    explanation.approved_at = timezone.now()
    explanation.save()
    study.explanations.exclude(pk=explanation.pk).filter(
        status__in=[ExplanationStatus.DRAFT, ExplanationStatus.APPROVED]
    ).update(status=ExplanationStatus.SUPERSEDED)
    record(
        "explanation.approve",
        actor=user,
        obj=explanation,
        patient_id=study.patient_id,
        study_id=study.pk,
        review_version=review.version,
        edited=edited,
        regenerated=regenerated,
        provider=explanation.provider,
    )
    return explanation


def approved_explanation_for(study: Study, review: Review | None = None) -> PatientExplanation | None:
    """The explanation a patient may read: APPROVED and linked to the latest signed review."""
    review = review if review is not None else study.latest_review()
    if review is None:
        return None
    return (
        study.explanations.filter(status=ExplanationStatus.APPROVED, review=review, approved_at__isnull=False)
        .order_by("-approved_at", "-id")
        .first()
    )
