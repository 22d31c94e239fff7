"""Demo content for `manage.py seed_demo`: a few studies for the demo patient, so that a
newcomer sees every screen working.

- a prior study, signed by the demo radiologist with a report and a note for the patient;
- a current study with two series, awaiting review (compared with the prior one);
- an out-of-scope study (a CT of the chest): the AI must not give it a tumour class.

The images come from the sample data in ../shared when it is there (slices of the public
brain-tumour data set, wrapped as MR DICOM), and are generated otherwise. Everything goes through the ordinary upload path (scans.ingest) and the
ordinary classification pipeline, run in-process, so the AI results are real.
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pydicom
from django.conf import settings
from django.utils import timezone
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from portal.workflow import review as review_service
from portal.workflow.ingest import submit_upload
from scans.findings import TumourClass
from scans.models import Patient, Study, StudyStatus

# Fixed UIDs (under the 2.25 root) so a second run finds the studies it made.
UID_ROOT = "2.25.31415926535897932384626"
SLICES_PER_SERIES = 12
SHARED_DATA = Path(settings.BASE_DIR).parent / "shared" / "data"

PRIOR_REPORT = (
    "MRI of the brain. The brain tissue, the fluid spaces and the midline look normal. "
    "No mass, no bleeding and no swelling."
)
PRIOR_NOTE = (
    "Your scan looks normal. There is nothing that needs treatment. "
    "Your doctor will talk with you about your headaches at your next visit."
)

Say = Callable[[str], None]


@dataclass
class DemoSeries:
    number: int
    description: str
    images: list[np.ndarray]


@dataclass
class DemoStudy:
    key: int  # a UID component
    description: str
    days_ago: int
    modality: str = "MR"
    body_part: str = "BRAIN"
    series: list[DemoSeries] = field(default_factory=list)


# --- Images -------------------------------------------------------------------------------------


def _phantom(size: int, z: float, *, lesion: bool, seed: int) -> np.ndarray:
    """A head-like phantom: skull ring, brain, ventricles; an optional bright lesion."""
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    scale = np.sqrt(max(0.05, 1 - z * z))
    r = np.sqrt((xx / 0.72) ** 2 + (yy / 0.88) ** 2) / scale
    img = np.where(r < 1.0, 60.0, 0.0) + np.where(r < 0.93, 60.0, 0.0)
    ventricles = ((np.abs(xx) - 0.12) / 0.08) ** 2 + ((yy + 0.05) / 0.22) ** 2 < scale
    img[ventricles & (r < 0.9)] = 40
    if lesion and abs(z) < 0.5:
        blob = np.exp(-(((xx - 0.3) ** 2 + (yy + 0.25) ** 2) / (2 * (0.1 * (1 - abs(z))) ** 2)))
        img += 110 * blob
    img += np.random.default_rng(seed).normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _chest(size: int, z: float, seed: int) -> np.ndarray:
    """A chest-like CT slice in Hounsfield units + 1024: body, two lungs, spine."""
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    body = (xx / 0.9) ** 2 + (yy / 0.6) ** 2 < 1
    lungs = (((np.abs(xx) - 0.4) / 0.3) ** 2 + (yy / 0.42) ** 2) < 1 - 0.3 * z * z
    spine = (xx / 0.08) ** 2 + ((yy - 0.45) / 0.08) ** 2 < 1
    hu = np.full(xx.shape, -1000.0)
    hu[body] = 40
    hu[lungs & body] = -850
    hu[spine] = 700
    hu += np.random.default_rng(seed).normal(0, 8, hu.shape)
    return np.clip(hu + 1024, 0, 4095).astype(np.uint16)


def _sample_images(shared: Path, label: str, start: int, n: int) -> list[np.ndarray]:
    folder = shared / "brain-tumor-mri" / "Training" / label
    files = sorted(folder.glob("*.jpg"))[start:start + n]
    return [np.asarray(Image.open(f).convert("L")) for f in files]


def _dicom_bytes(study: DemoStudy, series: DemoSeries, index: int, pixels: np.ndarray, patient: Patient) -> bytes:
    ct = study.modality == "CT"
    sop_class = CTImageStorage if ct else MRImageStorage
    sop_uid = f"{UID_ROOT}.{study.key}.{series.number}.{index + 1}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.StudyInstanceUID = f"{UID_ROOT}.{study.key}"
    ds.SeriesInstanceUID = f"{UID_ROOT}.{study.key}.{series.number}"
    ds.PatientID, ds.PatientName = patient.mrn, patient.full_name.replace(" ", "^")
    day = timezone.localdate() - dt.timedelta(days=study.days_ago)
    ds.StudyDate = ds.SeriesDate = day.strftime("%Y%m%d")
    ds.StudyTime = "093000"
    ds.Modality, ds.BodyPartExamined = study.modality, study.body_part
    ds.StudyDescription, ds.SeriesDescription = study.description, series.description
    ds.InstitutionName = "Demo Hospital"
    ds.Manufacturer = "Generated for the demo"
    ds.AccessionNumber = f"DEMO{study.key:04d}"
    ds.SeriesNumber, ds.InstanceNumber = series.number, index + 1
    ds.ImagePositionPatient = [0.0, 0.0, float(index * 5)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.9, 0.9], 5.0
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    bits = 16 if ct else 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    if ct:
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


# --- The demo's studies -------------------------------------------------------------------------


def demo_studies(shared: Path | None = SHARED_DATA) -> list[DemoStudy]:
    """Prior (to be signed), current (awaiting review), out of scope."""
    n = SLICES_PER_SERIES
    zs = np.linspace(-0.8, 0.8, n)
    if shared is not None and (shared / "brain-tumor-mri" / "Training" / "glioma").is_dir():
        prior_series = [DemoSeries(1, "Ax T1 post-contrast", _sample_images(shared, "notumor", 0, n))]
        current_series = [DemoSeries(1, "Ax T1 post-contrast", _sample_images(shared, "glioma", 0, n)),
                          DemoSeries(2, "Ax T1 post-contrast (repeat)", _sample_images(shared, "glioma", n, n))]
    else:
        prior_series = [DemoSeries(1, "Ax T2", [_phantom(224, z, lesion=False, seed=i) for i, z in enumerate(zs)])]
        current_series = [
            DemoSeries(1, "Ax T1 post-contrast", [_phantom(224, z, lesion=True, seed=i) for i, z in enumerate(zs)]),
            DemoSeries(2, "Ax T2", [_phantom(224, z, lesion=True, seed=50 + i) for i, z in enumerate(zs)]),
        ]
    prior = DemoStudy(1, "MR brain", 400, series=prior_series)
    current = DemoStudy(2, "MR brain with contrast", 3, series=current_series)
    chest = DemoStudy(3, "CT chest", 1, modality="CT", body_part="CHEST", series=[
        DemoSeries(1, "Ax chest 5 mm", [_chest(256, z, seed=i) for i, z in enumerate(np.linspace(-0.8, 0.8, 6))])])
    return [prior, current, chest]


def _files(study: DemoStudy, patient: Patient) -> Iterator[Any]:
    for series in study.series:
        for i, pixels in enumerate(series.images):
            yield (f"{study.key}-{series.number}-{i + 1:03d}.dcm", _dicom_bytes(study, series, i, pixels, patient))


def _import(study: DemoStudy, patient: Patient, say: Say) -> Study:
    from portal.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the classifier runs here, even when a broker is configured
    try:
        result = submit_upload(list(_files(study, patient)), patient=patient, user=None, allow_mismatch=True)
    finally:
        app.conf.task_always_eager = eager
    stored = result.studies[0]
    stored.refresh_from_db()
    say(f"  {study.description}: {stored.series.count()} series, status {stored.get_status_display()}")
    return stored


def _sign_prior(study: Study, radiologist: Any) -> None:
    """Signed as no tumour, with a report and a note for the patient."""
    if study.status != StudyStatus.AWAITING_REVIEW:
        return
    review_service.add_note(study, user=radiologist, text=PRIOR_NOTE, for_patient=True)
    primary = study.primary_prediction()
    if primary is not None and primary.is_brain_mri and primary.label == TumourClass.NOTUMOR:
        decision, reason = "confirm", ""
    else:
        decision, reason = "override", "Normal appearances on the radiologist's read."
    review_service.sign_off(
        study, user=radiologist, decision=decision, final_class=TumourClass.NOTUMOR, reason=reason, report_text=PRIOR_REPORT
    )


def seed_studies(patient: Patient, radiologist: Any, say: Say, shared: Path | None = SHARED_DATA) -> list[Study]:
    """Import the demo studies for `patient` unless they are there already."""
    if patient.studies.exists():
        say("  the demo patient already has studies: left as they are")
        return list(patient.studies.all())
    source = "the sample data in ../shared" if shared is not None and shared.is_dir() else "generated images"
    say(f"Demo studies (from {source}):")
    stored = [_import(study, patient, say) for study in demo_studies(shared)]
    _sign_prior(stored[0], radiologist)
    return stored
