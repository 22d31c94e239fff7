"""Reading a DICOM file safely: parse and validate its header before any pixel is decoded.

Validation happens in this order, so a hostile file is refused before it costs memory:
the file must parse as DICOM Part 10 (scans.validation sniffs the preamble); no element may
be shorter than its declared length (truncation); sequences may nest at most
MAX_SEQUENCE_DEPTH deep; Rows/Columns/NumberOfFrames must lie within bounds and within
settings.UPLOAD_MAX_PIXELS; native pixel data must have exactly the length the image
header promises. Only then are the pixels decoded (scans.dicom_pixels, which also proves
compressed data is whole).
"""
from __future__ import annotations

import io
import math
import warnings
from contextlib import contextmanager
from typing import Iterator

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from scans.errors import CorruptFile, ImageBomb, ScanError
from scans.validation import Readable, as_handle, check_pixel_budget

MAX_DIMENSION = 8192
MAX_FRAMES = 4096
MAX_SEQUENCE_DEPTH = 16
MAX_TAG_VALUE = 200
_UNDEFINED_LENGTH = 0xFFFFFFFF


class SkipFile(Exception):
    """A valid DICOM file the portal does not import (DICOMDIR, a report, a presentation
    state...). It is listed in the import result's `rejected` with the reason."""

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: {reason}")


@contextmanager
def corrupt_on_error(filename: str, what: str = "not a valid DICOM image") -> Iterator[None]:
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


def int_value(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    """The element as an int; `default` when it is absent, empty or not a number."""
    try:
        value = ds.get(keyword, default)
        return default if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return default


# --- The header ---------------------------------------------------------------------------------


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


# --- The image header: bounds before decoding ---------------------------------------------------


def expected_native_length(ds: Dataset) -> int:
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int_value(ds, "NumberOfFrames", 1) or 1
    samples = int_value(ds, "SamplesPerPixel", 1) or 1
    bits = int(ds.BitsAllocated)
    return math.ceil(rows * cols * frames * samples * bits / 8)


def validate_image_header(ds: Dataset, filename: str) -> int:
    """Bounds and pixel-data length, before any decoding. Returns the frame count."""
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if int_value(ds, keyword) is None:
            raise CorruptFile(filename, f"image without a valid {keyword}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int_value(ds, "NumberOfFrames", 1)
    if frames is None or frames < 1:
        frames = 1
    for name, value, limit in (("Rows", rows, MAX_DIMENSION), ("Columns", cols, MAX_DIMENSION), ("NumberOfFrames", frames, MAX_FRAMES)):
        if value < 1 or value > limit:
            raise ImageBomb(filename, f"{name}={value} is outside the accepted range 1–{limit}")
    check_pixel_budget(filename, rows, cols, frames)
    bits = int(ds.BitsAllocated)
    if bits not in (1, 8, 16, 32, 64):
        raise CorruptFile(filename, f"unsupported BitsAllocated={bits}")
    samples = int_value(ds, "SamplesPerPixel", 1) or 1
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


# --- The viewer's tag panel ---------------------------------------------------------------------


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
