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

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import record
from portal.workflow import explanations
from portal.workflow.notifications import notify_report_ready
from scans.models import (
    TUMOUR_CLASSES,
    UNASSESSABLE,
    ClinicalNote,
    ExplanationStatus,
    PatientExplanation,
    Prediction,
    Review,
    ReviewDecision,
    Study,
    StudyStatus,
    UnassessableReason,
    class_label,
)

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


def _write_version(
    study: Study,
    *,
    user: Any,
    decision: str,
    final_class: str | None,
    reason: str,
    report_text: str,
    explanation_text: str | None,
    amendment: bool,
    unassessable_reason: str = "",
    request: Any = None,
) -> SignOffResult:
    _require_reporter(user)
    reason = _clean_text(reason, _("Reason"))
    report_text = _clean_text(report_text, _("Report"))
    if explanation_text is not None:
        explanation_text = _clean_text(explanation_text, _("Explanation"))
    if amendment and not reason:
        raise ReviewError(_("An amendment needs a reason."))

    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
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
        prediction = locked.primary_prediction()
        decision, final_class, unassessable_reason = _resolve_decision(
            prediction, decision, final_class, reason, unassessable_reason
        )
        version = (locked.reviews.aggregate(v=Max("version"))["v"] or 0) + 1
        previous = locked.latest_review()
        # Images held as an addendum (scans.addendum): this version covers and releases them.
        addendum = locked.new_images_after_sign_off().count() if amendment else 0
        now = timezone.now()
        try:
            with transaction.atomic():
                review = Review.objects.create(
                    study=locked,
                    version=version,
                    prediction=prediction,
                    decision=decision,
                    final_class=final_class,
                    unassessable_reason=unassessable_reason,
                    reason=reason,
                    report_text=report_text,
                    author=user,
                    created_at=now,
                    signed_at=now,
                )
        except IntegrityError as exc:
            raise ReviewError(_("Someone else signed this study at the same moment; reload the page."), status=409) from exc
        locked.transition_to(StudyStatus.AMENDED if amendment else StudyStatus.SIGNED)
        explanation, edited = _approve_explanation(locked, review, user, explanation_text)
        record(
            "review.amend" if amendment else "review.sign_off",
            request=request,
            actor=user,
            obj=review,
            patient_id=locked.patient_id,
            study_id=locked.pk,
            version=version,
            decision=decision,
            final_class=final_class,
            unassessable_reason=unassessable_reason,
            ai_class=prediction.label if prediction else None,
            ai_model_version=prediction.model_version if prediction else None,
            previous_version=previous.version if previous else None,
            previous_final_class=previous.final_class if previous else None,
            explanation_id=explanation.pk,
            explanation_edited=edited,
            covers_new_images=addendum,
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
    return _write_version(
        study,
        user=user,
        decision=decision,
        final_class=final_class,
        reason=reason,
        report_text=report_text,
        explanation_text=explanation_text,
        unassessable_reason=unassessable_reason,
        amendment=False,
        request=request,
    )


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
    return _write_version(
        study,
        user=user,
        decision=decision,
        final_class=final_class,
        reason=reason,
        report_text=report_text,
        explanation_text=explanation_text,
        unassessable_reason=unassessable_reason,
        amendment=True,
        request=request,
    )


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
