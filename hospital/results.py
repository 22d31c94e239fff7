"""DICOM results of a study: a Comprehensive 3D SR in the TID 1500 (Measurement Report) style
and a Secondary Capture of the key slice with its heat map, built with highdicom.

Every UID is derived from the study and the report version (or the AI model version for a
preliminary result), so building the same result twice gives the same SOP instance: a re-send
or a retry stores the same object again, and `sr.dcm` answers what the PACS holds.

Codes: SNOMED CT and DCM where a concept exists; the radiologist's confirm/override decision
has no standard code and uses the local scheme 99BMRI (see docs/dicom-conformance.md).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from django.conf import settings
from highdicom.sr import CodedConcept
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import Comprehensive3DSRStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from scans.imaging import read_verified, slice_pixels
from scans.models import Prediction, Review, Series, SlicePrediction, SourceFormat, Study

MANUFACTURER = "Brain MRI portal"
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
LOCAL_SCHEME = "99BMRI"

FINDING_CODES = {
    "glioma": CodedConcept("393563007", "SCT", "Glioma"),
    "meningioma": CodedConcept("302820008", "SCT", "Intracranial meningioma"),
    "pituitary": CodedConcept("254956000", "SCT", "Pituitary adenoma"),
    "notumor": CodedConcept("111286", "DCM", "No abnormality"),
    # A radiologist's finding, never an AI label: the images could not be assessed.
    "unassessable": CodedConcept("UNASSESSABLE", LOCAL_SCHEME, "Images could not be assessed"),
}
DECISION = CodedConcept("DECISION", LOCAL_SCHEME, "Radiologist decision on the AI suggestion")
DECISION_CODES = {
    "confirm": CodedConcept("CONFIRM", LOCAL_SCHEME, "AI suggestion confirmed"),
    "override": CodedConcept("OVERRIDE", LOCAL_SCHEME, "AI suggestion overridden"),
    "unassessable": CodedConcept("UNASSESSABLE", LOCAL_SCHEME, "Images could not be assessed"),
}
PROBABILITY = CodedConcept("122157", "DCM", "Probability")  # PS3.16 CID 7041-style measurement name


@dataclass(frozen=True)
class Subject:
    """What a result is about: a signed review version, or (preliminary) an AI prediction."""

    study: Study
    prediction: Prediction | None
    review: Review | None

    @property
    def preliminary(self) -> bool:
        return self.review is None

    @property
    def seed(self) -> str:
        tail = f"review-v{self.review.version}" if self.review else f"ai-{self.prediction.model_version if self.prediction else ''}"
        return f"{self.study.study_instance_uid}:{tail}"


def uid(*parts: str) -> str:
    prefix = getattr(settings, "DICOM_UID_PREFIX", "") or None
    return generate_uid(prefix=prefix, entropy_srcs=["brain-mri-portal", *parts]) if prefix else generate_uid(
        entropy_srcs=["brain-mri-portal", *parts])


def sr_uids(subject: Subject) -> tuple[str, str]:
    """(series, SOP instance) of the subject's SR."""
    return uid(subject.study.study_instance_uid, "sr-series"), uid(subject.seed, "sr")


def sc_uids(subject: Subject) -> tuple[str, str]:
    return uid(subject.study.study_instance_uid, "sc-series"), uid(subject.seed, "sc")


def person_name(name: str) -> str:
    """DICOM PN from a display name: "Dr Rita Radiologist" → "Radiologist^Dr Rita"."""
    parts = name.split()
    if len(parts) < 2:
        return f"{name}^"
    return f"{parts[-1]}^{' '.join(parts[:-1])}"[:64]


# --- The source images ----------------------------------------------------------------------


def _with_patient(ds: Dataset, study: Study) -> Dataset:
    """The PACS files results under the hospital's PatientID: the record's MRN."""
    patient = study.patient
    ds.PatientID = patient.mrn
    if not str(ds.get("PatientName", "") or ""):
        ds.PatientName = person_name(patient.full_name)
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                    "ReferringPhysicianName"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def _raster_reference(sl: Any, series: Series) -> Dataset:
    """A JPEG/PNG upload has no DICOM header: describe it as the secondary capture it would be."""
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sl.sop_instance_uid
    ds.StudyInstanceUID = series.study.study_instance_uid
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.Modality = series.modality or "OT"
    ds.PatientName = person_name(series.study.patient.full_name)
    ds.Rows, ds.Columns = sl.rows, sl.columns
    return ds


def reference_dataset(sl: Any) -> Dataset:
    series = sl.series
    if sl.source_format != SourceFormat.DICOM:
        ds = _raster_reference(sl, series)
    else:
        data = read_verified(sl.file, sl.sha256, sl.original_filename)
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        ds.SOPInstanceUID = sl.sop_instance_uid.split("#")[0]
    return _with_patient(ds, series.study)


def _key_slice(subject: Subject):
    prediction = subject.prediction
    if prediction is not None and prediction.key_slice is not None:
        return prediction.key_slice
    series = prediction.series if prediction else subject.study.series.order_by("series_number", "id").first()
    slices = list(series.ordered_slices()) if series else []
    if not slices:
        raise ValueError("the study has no images to reference")
    return slices[len(slices) // 2]


# --- The structured report --------------------------------------------------------------------


def _person(review: Review) -> hd.sr.ObserverContext:
    author = review.author
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=person_name(author.full_name or author.email), login_name=author.email[:64],
            organization_name=settings.DICOM_INSTITUTION[:64]),
    )


def _device(prediction: Prediction) -> hd.sr.ObserverContext:
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=uid("model", prediction.model_name, prediction.model_version), name=prediction.model_name[:64],
            manufacturer_name=MANUFACTURER, model_name=prediction.model_version[:64]),
    )


def _ai_group(prediction: Prediction, key: Dataset) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid(prediction.series.series_instance_uid, "ai-group",
                                                              prediction.model_version), identifier="AI suggestion"),
        algorithm_id=hd.sr.AlgorithmIdentification(name=prediction.model_name[:64], version=prediction.model_version[:64]),
        # Outside the AI's scope (prediction.out_of_scope_reason): no finding, only the model's confidence.
        finding_type=FINDING_CODES.get(prediction.label) if prediction.is_brain_mri else None,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Brain)],
        measurements=[hd.sr.Measurement(name=PROBABILITY, value=round(float(prediction.confidence), 4),
                                        unit=codes.UCUM.NoUnits)],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(key)],
    )


def _text(name: Any, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=name, value=value[:1024],
                                 relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)


def _radiologist_group(review: Review, key: Dataset) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid(review.study.study_instance_uid, "review", str(review.version)),
                                                     identifier=f"Radiologist report version {review.version}"),
        finding_type=FINDING_CODES[review.final_class],
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Brain)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(DECISION, DECISION_CODES[review.decision])],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(key)],
    )
    container = group[0]
    if review.reason:
        container.ContentSequence.append(_text(codes.DCM.Comment, f"Reason: {review.reason}"))
    if review.report_text:
        container.ContentSequence.append(_text(codes.DCM.Impression, review.report_text))
    return group


def _predecessor(subject: Subject) -> list[Dataset]:
    if subject.review is None or subject.review.version <= 1:
        return []
    previous = Subject(subject.study, None, subject.study.reviews.get(version=subject.review.version - 1))
    series_uid, sop_uid = sr_uids(previous)
    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = subject.study.study_instance_uid, series_uid, sop_uid
    ds.SOPClassUID = Comprehensive3DSRStorage
    return [ds]


def build_sr(subject: Subject) -> hd.sr.Comprehensive3DSR:
    key_slice = _key_slice(subject)
    key = reference_dataset(key_slice)
    groups, person = [], None
    if subject.prediction is not None:
        groups.append(_ai_group(subject.prediction, key))
    if subject.review is not None:
        groups.append(_radiologist_group(subject.review, key))
        person = _person(subject.review)
    context = hd.sr.ObservationContext(observer_person_context=person,
                                       observer_device_context=_device(subject.prediction) if subject.prediction else None)
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=codes.LN.BrainMRI,
                                     imaging_measurements=groups, title=codes.DCM.ImagingMeasurementReport)
    series_uid, sop_uid = sr_uids(subject)
    review = subject.review
    return hd.sr.Comprehensive3DSR(
        evidence=[key], content=report[0], series_instance_uid=series_uid, series_number=SR_SERIES_NUMBER,
        sop_instance_uid=sop_uid, instance_number=review.version if review else 1, manufacturer=MANUFACTURER,
        is_complete=review is not None, is_final=review is not None, is_verified=review is not None,
        institution_name=settings.DICOM_INSTITUTION[:64],
        verifying_observer_name=person_name(review.author.full_name or review.author.email) if review else None,
        verifying_organization=settings.DICOM_INSTITUTION[:64] if review else None,
        previous_versions=_predecessor(subject) or None,
        series_description="AI result (preliminary)" if review is None else "Signed report",
        content_date=_when(subject).date(), content_time=_when(subject).time(),
    )


def _when(subject: Subject) -> datetime:
    if subject.review is not None and subject.review.signed_at:
        return subject.review.signed_at
    return subject.prediction.created_at if subject.prediction else subject.study.created_at


# --- The key image ------------------------------------------------------------------------------


def _overlay(sl: Any, prediction: Prediction | None) -> np.ndarray:
    """The key slice at its default window, with the heat map blended on top when there is one."""
    base = Image.fromarray(slice_pixels(sl)).convert("RGBA")
    result = SlicePrediction.objects.filter(slice=sl, prediction=prediction).exclude(heatmap="").first() if prediction else None
    if result is not None:
        with result.heatmap.open("rb") as handle:
            heat = Image.open(io.BytesIO(handle.read())).convert("RGBA").resize(base.size, Image.Resampling.BILINEAR)
        base = Image.alpha_composite(base, heat)
    return np.asarray(base.convert("RGB"), dtype=np.uint8)


def _orientation(ref: Dataset) -> tuple[str, str] | None:
    """PatientOrientation (row, column directions) from ImageOrientationPatient, if known."""
    cosines = [float(v) for v in ref.get("ImageOrientationPatient", []) or []]
    if len(cosines) != 6:
        return None
    letters = (("L", "R"), ("P", "A"), ("H", "F"))
    out = []
    for vector in (cosines[:3], cosines[3:]):
        axis = int(np.argmax(np.abs(vector)))
        out.append(letters[axis][0] if vector[axis] > 0 else letters[axis][1])
    return out[0], out[1]


def build_sc(subject: Subject) -> hd.sc.SCImage:
    sl = _key_slice(subject)
    series_uid, sop_uid = sc_uids(subject)
    ref = reference_dataset(sl)
    orientation = _orientation(ref)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref, pixel_array=_overlay(sl, subject.prediction), photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", series_instance_uid=series_uid, series_number=SC_SERIES_NUMBER,
        sop_instance_uid=sop_uid, instance_number=subject.review.version if subject.review else 1,
        manufacturer=MANUFACTURER, transfer_syntax_uid=ExplicitVRLittleEndian,
        patient_orientation=orientation or ("L", "P"),
    )
    if orientation is None:  # an upload without geometry: unknown (Type 2, empty)
        sc.PatientOrientation = ""
    sc.SeriesDescription = "Key image with AI heat map" + (" (preliminary)" if subject.preliminary else "")
    sc.ImageComments = "Key slice with the AI heat map overlay; not for primary diagnosis."
    sc.BurnedInAnnotation = "NO"
    sc.Laterality = ""  # the brain is not a paired organ
    return sc


def encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
