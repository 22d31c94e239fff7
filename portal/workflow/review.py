"""The radiologist's decision: confirm or override the AI result, notes, sign-off and
amendments.

A report is a chain of Review rows. Version 1 is the first sign-off and releases the study
to the patient (AWAITING_REVIEW → SIGNED). Every later change is an amendment: a new row with
the next version number (SIGNED/AMENDED → AMENDED); earlier rows are never touched. The
patient always sees the latest signed version.

Concurrency: the study row is locked (SELECT ... FOR UPDATE) while its status is checked and
the next version is written, so two radiologists signing at once cannot both create version 1;
the unique (study, version) constraint is the backstop on databases without row locks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import record
from portal.workflow import explanations
from portal.workflow.notifications import notify_report_ready
from scans.explanations import ExplanationStatus
from scans.findings import TUMOUR_CLASSES, UNASSESSABLE, class_label
from scans.models import (
    ClinicalNote,
    PatientExplanation,
    Prediction,
    Review,
    Study,
    StudyStatus,
)
from scans.reviews import ReviewDecision, UnassessableReason

MAX_TEXT = 20_000
# Sent inside the sign-off/amendment transaction with the new signed version (review=...).
report_signed = Signal()


class ReviewError(Exception):
    """A review action that cannot be done. `status` is the HTTP status a view should answer:
    400 for bad input, 409 when the study is in the wrong state for the action."""

    def __init__(self, message: str, *, status: int = 400, field_values: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        # Form values the page should show instead of what was posted (e.g. the redrafted
        # patient explanation after a refused sign-off).
        self.field_values = field_values or {}


@dataclass(frozen=True)
class SignOffResult:
    review: Review
    explanation: PatientExplanation


# --- Sign-off and amendment -------------------------------------------------------------------


def _require_reporter(user: Any) -> None:
    """The service's guard, for callers other than the views (which check it first)."""
    if not getattr(user, "may_report", False):
        raise ReviewError(_("Only a radiologist may sign, amend or add to a report."), status=403)


def _clean_text(value: str | None, field: str) -> str:
    text = (value or "").strip()
    if len(text) > MAX_TEXT:
        raise ReviewError(_("%(field)s is too long (at most %(n)d characters).") % {"field": field, "n": MAX_TEXT})
    return text


def _resolve_decision(
    prediction: Prediction | None, decision: str, final_class: str | None, reason: str, unassessable_reason: str
) -> tuple[str, str, str]:
    """Check the decision and return (decision, final_class, unassessable_reason)."""
    if decision not in ReviewDecision.values:
        raise ReviewError(_("Choose whether to confirm or override the AI result, or that the images cannot be assessed."))
    if decision == ReviewDecision.UNASSESSABLE:
        if final_class not in (None, "", UNASSESSABLE):
            raise ReviewError(_("Images that cannot be assessed get no tumour class; leave the final class empty."))
        if unassessable_reason not in UnassessableReason.values:
            raise ReviewError(_("Choose why the images cannot be assessed."))
        if not reason:
            raise ReviewError(_("Say why the images cannot be assessed (a reason is required)."))
        return decision, UNASSESSABLE, unassessable_reason
    if decision == ReviewDecision.CONFIRM:
        if prediction is None or not prediction.is_brain_mri or prediction.label not in TUMOUR_CLASSES:
            raise ReviewError(
                _("There is no AI tumour class to confirm: override with a final class and a reason, "
                  "or record that the images cannot be assessed.")
            )
        if final_class and final_class != prediction.label:
            raise ReviewError(
                _("Confirming keeps the AI class (%(ai)s); to record %(final)s, override with a reason.")
                % {"ai": class_label(prediction.label), "final": class_label(final_class)}
            )
        return decision, prediction.label, ""
    if final_class not in TUMOUR_CLASSES:
        raise ReviewError(_("Choose the final class for the override."))
    if not reason:
        raise ReviewError(_("An override needs a reason."))
    return decision, final_class, ""


def latest_explanation(study: Study) -> PatientExplanation | None:
    """The explanation under review: the current draft, or the approved one."""
    return (
        study.explanations.exclude(status=ExplanationStatus.SUPERSEDED).order_by("-created_at", "-id").first()
    )


def _approve_explanation(
    study: Study, review: Review, user: Any, explanation_text: str | None
) -> tuple[PatientExplanation, bool]:
    """Approve the newest explanation of the study with this review (the rules are
    portal.workflow.explanations.approve_explanation's). Returns (approved explanation,
    edited by the radiologist). A refusal carries the proposed text back to the form."""
    explanation = latest_explanation(study)
    proposed = explanations.proposed_text(study, explanation, review.final_class, review.decision)
    edited = explanations.is_edit(explanation_text, proposed)
    try:
        approved = explanations.approve_explanation(explanation, review=review, user=user, text=explanation_text)
    except explanations.ExplanationError as exc:
        values = {"explanation_text": exc.proposed} if exc.proposed is not None else {}
        raise ReviewError(str(exc), field_values=values) from exc
    return approved, edited


@dataclass(frozen=True)
class _Submission:
    """What the radiologist submitted for the next version of the report."""

    decision: str
    final_class: str | None
    reason: str
    report_text: str
    explanation_text: str | None
    unassessable_reason: str


def _cleaned(submission: _Submission, *, amendment: bool) -> _Submission:
    """The submission with its texts stripped and length-checked; an amendment needs a reason."""
    explanation_text = submission.explanation_text
    cleaned = replace(
        submission,
        reason=_clean_text(submission.reason, _("Reason")),
        report_text=_clean_text(submission.report_text, _("Report")),
        explanation_text=None if explanation_text is None else _clean_text(explanation_text, _("Explanation")),
    )
    if amendment and not cleaned.reason:
        raise ReviewError(_("An amendment needs a reason."))
    return cleaned


def _check_state(locked: Study, *, amendment: bool) -> None:
    """Refuse (409) unless the study may take this version: an amendment only for a released
    report, a first sign-off only for a study awaiting review."""
    if amendment:
        if not locked.is_released:
            raise ReviewError(_("Only a signed report can be amended; sign it off first."), status=409)
    elif locked.status != StudyStatus.AWAITING_REVIEW:
        if locked.is_released:
            raise ReviewError(_("This report is already signed: changes go through an amendment."), status=409)
        raise ReviewError(
            _("This study is not awaiting review (status: %(status)s).") % {"status": locked.get_status_display()},
            status=409,
        )


def _resolved(submission: _Submission, prediction: Prediction | None) -> _Submission:
    """The submission with its decision checked and its final class settled (_resolve_decision)."""
    decision, final_class, unassessable_reason = _resolve_decision(
        prediction, submission.decision, submission.final_class, submission.reason, submission.unassessable_reason
    )
    return replace(submission, decision=decision, final_class=final_class, unassessable_reason=unassessable_reason)


def _create_review(
    locked: Study, submission: _Submission, *, version: int, prediction: Prediction | None, user: Any
) -> Review:
    """Insert the new signed version; a concurrent sign-off of the same version is refused (409)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return Review.objects.create(
                study=locked, version=version, prediction=prediction, author=user, created_at=now, signed_at=now,
                decision=submission.decision, final_class=submission.final_class,
                unassessable_reason=submission.unassessable_reason,
                reason=submission.reason, report_text=submission.report_text,
            )
    except IntegrityError as exc:
        raise ReviewError(_("Someone else signed this study at the same moment; reload the page."), status=409) from exc


def _audit_version(
    review: Review,
    *,
    previous: Review | None,
    explanation: PatientExplanation,
    edited: bool,
    addendum: int,
    amendment: bool,
    user: Any,
    request: Any,
) -> None:
    """The audit row of a sign-off ("review.sign_off") or amendment ("review.amend")."""
    prediction = review.prediction
    record(
        "review.amend" if amendment else "review.sign_off",
        request=request,
        actor=user,
        obj=review,
        patient_id=review.study.patient_id,
        study_id=review.study.pk,
        version=review.version,
        decision=review.decision,
        final_class=review.final_class,
        unassessable_reason=review.unassessable_reason,
        ai_class=prediction.label if prediction else None,
        ai_model_version=prediction.model_version if prediction else None,
        previous_version=previous.version if previous else None,
        previous_final_class=previous.final_class if previous else None,
        explanation_id=explanation.pk,
        explanation_edited=edited,
        covers_new_images=addendum,
    )


def _write_version(
    study: Study, submission: _Submission, *, user: Any, amendment: bool, request: Any = None
) -> SignOffResult:
    """Sign the next version of the study's report (the first sign-off, or an amendment) with
    its approved explanation, all in one transaction on the locked study."""
    _require_reporter(user)
    submission = _cleaned(submission, amendment=amendment)
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        _check_state(locked, amendment=amendment)
        prediction = locked.primary_prediction()
        submission = _resolved(submission, prediction)
        version = (locked.reviews.aggregate(v=Max("version"))["v"] or 0) + 1
        previous = locked.latest_review()
        # Images held as an addendum (scans.addendum): this version covers and releases them.
        addendum = locked.new_images_after_sign_off().count() if amendment else 0
        review = _create_review(locked, submission, version=version, prediction=prediction, user=user)
        locked.transition_to(StudyStatus.AMENDED if amendment else StudyStatus.SIGNED)
        explanation, edited = _approve_explanation(locked, review, user, submission.explanation_text)
        _audit_version(
            review, previous=previous, explanation=explanation, edited=edited, addendum=addendum,
            amendment=amendment, user=user, request=request,
        )
        transaction.on_commit(lambda: notify_report_ready(review, request=request))
        # Receivers act in this transaction (portal.workflow.pacs queues the SR and key image).
        report_signed.send(sender=Review, review=review)
    study.refresh_from_db()
    return SignOffResult(review=review, explanation=explanation)


def sign_off(
    study: Study,
    *,
    user: Any,
    decision: str,
    final_class: str | None = None,
    reason: str = "",
    report_text: str = "",
    explanation_text: str | None = None,
    unassessable_reason: str = "",
    request: Any = None,
) -> SignOffResult:
    """First sign-off: version 1, AWAITING_REVIEW → SIGNED, explanation approved. Refused for
    a study in any other state (a released one changes only through `amend`)."""
    submission = _Submission(decision, final_class, reason, report_text, explanation_text, unassessable_reason)
    return _write_version(study, submission, user=user, amendment=False, request=request)


# The brief's other name for the same step: a decision is saved by signing it.
save_decision = sign_off


def amend(
    study: Study,
    *,
    user: Any,
    decision: str,
    final_class: str | None = None,
    reason: str,
    report_text: str = "",
    explanation_text: str | None = None,
    unassessable_reason: str = "",
    request: Any = None,
) -> SignOffResult:
    """A new version of a released report (SIGNED/AMENDED → AMENDED). The reason is required
    and recorded on the new version; earlier versions are kept unchanged."""
    submission = _Submission(decision, final_class, reason, report_text, explanation_text, unassessable_reason)
    return _write_version(study, submission, user=user, amendment=True, request=request)


# --- Notes ------------------------------------------------------------------------------------


def add_note(study: Study, *, user: Any, text: str, for_patient: bool = False, request: Any = None) -> ClinicalNote:
    """Append a clinical note (notes are never edited or deleted)."""
    _require_reporter(user)
    text = _clean_text(text, _("Note"))
    if not text:
        raise ReviewError(_("A note cannot be empty."))
    note = ClinicalNote.objects.create(study=study, author=user, text=text, for_patient=bool(for_patient))
    record(
        "review.note_add",
        request=request,
        actor=user,
        obj=note,
        patient_id=study.patient_id,
        study_id=study.pk,
        for_patient=note.for_patient,
        length=len(text),
    )
    return note


def regenerate_explanation(study: Study, *, user: Any, request: Any = None) -> Any:
    """Ask for a fresh draft of the patient explanation (an explain job)."""
    _require_reporter(user)
    # A new draft is never shown to the patient until a sign-off or amendment approves it.
    job = explanations.request_explanation(study, regenerate=True)
    record(
        "explanation.regenerate",
        request=request,
        actor=user,
        obj=study,
        patient_id=study.patient_id,
        job_id=getattr(job, "pk", None),
    )
    return job
