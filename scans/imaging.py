"""Pixels of stored slices: read (SHA-256 checked on every storage read), decode, window,
render PNG previews and thumbnails.

Decoded modality values are cached per process in a small LRU keyed by the file's SHA-256
and frame, so scrolling a series or changing window/level re-encodes a PNG without reading
storage or decoding DICOM again. The cache holds only bytes whose hash was verified.
"""
from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scans import dicom_pixels, dicom_read
from scans.errors import CorruptFile, IntegrityError, ScanError
from scans.validation import DICOM, JPEG, PNG, open_raster, sniff

__all__ = [
    "IntegrityError",
    "ScanError",
    "slice_pixels",
    "render_png",
    "render_thumbnail",
    "load_display_pixels",
    "read_verified",
    "decoded_cache",
]

THUMBNAIL_SIZE = 128
MAX_RENDER_SIZE = 2048


@dataclass
class Decoded:
    """Modality values of one frame plus what is needed to display them."""

    values: np.ndarray  # float32 2-D
    dataset: Any  # pydicom Dataset without pixel data, or None for JPEG/PNG
    default_center: float | None
    default_width: float | None

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)


class DecodedCache:
    """A thread-safe LRU bounded by total bytes."""

    def __init__(self, max_bytes: int | None = None) -> None:
        # settings.PREVIEW_CACHE_BYTES (optional) sizes it per process; 192 MiB by default.
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple, Decoded] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def max_bytes(self) -> int:
        if self._max_bytes is None:
            from django.conf import settings

            return int(getattr(settings, "PREVIEW_CACHE_BYTES", 192 * 1024 * 1024))
        return self._max_bytes

    def get(self, key: tuple) -> Decoded | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: tuple, item: Decoded) -> None:
        if item.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = item
            self._bytes += item.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


decoded_cache = DecodedCache()


# --- Storage reads -----------------------------------------------------------------------------


def read_verified(file_field: Any, expected_sha256: str, label: str = "") -> bytes:
    """Read a stored file and check its SHA-256; a mismatch raises IntegrityError."""
    name = getattr(file_field, "name", "") or label
    try:
        storage = file_field.storage
        with storage.open(file_field.name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise IntegrityError(label or name, "the stored file is missing") from exc
    except OSError as exc:
        raise IntegrityError(label or name, f"the stored file cannot be read ({exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise IntegrityError(
            label or name,
            f"stored file failed its integrity check: SHA-256 is {digest[:12]}…, expected {expected_sha256[:12]}… "
            "(the file was changed or damaged after import)",
        )
    return data


# --- Decoding ----------------------------------------------------------------------------------


def _decode_bytes(data: bytes, filename: str, frame_index: int = 0) -> Decoded:
    kind = sniff(data[:512], filename)
    if kind == DICOM:
        ds = dicom_read.read_dataset(data, filename)
        with dicom_read.corrupt_on_error(filename):
            dicom_read.validate_image_header(ds, filename)
            frames = dicom_pixels.decode_checked(ds, filename)
            if frame_index >= frames.shape[0]:
                raise CorruptFile(filename, f"frame {frame_index} does not exist")
            values = dicom_pixels.modality_values(ds, frames[frame_index])
        center, width = dicom_pixels.window_from_tags(ds)
        for tag in dicom_pixels.PIXEL_TAGS:
            if tag in ds:
                del ds[tag]
        return Decoded(np.ascontiguousarray(values), ds, center, width)
    if kind in (PNG, JPEG):
        image = open_raster(data, filename, kind)
        values = np.asarray(image.convert("L"), dtype=np.float32)
        return Decoded(values, None, None, None)
    raise CorruptFile(filename, f"a {kind} file is not a single image")


def _decoded_for(slice_obj: Any) -> Decoded:
    key = (slice_obj.sha256, int(slice_obj.frame_index or 0))
    cached = decoded_cache.get(key)
    if cached is not None:
        return cached
    label = slice_obj.original_filename or f"slice {slice_obj.pk}"
    data = read_verified(slice_obj.file, slice_obj.sha256, label)
    decoded = _decode_bytes(data, label, int(slice_obj.frame_index or 0))
    decoded_cache.put(key, decoded)
    return decoded


def _display(decoded: Decoded, center: float | None, width: float | None, *, explicit: bool) -> np.ndarray:
    if decoded.dataset is None:
        if explicit and center is not None and width is not None:
            return dicom_pixels.apply_window(decoded.values, center, width)
        return decoded.values.astype(np.uint8)
    return dicom_pixels.to_display(decoded.dataset, decoded.values, center, width, explicit=explicit)


def slice_pixels(slice_obj: Any) -> np.ndarray:
    """The slice at its default window as a uint8 2-D array (SHA-256 checked on read)."""
    decoded = _decoded_for(slice_obj)
    center = slice_obj.window_center if slice_obj.window_center is not None else decoded.default_center
    width = slice_obj.window_width if slice_obj.window_width is not None else decoded.default_width
    return _display(decoded, center, width, explicit=False)


def encode_png(pixels: np.ndarray, size: int | None = None) -> bytes:
    image = Image.fromarray(pixels)
    if size:
        size = max(8, min(int(size), MAX_RENDER_SIZE))
        scale = size / max(image.size)
        if scale != 1:
            target = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
            image = image.resize(target, Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.BOX)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def render_png(
    slice_obj: Any, window_center: float | None = None, window_width: float | None = None, size: int | None = None
) -> bytes:
    """PNG of a slice at its default window, or at the window/level a viewer asks for."""
    if window_center is not None and window_width is not None:
        decoded = _decoded_for(slice_obj)
        pixels = _display(decoded, float(window_center), float(window_width), explicit=True)
    else:
        pixels = slice_pixels(slice_obj)
    return encode_png(pixels, size)


def render_thumbnail(slice_obj: Any) -> bytes:
    return render_png(slice_obj, size=THUMBNAIL_SIZE)


def load_display_pixels(path_or_bytes: str | Path | bytes, frame_index: int = 0) -> np.ndarray:
    """A loose file (DICOM/JPEG/PNG) as uint8 2-D at its default window, with the same
    validation as an upload. Used by command-line tools such as `classify`."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data, label = bytes(path_or_bytes), "<bytes>"
    else:
        path = Path(path_or_bytes)
        data, label = path.read_bytes(), path.name
    decoded = _decode_bytes(data, label, frame_index)
    center, width = decoded.default_center, decoded.default_width
    return _display(decoded, center, width, explicit=False)
