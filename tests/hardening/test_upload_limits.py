"""Issue 18: upload limits and refusals answer clearly: 2,001 files is the documented 413
JSON; a UID already used for another patient is refused without saying so."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from scans.errors import UidConflict
from scans.ingest import import_files
from scans.models import Patient, Slice
from tests.ingest import builders as b

pytestmark = pytest.mark.django_db


def _many_files(n: int) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(f"f{i}.png", b"x", content_type="image/png") for i in range(n)]


@pytest.mark.parametrize("auth", ["session", "token"])
def test_too_many_files_in_an_api_upload_is_the_documented_413_json(radiologist, media, settings, auth):
    client = Client()
    if auth == "session":
        client.force_login(radiologist)
        headers = {}
    else:
        key = client.post(reverse("api:token"), {"email": radiologist.email, "password": "correct-horse-battery-staple"},
                          content_type="application/json").json()["token"]
        headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    patient = Patient.objects.create(mrn="MRN-MANY")
    count = settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1
    response = client.post(reverse("api:uploads"), {"patient": patient.pk, "files": _many_files(count)}, **headers)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "too_large" and "too many files" in body["error"]
    assert Slice.objects.count() == 0


def test_uid_collision_does_not_confirm_another_patients_study(patient_alice, patient_bob, media):
    alice = Patient.objects.get(user=patient_alice)
    bob = Patient.objects.get(user=patient_bob)
    import_files([("a.dcm", b.dicom_bytes(patient_id=alice.mrn, sop_uid="1.2.3.4.1"))], patient=alice)
    client = Client()
    client.force_login(patient_bob)
    answers = []
    for sop_uid in ("1.2.3.4.2", "1.2.3.4.1"):  # same study UID; then also the same instance
        upload = SimpleUploadedFile("mine.dcm", b.dicom_bytes(patient_id=bob.mrn, sop_uid=sop_uid))
        answers.append(client.post(reverse("api:uploads"), {"files": [upload]}))
    for response in answers:
        assert response.status_code == 409
        body = response.json()
        assert body == {"file": "mine.dcm", "error": UidConflict.MESSAGE, "code": "uid_conflict"}
        text = response.content.decode().lower()
        assert "different patient" not in text and "another" not in text and "already stored" not in text
    assert Slice.objects.filter(series__study__patient=bob).count() == 0
