"""The DICOM SR (TID 1500 style) and the key-image Secondary Capture: built with highdicom,
read back by highdicom, and valid for dicom3tools' dciodvfy (no errors)."""
from __future__ import annotations

import subprocess

import highdicom as hd
import pydicom
import pytest

from hospital.results import DECISION, DECISION_CODES, FINDING_CODES, Subject, build_sc, build_sr, encode
from tests.factories import make_study
from tests.hospital.conftest import tool

pytestmark = pytest.mark.django_db


def dciodvfy_errors(path) -> list[str]:
    run = subprocess.run([tool("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def values(ds, keyword: str) -> list[str]:
    """Every value of `keyword` anywhere in the dataset (content tree included)."""
    found = []
    for element in ds.iterall():
        if element.keyword == keyword:
            found.append(str(element.value))
    return found


@pytest.fixture
def signed(patient_alice, radiologist):
    from portal.workflow.review import sign_off

    study = make_study(patient_alice.patient_record, label="glioma", confidence=0.91)
    result = sign_off(study, user=radiologist, decision="override", final_class="meningioma", reason="dural tail",
                      report_text="Extra-axial mass with a dural tail.")
    return study, result.review


def test_sr_of_a_signed_report_holds_the_finding_ai_suggestion_decision_and_references(signed, tmp_path):
    study, review = signed
    prediction = review.prediction
    path = tmp_path / "sr.dcm"
    path.write_bytes(encode(build_sr(Subject(study, prediction, review))))

    sr = hd.sr.srread(path)
    assert sr.PatientID == study.patient.mrn and sr.StudyInstanceUID == study.study_instance_uid
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("COMPLETE", "VERIFIED", "FINAL")
    groups = sr.content.get_planar_roi_measurement_groups() + sr.content.get_image_measurement_groups()
    ai, radiologist = groups
    assert ai.finding_type == FINDING_CODES["glioma"]
    assert ai.get_measurements()[0].value == pytest.approx(0.91)
    assert radiologist.finding_type == FINDING_CODES["meningioma"]
    assert radiologist.get_qualitative_evaluations(name=DECISION)[0].value == DECISION_CODES["override"]
    texts = values(sr, "TextValue")
    assert {"test-model", "test-1"} <= set(texts)  # the model's name and version
    assert "Reason: dural tail" in texts and "Extra-axial mass with a dural tail." in texts
    assert "Radiologist^Dr Rita" in values(sr, "PersonName") + values(sr, "VerifyingObserverName")
    key = prediction.key_slice
    assert key.sop_instance_uid in values(sr, "ReferencedSOPInstanceUID")  # the key slice of ...
    assert key.series.series_instance_uid in values(sr, "SeriesInstanceUID")  # ... the source series
    assert dciodvfy_errors(path) == []


def test_amendment_gets_a_new_sr_that_names_its_predecessor(signed, radiologist):
    from portal.workflow.review import amend

    study, first = signed
    second = amend(study, user=radiologist, decision="confirm", reason="second look").review
    sr1 = build_sr(Subject(study, first.prediction, first))
    sr2 = build_sr(Subject(study, second.prediction, second))
    assert sr1.SOPInstanceUID != sr2.SOPInstanceUID
    assert sr2.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0] \
        .ReferencedSOPInstanceUID == sr1.SOPInstanceUID
    assert build_sr(Subject(study, first.prediction, first)).SOPInstanceUID == sr1.SOPInstanceUID  # stable


def test_preliminary_sr_and_secondary_capture(patient_alice, tmp_path):
    study = make_study(patient_alice.patient_record, label="pituitary")
    prediction = study.series.get().predictions.get()
    sr = build_sr(Subject(study, prediction, None))
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("PARTIAL", "UNVERIFIED", "PRELIMINARY")
    sc = build_sc(Subject(study, prediction, None))
    path = tmp_path / "sc.dcm"
    path.write_bytes(encode(sc))
    back = pydicom.dcmread(path)
    assert back.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage and back.PhotometricInterpretation == "RGB"
    assert back.pixel_array.shape == (64, 64, 3) and back.PatientID == study.patient.mrn
    assert dciodvfy_errors(path) == []
