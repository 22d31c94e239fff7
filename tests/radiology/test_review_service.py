"""Sign-off, override, amendment and notes: the service rules and the release to the patient."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts.models import AuditEvent
from portal.workflow.explanations import approved_explanation_for, draft_explanation
from portal.workflow.review import ReviewError, add_note, amend, sign_off
from scans.explanations import ExplanationStatus
from scans.models import ClinicalNote, Prediction, Review, Study, StudyStatus
from tests.factories import make_study

pytestmark = pytest.mark.django_db


def test_confirm_signs_version_1_and_releases(study, radiologist, patient_alice):
    assert not Study.objects.visible_to(patient_alice).exists()
    result = sign_off(study, user=radiologist, decision="confirm")
    review = result.review
    assert (review.version, review.decision, review.final_class) == (1, "confirm", "glioma")
    assert review.signed_at is not None and review.author == radiologist
    assert review.prediction == study.primary_prediction()
    study.refresh_from_db()
    assert study.status == StudyStatus.SIGNED
    assert list(Study.objects.visible_to(patient_alice)) == [study]
    event = AuditEvent.objects.get(action="review.sign_off")
    assert event.actor == radiologist and event.patient_id == study.patient_id
    assert event.detail["final_class"] == "glioma" and event.detail["ai_class"] == "glioma"


def test_override_needs_a_reason(study, radiologist, patient_alice):
    for reason in ("", "   "):
        with pytest.raises(ReviewError, match="reason"):
            sign_off(study, user=radiologist, decision="override", final_class="meningioma", reason=reason)
    with pytest.raises(ReviewError, match="final class"):
        sign_off(study, user=radiologist, decision="override", final_class="", reason="why")
    with pytest.raises(ReviewError, match="final class"):
        sign_off(study, user=radiologist, decision="override", final_class="astrocytoma", reason="why")
    assert not Review.objects.exists()
    study.refresh_from_db()
    assert study.status == StudyStatus.AWAITING_REVIEW
    assert not Study.objects.visible_to(patient_alice).exists()

    review = sign_off(study, user=radiologist, decision="override", final_class="meningioma", reason="Dural tail").review
    assert (review.decision, review.final_class, review.reason) == ("override", "meningioma", "Dural tail")


def test_confirm_cannot_change_the_class_and_needs_an_ai_class(study, radiologist, alice_record):
    with pytest.raises(ReviewError, match="override"):
        sign_off(study, user=radiologist, decision="confirm", final_class="pituitary")
    with pytest.raises(ReviewError):
        sign_off(study, user=radiologist, decision="maybe")
    not_mri = make_study(alice_record, label="")
    with pytest.raises(ReviewError, match="no AI tumour class"):
        sign_off(not_mri, user=radiologist, decision="confirm")
    no_ai = make_study(alice_record, label=None)
    with pytest.raises(ReviewError, match="no AI tumour class"):
        sign_off(no_ai, user=radiologist, decision="confirm")
    assert not Review.objects.exists()


def test_sign_off_refused_unless_awaiting_review(alice_record, radiologist):
    for status in (StudyStatus.RECEIVED, StudyStatus.PROCESSING, StudyStatus.FAILED):
        s = make_study(alice_record, status=status)
        with pytest.raises(ReviewError, match="not awaiting review") as info:
            sign_off(s, user=radiologist, decision="confirm")
        assert info.value.status == 409
    assert not Review.objects.exists()


def test_second_sign_off_refused_changes_go_through_amend(study, radiologist):
    sign_off(study, user=radiologist, decision="confirm")
    with pytest.raises(ReviewError, match="amendment") as info:
        sign_off(study, user=radiologist, decision="override", final_class="notumor", reason="x")
    assert info.value.status == 409
    assert Review.objects.count() == 1


def test_amend_only_released_studies(study, radiologist):
    with pytest.raises(ReviewError, match="sign it off first"):
        amend(study, user=radiologist, decision="override", final_class="notumor", reason="x")
    assert not Review.objects.exists()


def test_amendment_keeps_history(study, radiologist, second_radiologist, patient_alice):
    v1 = sign_off(study, user=radiologist, decision="confirm", report_text="Enhancing lesion.").review
    snapshot = Review.objects.filter(pk=v1.pk).values().get()
    with pytest.raises(ReviewError, match="reason"):
        amend(study, user=second_radiologist, decision="override", final_class="meningioma", reason="")
    v2 = amend(study, user=second_radiologist, decision="override", final_class="meningioma", reason="Second read: extra-axial").review
    v3 = amend(study, user=radiologist, decision="confirm", reason="Back to glioma after MDT").review
    assert [r.version for r in Review.objects.filter(study=study).order_by("version")] == [1, 2, 3]
    assert Review.objects.filter(pk=v1.pk).values().get() == snapshot  # v1 untouched
    assert (v2.final_class, v2.author, v2.is_amendment) == ("meningioma", second_radiologist, True)
    assert v3.final_class == "glioma"
    study.refresh_from_db()
    assert study.status == StudyStatus.AMENDED
    assert study.latest_review() == v3
    # The patient still sees the study, with the latest version.
    assert Study.objects.visible_to(patient_alice).get().latest_review().version == 3
    amendments = AuditEvent.objects.filter(action="review.amend").order_by("id")
    assert [e.detail["version"] for e in amendments] == [2, 3]
    assert amendments[0].detail["previous_final_class"] == "glioma"


def test_patient_cannot_sign(study, patient_alice):
    with pytest.raises(ReviewError) as info:
        sign_off(study, user=patient_alice, decision="confirm")
    assert info.value.status == 403
    with pytest.raises(ReviewError):
        add_note(study, user=patient_alice, text="hello")
    assert not Review.objects.exists() and not ClinicalNote.objects.exists()


def test_notes_are_append_only_and_audited(study, radiologist):
    with pytest.raises(ReviewError, match="empty"):
        add_note(study, user=radiologist, text="   ")
    note = add_note(study, user=radiologist, text=" Compare with prior. ", for_patient=True)
    assert note.text == "Compare with prior." and note.for_patient and note.author == radiologist
    note.text = "changed"
    with pytest.raises(PermissionError):
        note.save()
    with pytest.raises(PermissionError):
        note.delete()
    assert ClinicalNote.objects.get().text == "Compare with prior."
    assert AuditEvent.objects.filter(action="review.note_add", object_id=str(note.pk)).count() == 1


def test_primary_prediction_prefers_flagged_tumour_and_newest_model(alice_record):
    s = make_study(alice_record, label="notumor", confidence=0.99)
    series = s.series.get()
    newer = Prediction.objects.create(
        series=series, model_name="m", model_version="test-2", label="pituitary",
        probabilities={"pituitary": 0.7}, confidence=0.7, is_brain_mri=True,
    )
    assert s.primary_prediction() == newer


@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_offs_make_one_version(postgres, alice_record, radiologist, second_radiologist):
    s = make_study(alice_record)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(user):
        try:
            barrier.wait()
            sign_off(Study.objects.get(pk=s.pk), user=user, decision="confirm")
            outcomes.append("signed")
        except ReviewError as exc:
            outcomes.append(f"refused {exc.status}")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(u,)) for u in (radiologist, second_radiologist)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused 409", "signed"]
    assert Review.objects.filter(study=s).count() == 1
    assert Study.objects.get(pk=s.pk).status == StudyStatus.SIGNED


# --- The patient explanation is approved with the sign-off ------------------------------------


def _draft(study):
    draft = draft_explanation(study)
    assert draft is not None and draft.status == ExplanationStatus.DRAFT
    return draft


def test_sign_off_approves_the_draft_unchanged(study, radiologist):
    draft = _draft(study)
    assert approved_explanation_for(study) is None  # a draft is not shown until a sign-off approves it
    result = sign_off(study, user=radiologist, decision="confirm", explanation_text=draft.text + "\n")
    approved = result.explanation
    assert approved.pk == draft.pk and approved.status == ExplanationStatus.APPROVED
    assert approved.review == result.review and approved.approved_by == radiologist and approved.approved_at
    assert approved.text == draft.text and approved.edited_by is None
    assert approved_explanation_for(study) == approved
    assert AuditEvent.objects.get(action="review.sign_off").detail["explanation_edited"] is False
    assert AuditEvent.objects.filter(action="explanation.approve", object_id=str(approved.pk)).exists()


@pytest.mark.parametrize(
    "decision, final_class, text",
    [
        ("confirm", None, "Your scan shows a growth called a glioma. Please discuss the next steps with your doctor."),
        ("override", "pituitary", "Your scan shows a pituitary tumour. I will explain what this means when we meet."),
    ],
)
def test_sign_off_keeps_the_radiologists_edit(study, radiologist, decision, final_class, text):
    _draft(study)
    approved = sign_off(
        study, user=radiologist, decision=decision, final_class=final_class, reason="Sellar mass", explanation_text=text
    ).explanation
    assert approved.text == text and approved.edited_by == radiologist
    assert approved.status == ExplanationStatus.APPROVED and approved.final_class == (final_class or "glioma")
    assert AuditEvent.objects.get(action="review.sign_off").detail["explanation_edited"] is True


def test_override_replaces_a_draft_written_for_the_ai_class(study, radiologist):
    draft = _draft(study)
    assert draft.final_class == "glioma"
    approved = sign_off(
        study, user=radiologist, decision="override", final_class="meningioma", reason="Dural tail", explanation_text=None
    ).explanation
    assert approved.pk != draft.pk and approved.provider == "offline"
    assert approved.final_class == "meningioma" and approved.status == ExplanationStatus.APPROVED
    assert "meningioma" in approved.text and "glioma" not in approved.text
    assert "did not agree" in approved.text  # worded for an overridden result
    draft.refresh_from_db()
    assert draft.status == ExplanationStatus.SUPERSEDED
    assert study.explanations.filter(status=ExplanationStatus.APPROVED).get() == approved


def test_no_draft_gets_an_offline_explanation(study, radiologist):
    approved = sign_off(study, user=radiologist, decision="confirm").explanation
    assert approved.status == ExplanationStatus.APPROVED and approved.provider == "offline"
    assert approved.final_class == "glioma" and "glioma" in approved.text


def test_amendment_approves_a_new_explanation_and_keeps_the_old_record(study, radiologist):
    _draft(study)
    v1 = sign_off(study, user=radiologist, decision="confirm")
    first = v1.explanation
    v2 = amend(study, user=radiologist, decision="override", final_class="notumor", reason="Artefact")
    assert v2.explanation.pk != first.pk
    assert v2.explanation.review == v2.review and v2.explanation.final_class == "notumor"
    assert "no tumour" in v2.explanation.text.lower()
    first.refresh_from_db()
    assert first.review == v1.review and first.final_class == "glioma"
    assert first.status == ExplanationStatus.SUPERSEDED  # the record stays, no longer shown
    assert study.explanations.filter(status=ExplanationStatus.APPROVED).get() == v2.explanation
    assert approved_explanation_for(study) == v2.explanation


def test_a_failed_explanation_approval_rolls_the_sign_off_back(study, radiologist, monkeypatch):
    from portal.workflow import explanations

    def broken(*args, **kwargs):
        raise explanations.ExplanationError("The explanation belongs to another study.")

    monkeypatch.setattr(explanations, "approve_explanation", broken)
    with pytest.raises(ReviewError, match="another study"):
        sign_off(study, user=radiologist, decision="confirm")
    assert not Review.objects.exists()
    study.refresh_from_db()
    assert study.status == StudyStatus.AWAITING_REVIEW
