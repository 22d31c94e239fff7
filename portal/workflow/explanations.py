"""Draft, regenerate and approve the plain-language explanation a patient reads.

Release rule: an explain job (request_explanation → run_explanation) drafts an explanation
after the AI result (draft_explanation);
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
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import record
from inference.explainer import ExplanationPayload, confidence_band, explain
from inference.explainer.checks import finding_problems, mentioned_classes
from inference.explainer.offline import offline_text, plain_name
from portal.workflow.jobs import enqueue, run_claimed
from scans.explanations import ExplanationStatus
from scans.findings import TUMOUR_CLASSES, UNASSESSABLE
from scans.jobs import JobKind, JobState
from scans.models import (
    Job,
    PatientExplanation,
    Prediction,
    Review,
    Study,
)
from scans.reviews import ReviewDecision

logger = logging.getLogger(__name__)


class ExplanationError(ValueError):
    """The explanation cannot be approved. `proposed` is the text the radiologist should see
    instead (drafted for the signed finding), when there is one."""

    def __init__(self, message: str, proposed: str | None = None) -> None:
        super().__init__(message)
        self.proposed = proposed


def same_text(a: str, b: str) -> bool:
    """Equal once newlines and runs of whitespace are normalised: a browser sends a
    textarea's newlines as CRLF, so an untouched draft must still count as untouched."""
    return " ".join(a.split()) == " ".join(b.split())


def clean_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


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
    if review is not None:
        return payload_for(study, review.final_class, review.decision, review.prediction)
    prediction = study.primary_prediction()
    if prediction is None or not prediction.is_brain_mri or not prediction.label:
        return None
    return ExplanationPayload(
        final_class=prediction.label,
        confidence_band=_band(prediction),
        overridden=False,
        language=explanation_language(),
    )


def payload_for(
    study: Study, final_class: str, decision: str, prediction: Prediction | None = None
) -> ExplanationPayload:
    """The payload for a decision the radiologist is about to sign (or has signed)."""
    return ExplanationPayload(
        final_class=final_class,
        # Images that could not be assessed: the AI's confidence is beside the point.
        confidence_band="unknown" if final_class == UNASSESSABLE else _band(prediction or study.primary_prediction()),
        overridden=decision == ReviewDecision.OVERRIDE,
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


# --- The explain job (queue "llm") -----------------------------------------------------------


def request_explanation(study: Study, *, regenerate: bool = False) -> Job:
    """The explain job for the study. Returns the live one if there is one; without
    `regenerate`, a finished job whose draft exists is returned as it is."""
    with transaction.atomic():
        active = study.jobs.active().filter(kind=JobKind.EXPLAIN).first()
        if active:
            return active
        if not regenerate:
            done = study.jobs.filter(kind=JobKind.EXPLAIN, state=JobState.DONE).order_by("-finished_at", "-pk").first()
            if done and study.explanations.exists():
                return done
        try:
            with transaction.atomic():
                job = Job.objects.create(kind=JobKind.EXPLAIN, study=study)
        except IntegrityError:  # a concurrent request created it first
            return study.jobs.active().get(kind=JobKind.EXPLAIN)
        enqueue(job)
    return job


def run_explanation(job_id: int, *, task_id: str | None = None) -> Job | None:
    """Draft the patient explanation. LLM timeouts retry with backoff; other errors fail the
    job with the message. The study status does not depend on it: the radiologist can review
    without a draft."""
    return run_claimed(job_id, JobKind.EXPLAIN, task_id, lambda job: draft_explanation(job.study), Job.done)


# --- Approval at sign-off ----------------------------------------------------------------------


def proposed_text(study: Study, explanation: PatientExplanation | None, final_class: str, decision: str) -> str:
    """The exact text the patient gets if the radiologist signs this decision and leaves the
    explanation as it is: the draft when it was written for this finding and decision,
    otherwise the offline text redrafted for them. The review page shows it before signing."""
    if _written_for(explanation, final_class, decision):
        return explanation.text
    return offline_text(payload_for(study, final_class, decision))


def _written_for(explanation: PatientExplanation | None, final_class: str, decision: str) -> bool:
    overridden = decision == ReviewDecision.OVERRIDE
    return explanation is not None and _payload_of(explanation) == (final_class, overridden)


def previews(study: Study, explanation: PatientExplanation | None) -> dict[str, str]:
    """proposed_text for every decision the review form offers, keyed "decision:class"
    (the form's script shows the one for the radiologist's current choice)."""
    prediction = study.primary_prediction()
    out: dict[str, str] = {}
    if prediction is not None and prediction.is_brain_mri and prediction.label:
        out[f"{ReviewDecision.CONFIRM}:"] = proposed_text(study, explanation, prediction.label, ReviewDecision.CONFIRM)
    for final_class in TUMOUR_CLASSES:
        out[f"{ReviewDecision.OVERRIDE}:{final_class}"] = proposed_text(
            study, explanation, final_class, ReviewDecision.OVERRIDE
        )
    out[f"{ReviewDecision.UNASSESSABLE}:"] = proposed_text(study, explanation, UNASSESSABLE, ReviewDecision.UNASSESSABLE)
    return out


def is_edit(text: str | None, proposed: str) -> bool:
    """Whether the radiologist changed the proposed text (None: approve it as proposed)."""
    return text is not None and not same_text(text, proposed)


def _refuse_if_off_finding(text: str, final_class: str, proposed: str) -> None:
    """The rule of sign-off: the approved text names the signed finding and no other."""
    problems = finding_problems(text, final_class)
    if not problems:
        return
    others = sorted(mentioned_classes(text) - {final_class})
    final = plain_name(final_class)
    if others:
        message = _(
            "The patient explanation speaks of %(others)s, but the signed finding is %(final)s. "
            "Nothing was signed: the explanation below is now drafted for %(final)s; read it, edit it "
            "if needed, and sign again."
        ) % {"others": ", ".join(plain_name(c) for c in others), "final": final}
    else:
        message = _(
            "The patient explanation does not name the signed finding (%(final)s). Nothing was signed: "
            "the explanation below is drafted for %(final)s; read it, edit it if needed, and sign again."
        ) % {"final": final}
    raise ExplanationError(message, proposed=proposed)


def _edited_text(text: str | None, proposed: str) -> str:
    """The radiologist's edit as it will be approved; an empty one is refused."""
    edited_text = clean_text(text or "")
    if not edited_text:
        raise ExplanationError(
            _("The patient explanation is empty. Nothing was signed: the explanation below is the proposed text; "
              "read it and sign again."),
            proposed=proposed,
        )
    return edited_text


def _offline_draft(
    study: Study, explanation: PatientExplanation | None, review: Review, proposed: str
) -> PatientExplanation:
    """A new offline DRAFT of the proposed text, for a review no draft was written for."""
    reason = (
        "No draft existed at sign-off; offline text used." if explanation is None else
        f"Draft was written for {explanation.final_class or 'no class'}; offline text for the final class "
        f"{review.final_class} used at sign-off."
    )
    return PatientExplanation.objects.create(
        study=study, review=review, final_class=review.final_class, language=explanation_language(),
        text=proposed, provider="offline", model="", flag_reason=reason, status=ExplanationStatus.DRAFT,
    )


def _as_draft(explanation: PatientExplanation) -> PatientExplanation:
    """The explanation itself when it is a DRAFT. One approved with an earlier version (or
    superseded) becomes an unsaved DRAFT copy, so the earlier version's record stays as it was."""
    if explanation.status != ExplanationStatus.DRAFT:
        explanation.pk = None
        explanation._state.adding = True
        explanation.status = ExplanationStatus.DRAFT
        explanation.approved_by = None
        explanation.approved_at = None
    return explanation


def _save_approved(explanation: PatientExplanation, *, review: Review, user: Any, edited_text: str | None) -> None:
    """Save the explanation APPROVED with the review (with the radiologist's edit, if any) and
    supersede every other draft or approved explanation of the study."""
    if edited_text is not None:
        explanation.text = edited_text
        explanation.edited_by = user
    explanation.final_class = review.final_class
    explanation.review = review
    explanation.status = ExplanationStatus.APPROVED
    explanation.approved_by = user
    explanation.approved_at = timezone.now()
    explanation.save()
    review.study.explanations.exclude(pk=explanation.pk).filter(
        status__in=[ExplanationStatus.DRAFT, ExplanationStatus.APPROVED]
    ).update(status=ExplanationStatus.SUPERSEDED)


@transaction.atomic
def approve_explanation(
    explanation: PatientExplanation | None, *, review: Review, user: Any, text: str | None = None
) -> PatientExplanation:
    """Approve the explanation with the radiologist's signed review.

    The proposed text is the draft when it was written for the review's finding and
    decision, otherwise the offline text for them (an override redrafts). `text` None or
    the same as the proposed text once whitespace is normalised: the proposed text is
    approved. Anything else is the radiologist's edit, kept as written (edited_by).
    Whatever is approved must name the signed finding and no other, or ExplanationError
    (with the proposed text, for the page to show) is raised and nothing is approved.
    Every other explanation of the study is superseded, so exactly one is approved.
    """
    study = review.study
    if explanation is not None and explanation.study_id != study.pk:
        raise ExplanationError("The explanation belongs to another study.")
    proposed = proposed_text(study, explanation, review.final_class, review.decision)
    edited = is_edit(text, proposed)
    approved_text = _edited_text(text, proposed) if edited else proposed
    _refuse_if_off_finding(approved_text, review.final_class, proposed)

    regenerated = not _written_for(explanation, review.final_class, review.decision)
    if regenerated:
        explanation = _offline_draft(study, explanation, review, proposed)
    else:
        explanation = _as_draft(explanation)
    _save_approved(explanation, review=review, user=user, edited_text=approved_text if edited else None)
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
