"""The DICOM listener against real senders: dcmtk's echoscu/storescu, pynetdicom and Orthanc."""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage

from accounts.models import AuditEvent
from hospital.models import UnmatchedState, UnmatchedStudy
from scans.jobs import JobKind
from scans.models import Job, Patient, Prediction, Slice, Study, StudyStatus
from tests.hospital.conftest import LISTENER_AE, LISTENER_PORT, ORTHANC_AE, tool, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def echo(calling: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("echoscu"), "-aet", calling, "-aec", LISTENER_AE, "127.0.0.1", str(LISTENER_PORT)],
                          capture_output=True, text=True, timeout=60)


def storescu(files: list[Path], calling: str = "SCANNER") -> subprocess.CompletedProcess:
    return subprocess.run([tool("storescu"), "-aet", calling, "-aec", LISTENER_AE, "127.0.0.1", str(LISTENER_PORT),
                           *map(str, files)], capture_output=True, text=True, timeout=300)


def dcm_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dcm"))


def slices_of(study_uid: str) -> int:
    return Slice.objects.filter(series__study__study_instance_uid=study_uid).count()


def test_echo_from_this_machine_is_accepted_and_unknown_callers_are_refused(listener, settings):
    assert echo("ANYONE").returncode == 0  # embedded default: any caller from 127.0.0.1
    settings.DICOM_ALLOWED_CALLERS = ["MODALITY1@127.0.0.1"]
    refused = echo("STRANGER")
    assert refused.returncode != 0
    assert "reject" in (refused.stdout + refused.stderr).lower()
    assert echo("MODALITY1").returncode == 0


def test_orthanc_sends_the_48_slice_series_one_study_classified_once(listener, orthanc, series_48):
    header = pydicom.dcmread(dcm_files(series_48)[0], stop_before_pixels=True)
    Patient.objects.create(mrn=header.PatientID, full_name="DWI volunteer")
    for path in dcm_files(series_48):
        orthanc.post("/instances", path.read_bytes(), "application/dicom")
    (orthanc_study,) = orthanc.get("/studies")
    orthanc.post("/modalities/portal/store", f'{{"Resources": ["{orthanc_study}"], "Synchronous": true}}'.encode())

    def classified():
        study = Study.objects.filter(study_instance_uid=header.StudyInstanceUID).first()
        return study if study and Prediction.objects.filter(series__study=study).exists() else None

    study = wait_until(classified, what="the study to be classified")
    wait_until(lambda: Study.objects.get(pk=study.pk).status == StudyStatus.AWAITING_REVIEW, what="awaiting review")
    assert Study.objects.count() == 1
    assert slices_of(header.StudyInstanceUID) == 48
    wait_until(lambda: AuditEvent.objects.filter(action="dicom.receive", detail__calling_ae=ORTHANC_AE).exists(),
               what="the audit row of the received study")
    # Processed once for the association, never once per instance.
    assert Job.objects.filter(study=study, kind=JobKind.CLASSIFY).count() == study.series.count() == 1


def test_unknown_patient_waits_in_the_unmatched_list_then_a_record_is_made_from_the_header(
        listener, series_48, administrator):
    from portal.workflow.dicom_in import file_unmatched

    result = storescu(dcm_files(series_48))
    assert result.returncode == 0, result.stderr
    unmatched = wait_until(lambda: UnmatchedStudy.objects.filter(instances__isnull=False).distinct().first(),
                           what="the unmatched study")
    wait_until(lambda: unmatched.instances.count() == 48, what="48 held instances")
    assert not Study.objects.exists() and not Patient.objects.exists()  # never guessed
    assert storescu(dcm_files(series_48)[:5]).returncode == 0  # sent again: held once
    listener.stop()
    assert unmatched.instances.count() == 48 and UnmatchedStudy.objects.count() == 1

    file_unmatched(unmatched, user=administrator)
    patient = Patient.objects.get()
    assert (patient.mrn, patient.full_name, patient.sex) == ("jflab", "dtiferesh", "M")  # as in the header
    assert slices_of(unmatched.study_instance_uid) == 48
    unmatched.refresh_from_db()
    assert unmatched.state == UnmatchedState.FILED and not unmatched.instances.exists()


def _send_then_drop(files: list[Path]) -> None:
    ae = AE(ae_title="DROPPER")
    ae.add_requested_context(MRImageStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    assoc = ae.associate("127.0.0.1", LISTENER_PORT, ae_title=LISTENER_AE)
    assert assoc.is_established
    for path in files:
        assert assoc.send_c_store(pydicom.dcmread(path)).Status == 0
    assoc.abort()  # no release: the sender vanished


def test_abrupt_disconnect_duplicates_and_ten_concurrent_associations_lose_or_duplicate_no_slice(
        listener, series_48, settings):
    files = dcm_files(series_48)
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    Patient.objects.create(mrn=header.PatientID)
    _send_then_drop(files[:20])
    wait_until(lambda: slices_of(header.StudyInstanceUID) == 20, what="the 20 instances sent before the abort")

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda n: storescu(files, calling=f"SCANNER{n}"), range(10)))
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results if r.returncode]
    listener.stop()  # every association has ended and been handed over
    assert slices_of(header.StudyInstanceUID) == 48
    uids = set(Slice.objects.values_list("sop_instance_uid", flat=True))
    assert uids == {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    assert Study.objects.count() == 1


def test_an_open_association_is_filed_after_a_quiet_period_and_processed_once(listener, series_48):
    files = dcm_files(series_48)
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    Patient.objects.create(mrn=header.PatientID)
    listener.quiet_seconds = 1.0
    ae = AE(ae_title="SLOWPACS")
    ae.add_requested_context(MRImageStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    assoc = ae.associate("127.0.0.1", LISTENER_PORT, ae_title=LISTENER_AE)
    for path in files:
        assert assoc.send_c_store(pydicom.dcmread(path)).Status == 0
    study = wait_until(lambda: Study.objects.filter(study_instance_uid=header.StudyInstanceUID).first(),
                       what="the study filed while the association is still open")
    assert assoc.is_established and slices_of(header.StudyInstanceUID) == 48
    assoc.release()
    listener.stop()
    assert Job.objects.filter(study=study, kind=JobKind.CLASSIFY).count() == 1


def test_instances_left_in_the_spool_by_a_crash_are_filed_at_the_next_start(transactional_db, series_48, tmp_path):
    from portal.workflow.dicom_in import make_listener

    files = dcm_files(series_48)[:3]
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    Patient.objects.create(mrn=header.PatientID)
    left = tmp_path / "spool" / "SCANNER_0123"
    left.mkdir(parents=True)
    for path in files:
        (left / path.name).write_bytes(path.read_bytes())
    server = make_listener(port=LISTENER_PORT, bind="127.0.0.1", spool_dir=tmp_path / "spool")
    server.start()
    server.stop()
    assert slices_of(header.StudyInstanceUID) == 3 and not left.exists()


def test_a_damaged_instance_is_refused_with_a_reason_and_nothing_is_kept(listener, series_48):
    ds = pydicom.dcmread(dcm_files(series_48)[0])
    Patient.objects.create(mrn=ds.PatientID)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]  # truncated pixels
    ae = AE(ae_title="BROKEN")
    ae.add_requested_context(MRImageStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    assoc = ae.associate("127.0.0.1", LISTENER_PORT, ae_title=LISTENER_AE)
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0xC000 and status.ErrorComment
    listener.stop()
    assert not Slice.objects.exists() and not UnmatchedStudy.objects.exists()


def test_a_batch_that_meets_a_database_outage_is_filed_when_it_is_back(listener, series_48):
    from django.db import OperationalError

    files = dcm_files(series_48)[:4]
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    Patient.objects.create(mrn=header.PatientID)
    real, calls = listener.on_batch, []

    def outage_once(paths, calling_ae):
        calls.append(len(paths))
        if len(calls) == 1:
            raise OperationalError("the database is restarting")
        return real(paths, calling_ae)

    listener.on_batch = outage_once
    listener.retry_seconds = 1.0
    assert storescu(files).returncode == 0
    wait_until(lambda: slices_of(header.StudyInstanceUID) == 4, what="the held batch to be filed on retry")
    assert calls == [4, 4]
    listener.stop()
    assert not any((listener.spool_dir / "retry").glob("*/*.dcm"))
