"""DICOM pixel data: decode every frame, turn stored values into modality values, and window
them into a displayable uint8 image (default window, VOI LUT, MONOCHROME1).

Decode only a dataset whose header scans.dicom_read.validate_image_header has accepted.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from scans.dicom_read import corrupt_on_error, int_value

PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def decode_checked(ds: Dataset, filename: str) -> np.ndarray:
    """decode_all, with any decoder failure (a native PanicException included) turned into
    CorruptFile."""
    with corrupt_on_error(filename, "pixel data cannot be decoded"):
        return decode_all(ds)


def decode_all(ds: Dataset) -> np.ndarray:
    """All frames as an array of shape (frames, rows, cols[, 3])."""
    arr = ds.pixel_array
    frames = int_value(ds, "NumberOfFrames", 1) or 1
    samples = int_value(ds, "SamplesPerPixel", 1) or 1
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


# --- Windows ------------------------------------------------------------------------------------


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


def window_from_tags(ds: Dataset) -> tuple[float | None, float | None]:
    """The stored default window (WindowCenter/WindowWidth), or (None, None)."""
    center = _first_float(ds.get("WindowCenter"))
    width = _first_float(ds.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None, None
    return center, width


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
