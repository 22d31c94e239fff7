"""Signed results back to a real PACS (Orthanc): the SR and the key image arrive, read back
over Orthanc's REST API, parse with highdicom and pass dciodvfy; a PACS that is down gets
them once it is back, and the sign-off itself never fails for it."""
from __future__ import annotations

import highdicom as hd
import pydicom
import pytest
from pydicom.uid import Comprehensive3DSRStorage, SecondaryCaptureImageStorage

from hospital.models import DicomSend, RemoteNode
from scans.jobs import JobKind, JobState
from scans.models import Job, Patient, StudyStatus
from tests.factories import make_study
from tests.hospital.conftest import ORTHANC_AE, ORTHANC_DICOM_PORT
from tests.hospital.test_results import dciodvfy_errors

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pacs_node(db) -> RemoteNode:
    return RemoteNode.objects.create(name="Orthanc", ae_title=ORTHANC_AE, host="127.0.0.1", port=ORTHANC_DICOM_PORT)


def orthanc_objects(orthanc, tmp_path) -> dict[str, list]:
    """SOP class → [(path, dataset)] of every instance Orthanc holds, fetched over REST."""
    found: dict[str, list] = {}
    for orthanc_id in orthanc.get("/instances"):
        path = tmp_path / f"{orthanc_id}.dcm"
        path.write_bytes(orthanc.get(f"/instances/{orthanc_id}/file"))
        ds = pydicom.dcmread(path)
        found.setdefault(str(ds.SOPClassUID), []).append((path, ds))
    return found


def test_sign_off_stores_the_sr_and_key_image_in_orthanc(orthanc, pacs_node, series_48, radiologist, tmp_path):
    from portal.workflow.ingest import submit_upload
    from portal.workflow.review import sign_off

    header = pydicom.dcmread(sorted(series_48.glob("*.dcm"))[0], stop_before_pixels=True)
    patient = Patient.objects.create(mrn=header.PatientID, full_name="Volunteer")
    study = submit_upload(sorted(series_48.glob("*.dcm")), patient=patient, user=None).studies[0]
    study.refresh_from_db()
    assert study.status == StudyStatus.AWAITING_REVIEW
    review = sign_off(study, user=radiologist, decision="override", final_class="notumor", reason="DWI volunteer").review

    sends = DicomSend.objects.filter(review=review)
    assert sorted(s.what for s in sends) == ["sc", "sr"]
    assert all(s.job.state == JobState.DONE for s in sends.select_related("job")), [s.job.error for s in sends]
    held = orthanc_objects(orthanc, tmp_path)
    (sr_path, sr_ds), = held[Comprehensive3DSRStorage]
    (sc_path, sc_ds), = held[SecondaryCaptureImageStorage]
    report = hd.sr.srread(sr_path)
    assert report.PatientID == header.PatientID and report.StudyInstanceUID == header.StudyInstanceUID
    assert report.VerificationFlag == "VERIFIED"
    assert sc_ds.StudyInstanceUID == header.StudyInstanceUID and sc_ds.pixel_array.ndim == 3
    assert dciodvfy_errors(sr_path) == [] and dciodvfy_errors(sc_path) == []


def test_preliminary_ai_result_only_when_configured_and_marked(orthanc, pacs_node, listener, series_48, settings,
                                                              tmp_path):
    settings.DICOM_SEND_PRELIMINARY = True
    files = sorted(series_48.glob("*.dcm"))
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    Patient.objects.create(mrn=header.PatientID)
    for path in files:
        orthanc.post("/instances", path.read_bytes(), "application/dicom")
    (orthanc_study,) = orthanc.get("/studies")
    orthanc.post("/modalities/portal/store", f'{{"Resources": ["{orthanc_study}"], "Synchronous": true}}'.encode())
    listener.stop()
    sends = DicomSend.objects.filter(preliminary=True, review__isnull=True)
    assert sorted(s.what for s in sends) == ["sc", "sr"]
    (sr_path, sr_ds), = orthanc_objects(orthanc, tmp_path)[Comprehensive3DSRStorage]
    assert (sr_ds.PreliminaryFlag, sr_ds.VerificationFlag) == ("PRELIMINARY", "UNVERIFIED")
    assert dciodvfy_errors(sr_path) == []


def test_each_amendment_sends_a_new_version_and_nothing_unsigned_by_default(pacs_node, patient_alice, radiologist):
    from portal.workflow.pacs import send_preliminary
    from portal.workflow.review import amend, sign_off

    study = make_study(patient_alice.patient_record, label="glioma")
    assert send_preliminary(study, study.series.get().predictions.get()) == []  # not configured
    sign_off(study, user=radiologist, decision="confirm")
    amend(study, user=radiologist, decision="override", final_class="notumor", reason="artefact")
    versions = sorted(DicomSend.objects.values_list("review__version", "what"))
    assert versions == [(1, "sc"), (1, "sr"), (2, "sc"), (2, "sr")]


def test_pacs_down_sign_off_succeeds_and_the_sr_arrives_after_it_restarts(orthanc, pacs_node, patient_alice,
                                                                         radiologist, tmp_path):
    from portal.workflow.pacs import retry_pending_sends
    from portal.workflow.review import sign_off

    orthanc.stop()
    study = make_study(patient_alice.patient_record, label="glioma")
    review = sign_off(study, user=radiologist, decision="confirm").review
    study.refresh_from_db()
    assert study.status == StudyStatus.SIGNED
    jobs = Job.objects.filter(kind=JobKind.SEND, study=study)
    assert jobs.count() == 2 and all(j.state == JobState.QUEUED and j.error for j in jobs)

    orthanc.start()
    assert retry_pending_sends(older_than_seconds=0) == 2
    assert set(jobs.values_list("state", flat=True)) == {JobState.DONE}
    held = orthanc_objects(orthanc, tmp_path)
    (sr_path, sr_ds), = held[Comprehensive3DSRStorage]
    assert sr_ds.SOPInstanceUID == DicomSend.objects.get(review=review, what="sr").sop_instance_uid
    assert len(held[SecondaryCaptureImageStorage]) == 1
