"""Worklist order, filters, search and counts; the study page; review actions through HTTP;
release to the patient; patient history."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from scans.models import Prediction, Review, Study, StudyStatus
from tests.factories import make_patient, make_study

pytestmark = pytest.mark.django_db


def _aged(study, days):
    Study.objects.filter(pk=study.pk).update(created_at=timezone.now() - dt.timedelta(days=days))
    return study


def _rows(response):
    """Study ids of the worklist rows, in order."""
    body = response.content.decode()
    return [int(chunk.split('"', 1)[0]) for chunk in body.split('data-study-id="')[1:]]


# --- Worklist -----------------------------------------------------------------------------------


def test_worklist_most_urgent_first_then_oldest(staff_client):
    p = make_patient()
    routine_old = _aged(make_study(p, label="notumor", confidence=0.99), 9)
    flagged_low = _aged(make_study(p, label="meningioma", confidence=0.55), 8)
    urgent_new = _aged(make_study(p, label="glioma", confidence=0.95), 1)
    urgent_old = _aged(make_study(p, label="pituitary", confidence=0.85), 3)
    not_mri = _aged(make_study(p, label=""), 2)
    no_ai = _aged(make_study(p, label=None), 20)
    make_study(p, status=StudyStatus.PROCESSING)  # not awaiting review: not listed by default
    response = staff_client.get(reverse("radiology:worklist"))
    assert response.status_code == 200
    assert _rows(response) == [urgent_old.pk, urgent_new.pk, flagged_low.pk, not_mri.pk, no_ai.pk, routine_old.pk]
    assert "Urgent" in response.content.decode()


def test_worklist_uses_newest_prediction_of_a_series(staff_client):
    p = make_patient()
    s = make_study(p, label="glioma", confidence=0.95)
    Prediction.objects.create(
        series=s.series.get(), model_name="m", model_version="test-2", label="notumor",
        probabilities={"notumor": 0.9}, confidence=0.9, is_brain_mri=True,
    )
    response = staff_client.get(reverse("radiology:worklist"), {"ai_class": "notumor"})
    assert _rows(response) == [s.pk]
    assert _rows(staff_client.get(reverse("radiology:worklist"), {"ai_class": "glioma"})) == []


def test_worklist_filters_search_and_counts(staff_client):
    ann = make_patient(mrn="MRN-ANN-1", full_name="Ann Jones")
    ben = make_patient(mrn="MRN-BEN-2", full_name="Ben Smith")
    a1 = make_study(ann, label="glioma")
    a2 = _aged(make_study(ann, label="", ), 40)
    b1 = make_study(ben, label="pituitary")
    b_signed = make_study(ben, status=StudyStatus.SIGNED)
    make_study(ben, status=StudyStatus.PROCESSING)
    url = reverse("radiology:worklist")

    assert sorted(_rows(staff_client.get(url, {"q": "ann"}))) == sorted([a1.pk, a2.pk])
    assert _rows(staff_client.get(url, {"q": "BEN-2"})) == [b1.pk]
    assert _rows(staff_client.get(url, {"q": "nobody"})) == []
    assert _rows(staff_client.get(url, {"ai_class": "pituitary"})) == [b1.pk]
    assert _rows(staff_client.get(url, {"ai_class": "not_mri"})) == [a2.pk]
    assert _rows(staff_client.get(url, {"patient": ann.pk})) == sorted([a1.pk, a2.pk], key=lambda pk: pk != a1.pk)
    assert _rows(staff_client.get(url, {"status": "signed"})) == [b_signed.pk]
    assert len(_rows(staff_client.get(url, {"status": "all"}))) == 5
    old_day = (timezone.now() - dt.timedelta(days=40)).date().isoformat()
    assert _rows(staff_client.get(url, {"date_to": old_day})) == [a2.pk]
    assert a2.pk not in _rows(staff_client.get(url, {"date_from": timezone.now().date().isoformat()}))

    response = staff_client.get(url, {"q": "ben"})
    counts = {value: count for value, _, count in response.context["status_tabs"]}
    assert counts["all"] == 3 and counts["awaiting_review"] == 1 and counts["signed"] == 1 and counts["processing"] == 1
    assert counts["amended"] == 0 and counts["to_review"] == 1


def test_worklist_bad_filters_are_400_with_message(staff_client):
    for params in ({"status": "bogus"}, {"ai_class": "tumour"}, {"date_from": "31/01/2025"}, {"patient": "x"}):
        response = staff_client.get(reverse("radiology:worklist"), params)
        assert response.status_code == 400
        assert 'role="alert"' in response.content.decode()


def test_worklist_paginates(staff_client):
    p = make_patient()
    for _ in range(27):
        make_study(p, n_slices=1)
    first = staff_client.get(reverse("radiology:worklist"))
    second = staff_client.get(reverse("radiology:worklist"), {"page": 2})
    assert len(_rows(first)) == 25 and len(_rows(second)) == 2
    assert not set(_rows(first)) & set(_rows(second))
    assert "Page 1 of 2" in first.content.decode()


def test_worklist_live_status_for_processing(staff_client):
    p = make_patient()
    s = make_study(p, status=StudyStatus.PROCESSING, label=None)
    body = staff_client.get(reverse("radiology:worklist"), {"status": "processing"}).content.decode()
    assert f'data-live-status-url="{reverse("uploads:study_status", args=[s.pk])}"' in body
    assert "js/live-status.js" in body


def test_worklist_view_is_audited(staff_client, radiologist):
    staff_client.get(reverse("radiology:worklist"), {"q": "abc"})
    event = AuditEvent.objects.get(action="radiology.worklist.view")
    assert event.actor == radiologist and event.detail["filters"] == {"q": "abc"}


# --- Study page ---------------------------------------------------------------------------------


def test_study_page_shows_viewer_data_ai_result_and_key_slice(staff_client, study, radiologist):
    response = staff_client.get(reverse("radiology:study", args=[study.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    data = response.context["viewer_data"]
    slices = list(study.series.get().ordered_slices())
    assert [s["id"] for s in data["slices"]] == [s.pk for s in slices]
    assert [s["is_key"] for s in data["slices"]] == [False, False, True, False, False]
    first = data["slices"][0]
    assert first["image"] == reverse("scans:slice_image", args=[slices[0].pk])
    assert first["heatmap"] == reverse("scans:slice_heatmap", args=[slices[0].pk])
    assert first["tumour_probability"] == pytest.approx(1 - 0.07 / 3)
    assert 'id="viewer-data"' in body and "js/viewer.js" in body
    assert 'data-testid="ai-class">Glioma<' in body
    assert ">93%<" in body and "test-model test-1" in body
    assert 'id="jump-key" data-index="2"' in body
    assert "not-brain-mri" not in body
    assert "<script>" not in body and " style=" not in body  # CSP: no inline script or style
    event = AuditEvent.objects.get(action="radiology.study.view")
    assert event.actor == radiologist and event.object_id == str(study.pk) and event.patient_id == study.patient_id


def test_study_page_without_heatmaps_has_none(staff_client, alice_record):
    s = make_study(alice_record, n_slices=3)
    data = staff_client.get(reverse("radiology:study", args=[s.pk])).context["viewer_data"]
    assert [row["heatmap"] for row in data["slices"]] == [None, None, None]


def test_not_brain_mri_banner(staff_client, alice_record):
    s = make_study(alice_record, label="")
    body = staff_client.get(reverse("radiology:study", args=[s.pk])).content.decode()
    assert 'data-testid="not-brain-mri"' in body and "Outside the AI's scope." in body
    assert "outside what the model was trained on" in body  # the reason, not "not an MRI"
    # Confirm is not offered: there is no AI class to confirm.
    assert 'value="confirm"' not in body


# --- Review through HTTP and release to the patient -----------------------------------------


def _patient_sees(client, patient_user, study):
    """What the patient can reach: their study list, and the report page."""
    client.force_login(patient_user)
    home = client.get(reverse("patient:home"))
    assert home.status_code == 200
    listed = Study.objects.visible_to(patient_user).filter(pk=study.pk).exists()
    return listed, client.get(reverse("patient:report", args=[study.pk]))


def test_sign_off_is_required_before_release(client, radiologist, patient_alice, study):
    listed, report = _patient_sees(client, patient_alice, study)
    assert not listed
    assert report.status_code == 404
    client.force_login(radiologist)
    response = client.post(
        reverse("radiology:sign_off", args=[study.pk]),
        {"decision": "override", "final_class": "meningioma", "reason": "Extra-axial, dural tail"},
    )
    assert response.status_code == 302
    listed, report = _patient_sees(client, patient_alice, study)
    assert listed
    assert report.status_code == 200
    assert "Meningioma" in report.content.decode()


def test_override_without_reason_is_400_and_nothing_released(staff_client, study, patient_alice):
    response = staff_client.post(
        reverse("radiology:sign_off", args=[study.pk]), {"decision": "override", "final_class": "notumor", "reason": ""}
    )
    assert response.status_code == 400
    assert "needs a reason" in response.content.decode()
    assert not Review.objects.exists()
    study.refresh_from_db()
    assert study.status == StudyStatus.AWAITING_REVIEW
    assert not Study.objects.visible_to(patient_alice).exists()
    assert AuditEvent.objects.filter(action="review.refused").count() == 1


def test_double_sign_off_is_409(staff_client, study):
    url = reverse("radiology:sign_off", args=[study.pk])
    assert staff_client.post(url, {"decision": "confirm"}).status_code == 302
    response = staff_client.post(url, {"decision": "confirm"})
    assert response.status_code == 409
    assert Review.objects.count() == 1


def test_amend_through_http_keeps_history_and_patient_sees_latest(client, radiologist, patient_alice, study):
    client.force_login(radiologist)
    client.post(reverse("radiology:sign_off", args=[study.pk]), {"decision": "confirm"})
    v1 = Review.objects.get()
    v1_values = Review.objects.filter(pk=v1.pk).values().get()
    page = client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    assert 'data-testid="amend-form"' in page and 'data-testid="sign-off-form"' not in page
    response = client.post(
        reverse("radiology:amend", args=[study.pk]),
        {"decision": "override", "final_class": "pituitary", "reason": "Sellar origin on coronal"},
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.status == StudyStatus.AMENDED
    assert Review.objects.filter(pk=v1.pk).values().get() == v1_values
    assert study.latest_review().version == 2 and study.latest_review().final_class == "pituitary"
    page = client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    assert "Amended report" in page and page.count("<strong>v") == 2
    listed, report = _patient_sees(client, patient_alice, study)
    assert listed
    body = report.content.decode()
    assert report.status_code == 200 and "Pituitary" in body and "mended" in body


def test_add_note_through_http(staff_client, study, radiologist):
    url = reverse("radiology:add_note", args=[study.pk])
    assert staff_client.post(url, {"text": ""}).status_code == 400
    assert staff_client.post(url, {"text": "Prior from 2023 requested."}).status_code == 302
    page = staff_client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    assert "Prior from 2023 requested." in page and str(radiologist) in page


# --- Patient history ----------------------------------------------------------------------------


def test_patient_history_timeline(staff_client, radiologist, alice_record, study):
    from portal.workflow.review import add_note, amend, sign_off

    older = _aged(make_study(alice_record, label="notumor", confidence=0.97), 400)
    sign_off(study, user=radiologist, decision="confirm")
    amend(study, user=radiologist, decision="override", final_class="meningioma", reason="MDT")
    add_note(study, user=radiologist, text="Follow up in 3 months")
    make_study(make_patient(), label="glioma")  # someone else's study: not on this timeline
    response = staff_client.get(reverse("radiology:patient_history", args=[alice_record.pk]))
    body = response.content.decode()
    assert [e["study"].pk for e in response.context["timeline"]] == [study.pk, older.pk]
    assert body.count('data-testid="history-review"') == 2
    assert "Follow up in 3 months" in body and "Meningioma" in body and "No tumour" in body and ">notumor<" not in body
    assert AuditEvent.objects.filter(action="radiology.patient_history.view", patient_id=alice_record.pk).count() == 1


def test_viewer_data_is_valid_json_in_page(staff_client, study):
    body = staff_client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    start = body.index('<script id="viewer-data" type="application/json">') + len('<script id="viewer-data" type="application/json">')
    data = json.loads(body[start:body.index("</script>", start)])
    assert len(data["slices"]) == 5


def test_regenerate_requests_a_new_draft(staff_client, study, radiologist, django_capture_on_commit_callbacks):
    from scans.explanations import ExplanationStatus
    from scans.models import Job

    url = reverse("radiology:regenerate_explanation", args=[study.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url)
    assert response.status_code == 302
    job = Job.objects.get(study=study, kind="explain")
    assert AuditEvent.objects.get(action="explanation.regenerate").detail["job_id"] == job.pk
    job.refresh_from_db()
    assert job.state == "done", job.error
    first = study.explanations.get(status=ExplanationStatus.DRAFT)
    page = staff_client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    assert 'data-testid="explanation-text"' in page and first.text[:40] in page
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url)
    assert Job.objects.filter(study=study, kind="explain").count() == 2
    second = study.explanations.get(status=ExplanationStatus.DRAFT)
    assert second.pk != first.pk


def test_explanation_flags_are_shown(staff_client, study):
    from scans.models import PatientExplanation

    PatientExplanation.objects.create(
        study=study, final_class="glioma", text="Plain text for the patient.", provider="gemini",
        fell_back=True, flagged=True, flag_reason="Provider timed out; offline text used.",
    )
    page = staff_client.get(reverse("radiology:study", args=[study.pk])).content.decode()
    assert 'data-testid="explanation-flagged"' in page and 'data-testid="explanation-fell-back"' in page
    assert "Provider timed out" in page and "Plain text for the patient." in page


def test_series_list_and_selection(staff_client, alice_record):
    from scans.models import Series, Slice

    s = make_study(alice_record, n_slices=2)
    first = s.series.get()
    second = Series.objects.create(study=s, series_instance_uid=f"{first.series_instance_uid}.9", series_number=2, description="FLAIR")
    src = first.slices.first()
    Slice.objects.create(
        series=second, sop_instance_uid=src.sop_instance_uid + ".9", file=src.file.name, sha256=src.sha256,
        source_format="png", order_index=0, rows=64, columns=64,
    )
    page = staff_client.get(reverse("radiology:study", args=[s.pk]))
    assert page.context["selected_series"] == first and len(page.context["viewer_data"]["slices"]) == 2
    assert "FLAIR" in page.content.decode()
    page = staff_client.get(reverse("radiology:study", args=[s.pk]), {"series": second.pk})
    assert page.context["selected_series"] == second and len(page.context["viewer_data"]["slices"]) == 1
    assert page.context["prediction"] is None  # the second series has no AI result
