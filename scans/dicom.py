"""Reading DICOM uploads: validate before decoding, group, order, and turn pixels into a
displayable array.

Validation happens in this order, so a hostile file is refused before it costs memory:
the file must parse as DICOM Part 10 (scans.validation sniffs the preamble); no element may
be shorter than its declared length (truncation); sequences may nest at most
MAX_SEQUENCE_DEPTH deep; Rows/Columns/NumberOfFrames must lie within bounds and within
settings.UPLOAD_MAX_PIXELS; native pixel data must have exactly the length the image
header promises. Only then are the pixels decoded (which also proves compressed data is
whole).
"""
from __future__ import annotations

import io
import math
from datetime import date, datetime
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import UID

from scans import scope
from scans.errors import CorruptFile, ImageBomb, NotAnImage, ScanError
from scans.validation import Readable, as_handle, check_pixel_budget

MAX_DIMENSION = 8192
MAX_FRAMES = 4096
MAX_SEQUENCE_DEPTH = 16
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


class SkipFile(Exception):
    """A valid DICOM file the portal does not import (DICOMDIR, a report, a presentation
    state...). It is listed in the import result's `rejected` with the reason."""

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: {reason}")


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


@contextmanager
def corrupt_on_error(filename: str, what: str = "not a valid DICOM image"):
    """Turn anything a damaged file makes pydicom or a decoder raise into CorruptFile.
    Native decoders can raise PanicException (a BaseException), so only interpreter exits
    pass through; ScanError and SkipFile keep their meaning."""
    try:
        yield
    except (ScanError, SkipFile, KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except RecursionError as exc:
        raise CorruptFile(filename, f"sequences nested more than {MAX_SEQUENCE_DEPTH} levels deep") from exc
    except BaseException as exc:  # noqa: BLE001 - damaged data fails in many ways
        raise CorruptFile(filename, f"{what} ({type(exc).__name__}: {str(exc)[:200]})") from exc


def natural_key(name: str) -> list:
    """'slice2' before 'slice10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


# --- Reading and validating ---------------------------------------------------------------------


def _check_truncation(ds: Dataset, filename: str) -> None:
    for tag, elem in ds._dict.items():
        length = getattr(elem, "length", None)
        value = getattr(elem, "value", None)
        if length is None or length == _UNDEFINED_LENGTH or not isinstance(value, (bytes, bytearray)):
            continue
        if len(value) < length:
            raise CorruptFile(
                filename,
                f"the DICOM file is truncated: element {tag} declares {length} bytes but only {len(value)} are present",
            )


def _check_depth(ds: Dataset, filename: str, depth: int = 0) -> None:
    if depth > MAX_SEQUENCE_DEPTH:
        raise CorruptFile(filename, f"sequences nested more than {MAX_SEQUENCE_DEPTH} levels deep")
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        vr = getattr(raw, "VR", None)
        if vr != "SQ":
            continue
        for item in ds[tag].value:
            _check_depth(item, filename, depth + 1)


def read_dataset(data: Readable, filename: str) -> Dataset:
    """Parse and validate the header of a DICOM Part 10 file (no pixel decoding); bytes or an
    open file, which pydicom reads element by element."""
    handle = as_handle(data)
    handle.seek(0)
    with corrupt_on_error(filename, "not a readable DICOM file"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(handle)
        syntax = ds.file_meta.get("TransferSyntaxUID")
        if not syntax or not UID(str(syntax)).is_transfer_syntax:
            raise CorruptFile(filename, f"missing or unknown transfer syntax ({syntax or 'none'})")
        _check_truncation(ds, filename)
        _check_depth(ds, filename)
    return ds


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    try:
        value = ds.get(keyword, default)
        return default if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return default


def _first_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def expected_native_length(ds: Dataset) -> int:
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = _int(ds, "NumberOfFrames", 1) or 1
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    bits = int(ds.BitsAllocated)
    return math.ceil(rows * cols * frames * samples * bits / 8)


def validate_image_header(ds: Dataset, filename: str) -> int:
    """Bounds and pixel-data length, before any decoding. Returns the frame count."""
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if _int(ds, keyword) is None:
            raise CorruptFile(filename, f"image without a valid {keyword}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = _int(ds, "NumberOfFrames", 1)
    if frames is None or frames < 1:
        frames = 1
    for name, value, limit in (("Rows", rows, MAX_DIMENSION), ("Columns", cols, MAX_DIMENSION), ("NumberOfFrames", frames, MAX_FRAMES)):
        if value < 1 or value > limit:
            raise ImageBomb(filename, f"{name}={value} is outside the accepted range 1–{limit}")
    check_pixel_budget(filename, rows, cols, frames)
    bits = int(ds.BitsAllocated)
    if bits not in (1, 8, 16, 32, 64):
        raise CorruptFile(filename, f"unsupported BitsAllocated={bits}")
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    if samples not in (1, 3):
        raise CorruptFile(filename, f"unsupported SamplesPerPixel={samples}")
    if "PixelData" in ds and not ds.file_meta.TransferSyntaxUID.is_compressed:
        expected = expected_native_length(ds)
        actual = len(ds.PixelData)
        if actual not in (expected, expected + 1):  # one byte of padding to an even length
            raise CorruptFile(
                filename,
                f"pixel data is {actual} bytes but {cols}×{rows}×{frames} frames × {samples} samples × {bits} bits needs {expected}",
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


def window_from_tags(ds: Dataset) -> tuple[float | None, float | None]:
    center = _first_float(ds.get("WindowCenter"))
    width = _first_float(ds.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None, None
    return center, width


def parse(data: Readable, filename: str) -> DicomObject:
    """Validate a DICOM file, decode every frame once (proving it is whole) and describe it.
    Raises ScanError for a bad file and SkipFile for a valid one that is not an image."""
    with corrupt_on_error(filename):
        return _parse(data, filename)


def _parse(data: Readable, filename: str) -> DicomObject:
    ds = read_dataset(data, filename)
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
    n_frames = validate_image_header(ds, filename)
    pixels = decode_checked(ds, filename)
    tag_center, tag_width = window_from_tags(ds)
    sop = str(ds.SOPInstanceUID).strip()
    obj = DicomObject(
        filename=filename,
        study_instance_uid=str(ds.StudyInstanceUID).strip(),
        series_instance_uid=str(ds.SeriesInstanceUID).strip(),
        sop_instance_uid=sop,
        patient_id=str(ds.get("PatientID", "") or "").strip(),
        modality=str(ds.get("Modality", "") or "")[:16],
        study_date=_date(ds.get("StudyDate")),
        study_description=str(ds.get("StudyDescription", "") or "")[:200],
        accession_number=str(ds.get("AccessionNumber", "") or "")[:64],
        series_number=_int(ds, "SeriesNumber"),
        series_description=str(ds.get("SeriesDescription", "") or "")[:200],
        body_part=str(ds.get("BodyPartExamined", "") or "")[:64],
        institution=str(ds.get("InstitutionName", "") or "")[:200],
        scope_reason=verdict.reason[:200],
    )
    instance_number = _int(ds, "InstanceNumber")
    for i in range(n_frames):
        position, orientation = _plane_geometry(ds, i)
        center, width = tag_center, tag_width
        if center is None and "VOILUTSequence" not in ds:
            center, width = auto_window(modality_values(ds, pixels[i]))
        obj.frames.append(
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
    return obj


def _date(value: Any) -> date | None:
    try:
        return datetime.strptime(str(value)[:8], "%Y%m%d").date() if value else None
    except ValueError:
        return None


# --- Pixels -------------------------------------------------------------------------------------


def decode_checked(ds: Dataset, filename: str) -> np.ndarray:
    """decode_all, with any decoder failure (a native PanicException included) turned into
    CorruptFile."""
    with corrupt_on_error(filename, "pixel data cannot be decoded"):
        return decode_all(ds)


def decode_all(ds: Dataset) -> np.ndarray:
    """All frames as an array of shape (frames, rows, cols[, 3])."""
    arr = ds.pixel_array
    frames = _int(ds, "NumberOfFrames", 1) or 1
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    if frames == 1:
        arr = arr[np.newaxis, ...]
    expected = (frames, int(ds.Rows), int(ds.Columns)) + ((3,) if samples == 3 else ())
    if arr.shape != expected:
        raise ValueError(f"decoded shape {arr.shape} does not match the header {expected}")
    return arr


def modality_values(ds: Dataset, frame: np.ndarray) -> np.ndarray:
    """Rescale slope/intercept or Modality LUT applied; colour collapsed to luminance."""
    if frame.ndim == 3:  # RGB (pydicom converts YBR to RGB)
        frame = frame.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
        return frame
    if frame.dtype.byteorder == ">":
        frame = frame.astype(frame.dtype.newbyteorder("="))
    return np.asarray(apply_modality_lut(frame, ds), dtype=np.float32)


def auto_window(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    return (lo + hi) / 2.0, max(hi - lo, 1.0)


def apply_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 linear window → uint8."""
    width = max(float(width), 1.0)
    low = center - 0.5 - (width - 1) / 2.0
    scaled = ((values - (center - 0.5)) / max(width - 1, 1.0) + 0.5) * 255.0
    scaled = np.where(values <= low, 0.0, scaled)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def to_display(
    ds: Dataset, values: np.ndarray, center: float | None, width: float | None, *, explicit: bool = False
) -> np.ndarray:
    """Modality values → uint8 display image, honouring VOI LUT and MONOCHROME1.

    An explicit window (a viewer's request) wins over everything; otherwise the stored
    default window; otherwise the VOI LUT Sequence; otherwise the full range."""
    if (center is None or width is None) and not explicit and "VOILUTSequence" in ds:
        lut_input = np.rint(values).astype(np.int64)  # LUTs are indexed by stored integers
        out = np.asarray(apply_voi_lut(lut_input, ds, prefer_lut=True), dtype=np.float32)
        try:
            bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
            top = float(2**bits - 1)
        except Exception:  # noqa: BLE001
            top = float(out.max()) or 1.0
        display = np.clip(out / top * 255.0, 0, 255).astype(np.uint8)
    else:
        if center is None or width is None:
            center, width = auto_window(values)
        display = apply_window(values, center, width)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        display = 255 - display
    return display


MAX_TAG_VALUE = 200


def header_tags(data: bytes, filename: str) -> list[dict[str, str]]:
    """The file's header for the viewer's tag panel: one row per element (file meta first),
    pixel data left out, sequences shown as their item count, long values shortened."""
    with corrupt_on_error(filename):
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=False)
        rows = []
        for element in [*ds.file_meta, *ds]:
            if element.tag.group == 0x7FE0:
                continue
            if element.VR == "SQ":
                value = f"sequence of {len(element.value)} item(s)"
            elif element.VR in ("OB", "OW", "OF", "OD", "OL", "UN"):
                value = f"binary, {len(element.value or b'')} bytes"
            else:
                value = str(element.value)
            if len(value) > MAX_TAG_VALUE:
                value = value[: MAX_TAG_VALUE - 1] + "…"
            rows.append({
                "tag": f"({element.tag.group:04X},{element.tag.element:04X})",
                "name": element.name,
                "vr": element.VR,
                "value": value,
            })
        return rows
