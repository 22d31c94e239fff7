"""Administration pages: remote nodes with a C-ECHO test against Orthanc, the send log with
re-send, and the unmatched list's three decisions (new record, link, reject)."""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from hospital.models import DicomSend, RemoteNode, UnmatchedInstance, UnmatchedState, UnmatchedStudy
from scans.jobs import JobKind
from scans.models import Job, Patient, Slice
from tests.factories import make_study
from tests.hospital.conftest import ORTHANC_AE, ORTHANC_DICOM_PORT

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, administrator):
    client.force_login(administrator)
    return client


def test_add_a_node_and_echo_it(admin_client, orthanc):
    response = admin_client.post(reverse("administration:dicom_nodes"), {
        "name": "Test PACS", "ae_title": ORTHANC_AE, "host": "127.0.0.1", "port": ORTHANC_DICOM_PORT,
        "receives_results": "on", "enabled": "on"})
    assert response.status_code == 302
    node = RemoteNode.objects.get()
    page = admin_client.post(reverse("administration:dicom_node_echo", args=[node.pk]), follow=True)
    assert "C-ECHO succeeded" in page.content.decode()
    orthanc.stop()
    page = admin_client.post(reverse("administration:dicom_node_echo", args=[node.pk]), follow=True)
    assert "no association" in page.content.decode()


def test_bad_ae_title_is_refused_with_the_reason(admin_client):
    response = admin_client.post(reverse("administration:dicom_nodes"), {
        "name": "x", "ae_title": "BAD\\AE", "host": "127.0.0.1", "port": 104})
    assert response.status_code == 400 and not RemoteNode.objects.exists()
    assert "no backslash" in response.content.decode()


def test_send_log_shows_status_and_resend_queues_a_new_job(admin_client, patient_alice, radiologist):
    from portal.workflow.review import sign_off

    RemoteNode.objects.create(name="Down", ae_title="DOWN", host="127.0.0.1", port=7179)
    study = make_study(patient_alice.patient_record)
    sign_off(study, user=radiologist, decision="confirm")
    sends = DicomSend.objects.all()
    assert sends.count() == 2
    page = admin_client.get(reverse("administration:dicom_sends")).content.decode()
    assert "DOWN" in page and "Structured report" in page
    admin_client.post(reverse("administration:dicom_resend", args=[sends.get(what="sr").pk]))
    assert Job.objects.filter(kind=JobKind.SEND).count() == 3


def _unmatched_with_one_instance(dicom_bytes: bytes) -> UnmatchedStudy:
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes), stop_before_pixels=True)
    item = UnmatchedStudy.objects.create(patient_id=str(ds.PatientID), patient_name=str(ds.PatientName),
                                         study_instance_uid=str(ds.StudyInstanceUID))
    instance = UnmatchedInstance(unmatched=item, sop_instance_uid=str(ds.SOPInstanceUID), sha256="0" * 64)
    instance.file.save("one.dcm", ContentFile(dicom_bytes), save=True)
    return item


def test_unmatched_link_files_under_the_chosen_record_and_reject_deletes(admin_client, series_48, patient_bob):
    files = sorted(series_48.glob("*.dcm"))
    item = _unmatched_with_one_instance(files[0].read_bytes())
    page = admin_client.get(reverse("administration:unmatched")).content.decode()
    assert "jflab" in page
    bob = patient_bob.patient_record
    admin_client.post(reverse("administration:unmatched_link", args=[item.pk]), {"patient": bob.pk})
    item.refresh_from_db()
    assert item.state == UnmatchedState.FILED and item.filed_patient == bob
    assert Slice.objects.filter(series__study__patient=bob).count() == 1
    assert not Patient.objects.filter(mrn="jflab").exists()  # linking never creates a record

    other = _unmatched_with_one_instance(files[1].read_bytes())
    other.study_instance_uid = "2.25.424242"
    other.save()
    admin_client.post(reverse("administration:unmatched_reject", args=[other.pk]), {"reason": "wrong site"})
    other.refresh_from_db()
    assert other.state == UnmatchedState.REJECTED and other.detail == "wrong site" and not other.instances.exists()


def test_upload_page_new_patient_from_the_files_header(client, radiologist, series_48):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import png_bytes

    client.force_login(radiologist)
    url = reverse("uploads:upload")
    first = sorted(series_48.glob("*.dcm"))[0]
    upload = lambda name, data: client.post(url, {"patient": "new-from-header",  # noqa: E731
                                                  "files": [SimpleUploadedFile(name, data)]}, HTTP_ACCEPT="application/json")
    response = upload(first.name, first.read_bytes())
    assert response.status_code == 201, response.content
    patient = Patient.objects.get(mrn="jflab")
    assert patient.full_name == "dtiferesh" and Slice.objects.filter(series__study__patient=patient).count() == 1
    again = upload(first.name, first.read_bytes())
    assert again.status_code == 409 and "already exists" in again.json()["error"]
    raster = upload("scan.png", png_bytes())
    assert raster.status_code == 400 and "header" in raster.json()["error"]
    assert Patient.objects.count() == 1
