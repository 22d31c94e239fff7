"""The AI scope (scans.scope): one test per header rule on pydicom-built objects, then the
rules through the upload service, the API (415), the pipeline (no class, no model run) and
import_scans (per-series outcome)."""
from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    BasicTextSRStorage,
    EncapsulatedPDFStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    KeyObjectSelectionDocumentStorage,
    RTDoseStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)

from scans import scope
from scans.errors import NotAnImage
from scans.ingest import import_files
from scans.models import Prediction, Series, Slice
from tests.factories import make_patient
from tests.ingest import builders as b


def _retag(ds: Dataset | None = None, **tags) -> Dataset:
    ds = ds or b.make_dataset()
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def _with_sop_class(uid: str, **tags) -> Dataset:
    ds = _retag(**tags)
    ds.SOPClassUID = uid
    ds.file_meta.MediaStorageSOPClassUID = uid
    return ds


def _region(code: str, meaning: str) -> Sequence:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "SCT", meaning
    return Sequence([item])


# --- SOP class ------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", [SegmentationStorage, BasicTextSRStorage, GrayscaleSoftcopyPresentationStateStorage,
                                 KeyObjectSelectionDocumentStorage, RTDoseStorage, EncapsulatedPDFStorage])
def test_non_image_sop_classes_never_become_slices(uid):
    verdict = scope.assess(_with_sop_class(uid))  # all of them still carry pixel data here
    assert not verdict.image and not verdict.in_scope
    assert uid in verdict.problem and "not an image" in verdict.problem


def test_image_storage_classes_pass_the_sop_rule():
    assert scope.assess(b.make_dataset()).in_scope
    assert scope.assess(_with_sop_class(SecondaryCaptureImageStorage)).image


# --- Modality, body part, sequence -------------------------------------------------------------


@pytest.mark.parametrize("modality", ["CT", "US", "DX", "CR", "OT"])
def test_other_modalities_are_out_of_scope(modality):
    verdict = scope.assess(_retag(Modality=modality))
    assert verdict.image and not verdict.in_scope
    assert verdict.reason == f"outside the model's scope: modality {modality}"


@pytest.mark.parametrize("part", ["SHOULDER", "ABDOMEN", "KNEE", "CSPINE"])
def test_mr_of_other_body_parts_is_out_of_scope(part):
    assert scope.assess(_retag(BodyPartExamined=part)).reason == f"outside the model's scope: body part {part}"


@pytest.mark.parametrize("part", ["HEAD", "BRAIN", "Brain", "SKULL"])
def test_head_and_brain_body_parts_are_in_scope(part):
    assert scope.assess(_retag(BodyPartExamined=part)).in_scope


def test_missing_body_part_falls_through_to_the_image_check():
    ds = b.make_dataset()
    assert "BodyPartExamined" not in ds and scope.assess(ds).in_scope


def test_anatomic_region_sequence_decides_like_body_part():
    assert scope.assess(_retag(AnatomicRegionSequence=_region("72696002", "Knee"))).reason.endswith("body part Knee")
    assert scope.assess(_retag(AnatomicRegionSequence=_region("12738006", "Brain"))).in_scope


@pytest.mark.parametrize(
    "tags, kind",
    [
        ({"ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]}, "diffusion"),
        ({"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]}, "diffusion"),
        ({"SequenceName": "*ep_b1000t"}, "diffusion"),
        ({"DiffusionBValue": 0}, "diffusion"),
        ({"SeriesDescription": "AX TRACE"}, "diffusion"),
        ({"SeriesDescription": "ep2d_perf"}, "perfusion"),
        ({"SeriesDescription": "SWI_Images"}, "susceptibility-weighted"),
        ({"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, "localiser"),
        ({"SeriesDescription": "3-plane loc"}, "localiser"),
        ({"ImageType": ["DERIVED", "PRIMARY", "T1_MAP"]}, "derived or functional map"),
        ({"ScanningSequence": "EP", "ImageType": ["ORIGINAL", "PRIMARY", "MOSAIC"]}, "derived or functional map"),
    ],
)
def test_unsupported_sequences_are_out_of_scope(tags, kind):
    assert scope.assess(_retag(**tags)).reason == f"outside the model's scope: sequence not supported ({kind})"


@pytest.mark.parametrize("description", ["AX T1 POST GAD", "t2_tse_tra", "COR FLAIR", "T1 MPRAGE SAG"])
def test_structural_sequences_stay_in_scope(description):
    assert scope.assess(_retag(SeriesDescription=description, ImageType=["ORIGINAL", "PRIMARY", "M", "ND"])).in_scope


def test_the_real_dwi_b0_series_is_out_of_scope_as_diffusion(shared_data):
    import pydicom

    path = sorted((shared_data / "dicom" / "brain-dwi-sagittal-48").glob("*.dcm"))[0]
    verdict = scope.assess(pydicom.dcmread(path, stop_before_pixels=True))
    assert verdict.reason == "outside the model's scope: sequence not supported (diffusion)"


# --- Through the entries ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_segmentation_uploaded_alone_is_refused_with_415_naming_file_and_class(staff_api, patient_alice, media):
    seg = b.to_bytes(_with_sop_class(SegmentationStorage, Modality="SEG"))
    patient = patient_alice.patient_record
    response = staff_api.post(reverse("api:uploads"), {"patient": patient.pk,
                                                       "files": [SimpleUploadedFile("mask.dcm", seg)]})
    assert response.status_code == 415, response.content
    body = json.dumps(response.json())
    assert "mask.dcm" in body and "Segmentation Storage" in body
    assert Slice.objects.count() == 0 and Series.objects.count() == 0


@pytest.mark.django_db
def test_an_sr_with_pixel_data_in_a_zip_is_listed_never_a_slice(media):
    patient = make_patient(mrn="MRN-TEST")
    sr = b.to_bytes(_with_sop_class(BasicTextSRStorage, Modality="SR"))
    archive = b.zip_bytes([("series/a.dcm", b.dicom_bytes()), ("series/report.dcm", sr)])
    result = import_files([("export.zip", archive)], patient=patient)
    assert Slice.objects.count() == 1
    reasons = {r["file"]: r["reason"] for r in result.rejected}
    assert "Basic Text SR Storage" in reasons["export.zip/series/report.dcm"], result.rejected
    with pytest.raises(NotAnImage):
        import_files([("report.dcm", sr)], patient=patient)
    only_reports = b.zip_bytes([("report.dcm", sr), ("README.txt", b"a report")])
    with pytest.raises(NotAnImage) as refused:  # nothing else to import: 415, not "no images"
        import_files([("reports.zip", only_reports)], patient=patient)
    assert refused.value.status == 415 and "Basic Text SR Storage" in refused.value.message


@pytest.mark.django_db
def test_out_of_scope_series_is_stored_with_its_reason_and_gets_no_class(media, monkeypatch):
    from portal.workflow import classification, predictor

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not run on an out-of-scope series")

    patient = make_patient(mrn="MRN-TEST")
    result = import_files(b.series_files(3, Modality="CT"), patient=patient)
    series = Series.objects.get()
    assert series.scope_reason == "outside the model's scope: modality CT" and series.slices.count() == 3
    model = predictor.get_predictor()
    monkeypatch.setattr(type(model), "predict_series", no_model, raising=False)
    monkeypatch.setattr(classification, "request_explanation", lambda study, **kw: None)
    job = classification.start_processing(result.studies[0])[0]
    classification.run_classification(job.pk)
    prediction = Prediction.objects.get(series=series)
    assert prediction.label == "" and not prediction.is_brain_mri and prediction.probabilities == {}
    assert prediction.out_of_scope_reason == "outside the model's scope: modality CT"
    assert prediction.key_slice is None and not prediction.slice_results.exists()  # no heat maps either


@pytest.mark.django_db
def test_import_scans_reports_the_ai_outcome_per_series(tmp_path, media, settings):
    folder = tmp_path / "export"
    folder.mkdir()
    for name, data in b.series_files(2, Modality="CT"):
        (folder / name).write_bytes(data)
    make_patient(mrn="MRN-TEST")
    out = io.StringIO()
    call_command("import_scans", str(folder), "--patient", "MRN-TEST", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    series = summary["studies"][0]["series"][0]
    assert series["ai"] == "outside the model's scope: modality CT"
    assert "series " in out.getvalue() and "AI: outside the model's scope: modality CT" in out.getvalue()


@pytest.mark.django_db
def test_header_less_images_the_image_check_rejects_get_its_reason_not_a_class(media, monkeypatch):
    from portal.workflow import classification

    monkeypatch.setattr(classification, "request_explanation", lambda study, **kw: None)
    files = [(f"blank{i}.png", b.png_bytes(96, 96, value=90 + i)) for i in range(3)]  # flat grey frames
    result = import_files(files, patient=make_patient(mrn="MRN-TEST"))
    assert Series.objects.get().scope_reason == ""  # no header: only the image check can tell
    classification.run_classification(classification.start_processing(result.studies[0])[0].pk)
    prediction = Prediction.objects.get()
    assert prediction.label == "" and not prediction.is_brain_mri
    assert prediction.out_of_scope_reason == "outside what the model was trained on (image check: 3 of 3 slices)"
