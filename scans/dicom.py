"""Describing one DICOM upload for import: `parse` validates the file (scans.dicom_read),
decodes every frame once (scans.dicom_pixels, proving the data is whole) and returns a
DicomObject: the study/series/patient fields and, per frame, its UID, position along the
slice normal and default window. Valid files that are not images raise SkipFile."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from scans import scope
from scans.dicom_pixels import PIXEL_TAGS, auto_window, decode_checked, modality_values, window_from_tags
from scans.dicom_read import SkipFile, corrupt_on_error, int_value, read_dataset, validate_image_header
from scans.errors import CorruptFile, NotAnImage
from scans.validation import Readable

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


@dataclass
class DicomFrame:
    frame_index: int
    sop_instance_uid: str
    instance_number: int | None
    slice_location: float | None
    rows: int
    columns: int
    window_center: float | None
    window_width: float | None


@dataclass
class DicomObject:
    filename: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    patient_id: str
    modality: str = "MR"
    study_date: Any = None
    study_description: str = ""
    accession_number: str = ""
    series_number: int | None = None
    series_description: str = ""
    body_part: str = ""
    institution: str = ""
    scope_reason: str = ""  # scans.scope: why the AI must not label it ("" = in scope by header)
    frames: list[DicomFrame] = field(default_factory=list)


def parse(data: Readable, filename: str) -> DicomObject:
    """Validate a DICOM file, decode every frame once (proving it is whole) and describe it.
    Raises ScanError for a bad file and SkipFile for a valid one that is not an image."""
    with corrupt_on_error(filename):
        return _parse(data, filename)


def _parse(data: Readable, filename: str) -> DicomObject:
    ds = read_dataset(data, filename)
    verdict = _check_importable(ds, filename)
    n_frames = validate_image_header(ds, filename)
    pixels = decode_checked(ds, filename)
    obj = _describe(ds, filename, scope_reason=verdict.reason[:200])
    obj.frames = _frames(ds, pixels, n_frames)
    return obj


def _check_importable(ds: Dataset, filename: str) -> scope.Verdict:
    """SkipFile for a DICOMDIR or a non-image object, NotAnImage for what scans.scope refuses,
    CorruptFile for an image without pixels or without valid UIDs. Returns the scope verdict."""
    sop_class = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", ""))
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        raise SkipFile(filename, "DICOMDIR (a directory of the disc, not an image): skipped")
    verdict = scope.assess(ds)
    if not verdict.image:
        raise NotAnImage(filename, verdict.problem)
    if not any(tag in ds for tag in PIXEL_TAGS):
        name = UID(sop_class).name if sop_class else "unknown SOP class"
        if ("Rows" in ds and "Columns" in ds) or "Image Storage" in name:
            raise CorruptFile(filename, "image without pixel data: the file is truncated or damaged")
        raise SkipFile(filename, f"not an image object ({name}): skipped")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = str(ds.get(keyword, "") or "").strip()
        if not value or len(value) > 64:
            raise CorruptFile(filename, f"missing or invalid {keyword}")
    return verdict


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    return str(ds.get(keyword, "") or "")[:limit]


def _describe(ds: Dataset, filename: str, *, scope_reason: str) -> DicomObject:
    """The patient, study and series fields of the header (no frames yet)."""
    return DicomObject(
        filename=filename,
        study_instance_uid=str(ds.StudyInstanceUID).strip(),
        series_instance_uid=str(ds.SeriesInstanceUID).strip(),
        sop_instance_uid=str(ds.SOPInstanceUID).strip(),
        patient_id=str(ds.get("PatientID", "") or "").strip(),
        modality=_text(ds, "Modality", 16),
        study_date=_date(ds.get("StudyDate")),
        study_description=_text(ds, "StudyDescription", 200),
        accession_number=_text(ds, "AccessionNumber", 64),
        series_number=int_value(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 200),
        body_part=_text(ds, "BodyPartExamined", 64),
        institution=_text(ds, "InstitutionName", 200),
        scope_reason=scope_reason,
    )


def _frames(ds: Dataset, pixels: np.ndarray, n_frames: int) -> list[DicomFrame]:
    """One DicomFrame per frame: a multi-frame instance's frames get `SOP#index` UIDs; the
    default window is the stored one, else (without a VOI LUT) the frame's full range."""
    sop = str(ds.SOPInstanceUID).strip()
    tag_center, tag_width = window_from_tags(ds)
    instance_number = int_value(ds, "InstanceNumber")
    frames = []
    for i in range(n_frames):
        position, orientation = _plane_geometry(ds, i)
        center, width = tag_center, tag_width
        if center is None and "VOILUTSequence" not in ds:
            center, width = auto_window(modality_values(ds, pixels[i]))
        frames.append(
            DicomFrame(
                frame_index=i,
                sop_instance_uid=sop if n_frames == 1 else f"{sop}#{i}",
                instance_number=instance_number,
                slice_location=slice_location(position, orientation) if position is not None and orientation is not None else None,
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                window_center=center,
                window_width=width,
            )
        )
    return frames


def _plane_geometry(ds: Dataset, frame: int) -> tuple[Any, Any]:
    """(ImagePositionPatient, ImageOrientationPatient) of one frame, from the classic tags or
    the enhanced multi-frame functional groups."""
    position = ds.get("ImagePositionPatient")
    orientation = ds.get("ImageOrientationPatient")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    for groups in ([per_frame[frame]] if per_frame and frame < len(per_frame) else []) + (list(shared[:1]) if shared else []):
        if position is None and groups.get("PlanePositionSequence"):
            position = groups.PlanePositionSequence[0].get("ImagePositionPatient")
        if orientation is None and groups.get("PlaneOrientationSequence"):
            orientation = groups.PlaneOrientationSequence[0].get("ImageOrientationPatient")
    return position, orientation


def slice_location(position: Any, orientation: Any) -> float | None:
    """Position projected on the slice normal (row × column direction cosines), in mm."""
    try:
        pos = np.asarray([float(v) for v in position], dtype=np.float64)
        ori = np.asarray([float(v) for v in orientation], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if pos.shape != (3,) or ori.shape != (6,) or not np.all(np.isfinite(pos)) or not np.all(np.isfinite(ori)):
        return None
    normal = np.cross(ori[:3], ori[3:])
    if np.linalg.norm(normal) < 1e-6:
        return None
    return float(np.dot(pos, normal / np.linalg.norm(normal)))


def _date(value: Any) -> date | None:
    try:
        return datetime.strptime(str(value)[:8], "%Y%m%d").date() if value else None
    except ValueError:
        return None
