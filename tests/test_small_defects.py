"""The small defects of issue 20, each pinned: re-upload says "already uploaded", the upload
page links to the viewer with the AI class, the amend form starts from the signed decision,
the audit log filters by part of an action and by MRN or name, /favicon.ico answers."""
from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.audit import record
from scans.models import Study
from tests.factories import make_study
from tests.ingest.builders import dicom_bytes
from tests.patient.builders import sign

pytestmark = pytest.mark.django_db


def _upload(client, patient, data: bytes):
    return client.post(reverse("uploads:upload"), {"patient": patient.pk, "files": [_file(data)]},
                       HTTP_X_REQUESTED_WITH="XMLHttpRequest")


def _file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("one.dcm", data, content_type="application/dicom")


def test_reupload_says_already_uploaded_and_study_page_links_viewer_with_ai_class(client, radiologist, patient_alice):
    patient = patient_alice.patient_record
    data = dicom_bytes(patient_id=patient.mrn)
    client.force_login(radiologist)
    first = _upload(client, patient, data)
    assert first.status_code == 201 and first.json()["already_uploaded"] is False
    page = client.get(first.json()["next"]).content.decode()
    study = Study.objects.get()
    assert reverse("radiology:study", args=[study.pk]) in page and 'data-testid="open-viewer"' in page
    assert 'data-testid="series-ai-result"' in page
    again = _upload(client, patient, data)
    assert again.status_code == 201 and again.json()["already_uploaded"] is True
    assert "already uploaded" in client.get(again.json()["next"]).content.decode()


def test_upload_page_names_the_ai_class_from_the_mapping(client, radiologist, patient_alice):
    study = make_study(patient_alice.patient_record, label="notumor", confidence=0.9)
    client.force_login(radiologist)
    page = client.get(reverse("uploads:study", args=[study.pk])).content.decode()
    assert "No tumour (90%)" in page


def test_amend_form_starts_from_the_signed_decision(client, radiologist, patient_alice):
    confirmed = make_study(patient_alice.patient_record, label="glioma")
    sign(confirmed, radiologist, decision="confirm")
    overridden = make_study(patient_alice.patient_record, label="glioma")
    sign(overridden, radiologist, decision="override", final_class="meningioma")
    client.force_login(radiologist)
    html = client.get(reverse("radiology:study", args=[confirmed.pk])).content.decode()
    assert 'data-testid="amend-confirm" checked' in html and 'data-testid="amend-override" checked' not in html
    html = client.get(reverse("radiology:study", args=[overridden.pk])).content.decode()
    assert 'data-testid="amend-override" checked' in html and 'data-testid="amend-confirm" checked' not in html


def test_audit_log_filters_by_part_of_an_action_and_by_mrn_or_name(client, administrator, patient_alice, patient_bob):
    alice, bob = patient_alice.patient_record, patient_bob.patient_record
    record("review.sign_off", actor=administrator, patient_id=alice.pk)
    record("review.amend", actor=administrator, patient_id=bob.pk)
    record("slice.view", actor=administrator, patient_id=alice.pk)
    client.force_login(administrator)

    def actions(**query) -> list[str]:
        page = client.get(reverse("accounts:audit_log"), query).context["page"]
        return sorted(e.action for e in page)

    assert actions(action="review") == ["review.amend", "review.sign_off"]
    assert actions(patient=alice.mrn.lower()) == ["review.sign_off", "slice.view"]
    assert actions(patient="Bob") == ["review.amend"]
    assert actions(patient=str(bob.pk)) == ["review.amend"]
    assert actions(patient="nobody-like-this") == []


def test_unlink_asks_for_confirmation(client, administrator, patient_alice):
    client.force_login(administrator)
    html = client.get(reverse("administration:patient_detail", args=[patient_alice.patient_record.pk])).content.decode()
    form = html[html.index(reverse("administration:patient_unlink", args=[patient_alice.patient_record.pk])):]
    assert "data-confirm=" in form.split(">")[0] + form.split(">")[1] and "js/confirm.js" in html


def test_favicon_answers(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.ico")
    assert client.get(response["Location"]).status_code == 200
