"""File views (permission-checked, audited, private caching) and the upload flows: page,
REST endpoint, who may upload for whom."""
from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import AuditEvent
from scans import imaging
from scans.models import Slice, SlicePrediction, Study, StudyStatus
from tests.factories import make_study
from tests.ingest import builders as b

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_signed(patient_alice, radiologist, media):
    """Signed through the review service: a patient sees the slices its signed version covers."""
    from portal.workflow.review import sign_off

    study = make_study(patient_alice.patient_record, status=StudyStatus.AWAITING_REVIEW)
    sign_off(study, user=radiologist, decision="confirm")
    return study


@pytest.fixture
def alice_unsigned(patient_alice, media):
    return make_study(patient_alice.patient_record, status=StudyStatus.AWAITING_REVIEW)


def _first_slice(study) -> Slice:
    return Slice.objects.filter(series__study=study).order_by("order_index").first()


def test_patient_b_never_gets_patient_a_slice(client, patient_bob, alice_signed):
    sl = _first_slice(alice_signed)
    client.force_login(patient_bob)
    for name in ("scans:slice_image", "scans:slice_thumbnail", "scans:slice_heatmap"):
        assert client.get(reverse(name, args=[sl.pk])).status_code == 404
    assert client.get(reverse("scans:series_export", args=[sl.series_id])).status_code == 404


def test_unsigned_study_slices_not_visible_to_its_patient(client, patient_alice, alice_unsigned, alice_signed):
    client.force_login(patient_alice)
    assert client.get(reverse("scans:slice_image", args=[_first_slice(alice_unsigned).pk])).status_code == 404
    response = client.get(reverse("scans:slice_image", args=[_first_slice(alice_signed).pk]))
    assert response.status_code == 200


def test_anonymous_is_sent_to_login(client, alice_signed):
    response = client.get(reverse("scans:slice_image", args=[_first_slice(alice_signed).pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_slice_image_headers_window_and_audit(client, radiologist, alice_signed):
    sl = _first_slice(alice_signed)
    client.force_login(radiologist)
    response = client.get(reverse("scans:slice_image", args=[sl.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline;")
    assert "private" in response["Cache-Control"]
    default = Image.open(io.BytesIO(response.content))
    assert default.size == (64, 64)
    narrow = client.get(reverse("scans:slice_image", args=[sl.pk]), {"wc": 100, "ww": 2})
    narrow_pixels = np.asarray(Image.open(io.BytesIO(narrow.content)))
    assert set(np.unique(narrow_pixels)) <= {0, 255} and len(np.unique(narrow_pixels)) == 2
    small = client.get(reverse("scans:slice_image", args=[sl.pk]), {"size": 32})
    assert Image.open(io.BytesIO(small.content)).size == (32, 32)
    assert client.get(reverse("scans:slice_image", args=[sl.pk]), {"wc": "x", "ww": 3}).status_code == 400
    assert client.get(reverse("scans:slice_image", args=[sl.pk]), {"wc": 1}).status_code == 400
    assert client.get(reverse("scans:slice_image", args=[sl.pk]), {"size": 99999}).status_code == 400
    thumb = client.get(reverse("scans:slice_thumbnail", args=[sl.pk]))
    assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) == imaging.THUMBNAIL_SIZE
    actions = list(AuditEvent.objects.filter(object_id=str(sl.pk)).values_list("action", flat=True))
    assert actions.count("slice.view") == 3 and "slice.thumbnail" in actions


def test_polyglot_png_is_never_served_as_html(client, radiologist, alice_signed):
    """Even a stored file with HTML after its image data is served as a freshly encoded PNG."""
    sl = _first_slice(alice_signed)
    polyglot = sl.file.open("rb").read() + b"<html><script>alert(1)</script></html>"
    sl.file.save("poly.png", ContentFile(polyglot), save=False)
    import hashlib

    sl.sha256 = hashlib.sha256(polyglot).hexdigest()
    sl.save()
    client.force_login(radiologist)
    response = client.get(reverse("scans:slice_image", args=[sl.pk]))
    assert response.status_code in (200, 415)
    assert response["Content-Type"] in ("image/png", "application/json")
    assert b"<script>" not in response.content


def test_heatmap_view(client, radiologist, alice_signed):
    sl = _first_slice(alice_signed)
    client.force_login(radiologist)
    url = reverse("scans:slice_heatmap", args=[sl.pk])
    assert client.get(url).status_code == 404  # no heat map yet
    result = SlicePrediction.objects.get(slice=sl)
    overlay = io.BytesIO()
    Image.new("RGBA", (64, 64), (255, 0, 0, 128)).save(overlay, format="PNG")
    result.heatmap.save("h.png", ContentFile(overlay.getvalue()))
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content == overlay.getvalue()
    assert AuditEvent.objects.filter(action="slice.heatmap", object_id=str(sl.pk)).exists()


# --- Upload flows ---------------------------------------------------------------------------------


def _files(n=3, **kwargs):
    return [SimpleUploadedFile(name, data) for name, data in b.series_files(n, **kwargs)]


def test_staff_upload_through_api_starts_processing(client, radiologist, patient_alice, media, monkeypatch):
    started = []
    monkeypatch.setattr("portal.workflow.ingest.start_processing", lambda study: started.append(study.pk) or [])
    patient = patient_alice.patient_record
    client.force_login(radiologist)
    response = client.post(reverse("api:uploads"), {"patient": patient.pk, "files": _files(patient_id=patient.mrn)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["studies"][0]["series"][0]["slices"] == 3 and body["new_slices"] == 3
    study = Study.objects.get()
    assert started == [study.pk] and study.uploaded_by == radiologist and not study.patient_submitted
    # Re-upload: nothing new, nothing started.
    response = client.post(reverse("api:uploads"), {"patient": patient.pk, "files": _files(patient_id=patient.mrn)})
    assert response.status_code == 201 and response.json()["new_slices"] == 0 and started == [study.pk]
    assert AuditEvent.objects.filter(action="scans.upload").count() == 2


def test_token_auth_upload(client, radiologist, patient_alice, media, monkeypatch):
    from accounts import tokens

    monkeypatch.setattr("portal.workflow.ingest.start_processing", lambda study: [])
    _, key = tokens.issue(radiologist, "test")
    patient = patient_alice.patient_record
    response = client.post(
        reverse("api:uploads"), {"patient": patient.pk, "files": _files(patient_id=patient.mrn)}, HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 201
    assert client.post(reverse("api:uploads"), {"patient": patient.pk, "files": _files()}).status_code in (401, 403)


def test_patient_uploads_only_for_own_record(client, patient_alice, patient_bob, media, monkeypatch):
    monkeypatch.setattr("portal.workflow.ingest.start_processing", lambda study: [])
    alice = patient_alice.patient_record
    bob = patient_bob.patient_record
    client.force_login(patient_alice)
    # A patient cannot pick someone else's record: the patient field is ignored, and Bob's
    # files are refused as a mismatch against Alice's own MRN.
    response = client.post(reverse("api:uploads"), {"patient": bob.pk, "files": _files(patient_id=bob.mrn)})
    assert response.status_code == 409 and "MRN-BOB" in response.json()["error"]
    # ... and a patient may not use the administrator override.
    response = client.post(reverse("api:uploads"), {"patient": bob.pk, "allow_mismatch": "true", "files": _files(patient_id=bob.mrn)})
    assert response.status_code == 409 and "administrator" in response.json()["error"]
    response = client.post(reverse("api:uploads"), {"files": _files(patient_id=alice.mrn)})
    assert response.status_code == 201
    study = Study.objects.get()
    assert study.patient == alice and study.patient_submitted and study.uploaded_by == patient_alice
    assert Study.objects.filter(patient=bob).count() == 0


def test_override_is_for_administrators_only(client, radiologist, administrator, patient_alice, media, monkeypatch):
    monkeypatch.setattr("portal.workflow.ingest.start_processing", lambda study: [])
    patient = patient_alice.patient_record
    client.force_login(radiologist)
    response = client.post(reverse("api:uploads"), {"patient": patient.pk, "allow_mismatch": "true", "files": _files(patient_id="OTHER")})
    assert response.status_code == 409 and "administrator" in response.json()["error"]
    client.force_login(administrator)
    response = client.post(reverse("api:uploads"), {"patient": patient.pk, "files": _files(patient_id="OTHER")})
    assert response.status_code == 409 and "'OTHER'" in response.json()["error"]
    response = client.post(reverse("api:uploads"), {"patient": patient.pk, "allow_mismatch": "true", "files": _files(patient_id="OTHER")})
    assert response.status_code == 201


def test_upload_page_flow(client, radiologist, administrator, patient_alice, media, monkeypatch):
    monkeypatch.setattr("portal.workflow.ingest.start_processing", lambda study: [])
    patient = patient_alice.patient_record
    client.force_login(radiologist)
    page = client.get(reverse("uploads:upload"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="file"' in html and "multiple" in html and patient.mrn in html
    assert "allow_mismatch" not in html and "js/upload.js" in html and "<progress" in html
    response = client.post(
        reverse("uploads:upload"), {"patient": patient.pk, "files": _files(patient_id=patient.mrn)}, HTTP_X_REQUESTED_WITH="XMLHttpRequest"
    )
    assert response.status_code == 201
    study = Study.objects.get()
    assert response.json()["next"] == reverse("uploads:study", args=[study.pk])
    detail = client.get(response.json()["next"])
    assert detail.status_code == 200
    body = detail.content.decode()
    assert f'data-live-status-url="{reverse("uploads:study_status", args=[study.pk])}"' in body
    assert reverse("scans:slice_thumbnail", args=[Slice.objects.first().pk]) in body
    client.force_login(administrator)
    assert "allow_mismatch" in client.get(reverse("uploads:upload")).content.decode()


def test_patient_upload_page_and_nav(client, patient_alice, media, monkeypatch):
    monkeypatch.setattr("portal.workflow.ingest.start_processing", lambda study: [])
    client.force_login(patient_alice)
    page = client.get(reverse("uploads:upload"))
    assert page.status_code == 200 and 'name="patient"' not in page.content.decode()
    assert reverse("uploads:upload") in page.content.decode()  # nav link
    files = [SimpleUploadedFile("scan1.png", b.png_bytes()), SimpleUploadedFile("scan2.jpg", b.jpeg_bytes())]
    response = client.post(reverse("uploads:upload"), {"files": files})
    assert response.status_code == 302 and response["Location"] == reverse("uploads:upload")
    study = Study.objects.get()
    assert study.patient_submitted and study.series.get().slices.count() == 2
    # The patient cannot open the staff study page nor its unsigned slices.
    assert client.get(reverse("uploads:study", args=[study.pk])).status_code == 404


def test_csrf_is_enforced_on_the_upload_page(radiologist, patient_alice, media):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(radiologist)
    response = client.post(reverse("uploads:upload"), {"patient": patient_alice.patient_record.pk, "files": _files()})
    assert response.status_code == 403 and Slice.objects.count() == 0
