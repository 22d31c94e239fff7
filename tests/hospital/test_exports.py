"""GET /api/studies/<id>/sr.dcm and /fhir/: the latest signed version, same access as the report."""
from __future__ import annotations

import io
import json

import highdicom as hd
import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle
from rest_framework.test import APIClient

from hospital.results import FINDING_CODES
from tests.factories import make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def amended(patient_alice, radiologist):
    from portal.workflow.review import amend, sign_off

    study = make_study(patient_alice.patient_record, label="glioma", confidence=0.88)
    sign_off(study, user=radiologist, decision="confirm", report_text="Left frontal mass.")
    amend(study, user=radiologist, decision="override", final_class="meningioma", reason="dural tail")
    return study


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_sr_is_the_latest_signed_version(amended, patient_alice, tmp_path):
    response = client_for(patient_alice).get(f"/api/studies/{amended.pk}/sr.dcm")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(response.content))
    path = tmp_path / "sr.dcm"
    path.write_bytes(response.content)
    sr = hd.sr.srread(path)
    assert ds.InstanceNumber == 2 and "PredecessorDocumentsSequence" in ds
    assert sr.content.get_image_measurement_groups()[-1].finding_type == FINDING_CODES["meningioma"]


def test_fhir_bundle_is_valid_r4_with_a_final_report(patient_alice, radiologist, patient_bob):
    from portal.workflow.review import sign_off

    study = make_study(patient_alice.patient_record, label="pituitary", confidence=0.8)
    sign_off(study, user=radiologist, decision="confirm")
    response = client_for(patient_alice).get(f"/api/studies/{study.pk}/fhir/")
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    bundle = Bundle.model_validate(json.loads(response.content))
    resources = {e.resource.get_resource_type(): e.resource for e in bundle.entry}
    assert set(resources) == {"Patient", "ImagingStudy", "Observation", "DiagnosticReport"}
    report = resources["DiagnosticReport"]
    assert report.status == "final" and report.conclusionCode[0].coding[0].code == FINDING_CODES["pituitary"].value
    assert resources["Patient"].identifier[0].value == "MRN-ALICE"
    assert resources["ImagingStudy"].numberOfInstances == 3
    observations = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "Observation"]
    assert len(observations) == 2  # the AI suggestion and the radiologist's finding
    assert client_for(patient_bob).get(f"/api/studies/{study.pk}/fhir/").status_code == 404


def test_amended_report_is_amended_in_fhir(amended, radiologist):
    bundle = json.loads(client_for(radiologist).get(f"/api/studies/{amended.pk}/fhir/").content)
    (report,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    assert report["status"] == "amended" and report["conclusionCode"][0]["coding"][0]["code"] == "302820008"


def test_unsigned_study_has_no_sr_or_fhir(patient_alice, radiologist):
    study = make_study(patient_alice.patient_record)
    for url in (f"/api/studies/{study.pk}/sr.dcm", f"/api/studies/{study.pk}/fhir/"):
        assert client_for(radiologist).get(url).status_code == 404


def test_images_that_cannot_be_assessed_export_as_such(patient_alice, radiologist, tmp_path):
    """Issue 14: a radiologist's "cannot be assessed" is a finding of its own in SR and FHIR."""
    from portal.workflow.review import sign_off

    study = make_study(patient_alice.patient_record, label="", n_slices=1)
    sign_off(study, user=radiologist, decision="unassessable", unassessable_reason="non_diagnostic", reason="Motion")
    response = client_for(radiologist).get(f"/api/studies/{study.pk}/sr.dcm")
    assert response.status_code == 200
    path = tmp_path / "sr.dcm"
    path.write_bytes(response.content)
    groups = hd.sr.srread(path).content.get_image_measurement_groups()
    assert groups[-1].finding_type == FINDING_CODES["unassessable"]
    bundle = json.loads(client_for(radiologist).get(f"/api/studies/{study.pk}/fhir/").content)
    Bundle.model_validate(bundle)
    (report,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    assert report["conclusionCode"][0]["text"] == "Images could not be assessed"
