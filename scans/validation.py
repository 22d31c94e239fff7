"""Find out what a file really is from its bytes, and refuse what the portal will not read.

The name and the browser's Content-Type are never trusted: a PDF renamed ``scan.png`` is a
PDF. Accepted kinds:

- ``dicom``: a DICOM Part 10 file (128-byte preamble followed by ``DICM``). A raw DICOM
  data set without the preamble and file meta header is **refused** (415). Reading it would
  need ``force=True``, which makes pydicom guess the transfer syntax and accept almost any
  byte string as "DICOM"; the portal would then store files it cannot vouch for. Scanners
  and PACS exports write Part 10 files, so the refusal costs little; the message tells the
  user to export as DICOM Part 10.
- ``png`` / ``jpeg`` by their magic numbers;
- ``zip`` (expanded by scans.archive, never nested).

Raster images are checked for their pixel count from the header BEFORE any decoding
(image bombs), then decoded once to prove the file is whole.
"""
from __future__ import annotations

import io
import struct
import warnings
from typing import IO, Union

from django.conf import settings
from PIL import Image

from scans.errors import CorruptFile, ImageBomb, UnsupportedFileType

DICOM = "dicom"
PNG = "png"
JPEG = "jpeg"
ZIP = "zip"

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

# Well-known formats named in refusals so the user knows what they actually sent.
_KNOWN_OTHERS = [
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript/EPS document"),
    (b"\xc5\xd0\xd3\xc6", "an EPS document"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"RIFF", "a RIFF (WebP/AVI/WAV) file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"<?xml", "an XML/SVG document"),
    (b"<svg", "an SVG document"),
    (b"<!DOCTYPE", "an HTML document"),
    (b"<html", "an HTML document"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
]

_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB", b"OD", b"OF", b"OL",
    b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US",
    b"UT", b"UV",
}


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A data set written without preamble opens with a little-endian tag of group 0002
    (file meta) or 0008 (identification), followed by an explicit VR or an implicit length."""
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    if group not in (0x0002, 0x0008) or element % 2 and element > 0x00FF:
        return False
    if head[4:6] in _VRS:
        return True
    (length,) = struct.unpack("<I", head[4:8])
    return length < 1024 or length == 0xFFFFFFFF


def sniff(head: bytes, filename: str) -> str:
    """Return the real kind of a file from its first bytes (at least 132 when available)."""
    if not head:
        raise CorruptFile(filename, "the file is empty (0 bytes)")
    if len(head) >= 132 and head[128:132] == b"DICM":
        return DICOM
    if head.startswith(PNG_MAGIC):
        return PNG
    if head.startswith(JPEG_MAGIC):
        return JPEG
    if head.startswith(ZIP_MAGICS):
        return ZIP
    if _looks_like_raw_dicom(head):
        raise UnsupportedFileType(
            filename,
            "DICOM data without the 128-byte preamble and 'DICM' file header (not a DICOM Part 10 "
            "file); export it from the scanner or PACS as DICOM Part 10",
        )
    stripped = head.lstrip()
    for magic, what in _KNOWN_OTHERS:
        if head.startswith(magic) or stripped[: len(magic)].lower() == magic.lower():
            raise UnsupportedFileType(filename, f"this is {what}, not a DICOM, JPEG or PNG image")
    raise UnsupportedFileType(filename, "unrecognised file type: only DICOM, JPEG, PNG and zip files are accepted")


def max_pixels() -> int:
    return int(getattr(settings, "UPLOAD_MAX_PIXELS", 40_000_000))


def check_pixel_budget(filename: str, rows: int, columns: int, frames: int = 1) -> None:
    total = int(rows) * int(columns) * max(int(frames), 1)
    if total > max_pixels():
        raise ImageBomb(
            filename,
            f"image too large: {columns}×{rows}" + (f"×{frames} frames" if frames > 1 else "")
            + f" = {total:,} pixels (limit {max_pixels():,})",
        )


Readable = Union[bytes, bytearray, IO[bytes]]
HEADER_BYTES = 256 * 1024  # enough for the PNG IHDR and, in practice, the JPEG SOF marker
SCAN_CHUNK = 1024 * 1024


def as_handle(data: Readable) -> IO[bytes]:
    """A seekable binary file for bytes or an (uploaded, temporary) file: the checks read it in
    pieces, so a file on disk is never loaded whole to be checked."""
    return io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray)) else data


class _Lent:
    """The caller's file lent to PIL, whose Image.close() would close it too."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def close(self) -> None:
        pass


def _size(handle: IO[bytes]) -> int:
    handle.seek(0, io.SEEK_END)
    return handle.tell()


def _png_trailing_bytes(handle: IO[bytes]) -> int:
    """Bytes after the IEND chunk (0 for a clean PNG). Walks the chunk list, not a search."""
    n = _size(handle)
    pos = len(PNG_MAGIC)
    while pos + 8 <= n:
        handle.seek(pos)
        length, ctype = struct.unpack(">I4s", handle.read(8))
        end = pos + 12 + length
        if end > n:
            return 0  # truncated: PIL's decode reports it
        if ctype == b"IEND":
            return n - end
        pos = end
    return 0


def _next_marker(handle: IO[bytes]) -> bool:
    """Skip entropy-coded data up to the next marker (0xFF not followed by a stuffed 0x00 or a
    restart marker); leave the handle on its 0xFF. False at the end of the file."""
    while True:
        start = handle.tell()
        chunk = handle.read(SCAN_CHUNK)
        if len(chunk) < 2:
            return False
        i = chunk.find(b"\xff")
        while i != -1 and i + 1 < len(chunk):
            following = chunk[i + 1]
            if following != 0x00 and not 0xD0 <= following <= 0xD7:
                handle.seek(start + i)
                return True
            i = chunk.find(b"\xff", i + 2)
        handle.seek(start + len(chunk) - 1)  # an 0xFF at the very end is looked at again with its follower


def _jpeg_end(handle: IO[bytes]) -> int | None:
    """Offset just past the EOI marker that ends the image, or None when the marker structure
    is damaged (the decoder then reports it)."""
    handle.seek(2)
    while True:
        pair = handle.read(2)
        if len(pair) < 2 or pair[0] != 0xFF:
            return None
        marker = pair[1]
        while marker == 0xFF:  # fill bytes
            byte = handle.read(1)
            if not byte:
                return None
            marker = byte[0]
        if marker == 0xD9:
            return handle.tell()
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        raw = handle.read(2)
        if len(raw) < 2:
            return None
        handle.seek(struct.unpack(">H", raw)[0] - 2, io.SEEK_CUR)
        if marker == 0xDA and not _next_marker(handle):  # start of scan: entropy-coded data follows
            return None


def _jpeg_trailing_bytes(handle: IO[bytes]) -> int:
    end = _jpeg_end(handle)
    return 0 if end is None else max(_size(handle) - end, 0)


def trailing_bytes(handle: IO[bytes], kind: str) -> int:
    """Bytes after the end of a PNG (IEND) or JPEG (EOI) image: appended HTML, script or a
    second file, which the portal would otherwise store byte for byte."""
    return _png_trailing_bytes(handle) if kind == PNG else _jpeg_trailing_bytes(handle)


def header_dimensions(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) straight from the PNG IHDR or the JPEG SOF marker, without PIL."""
    if kind == PNG:
        if len(data) >= 24 and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        return None
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if pos + 9 > n:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def open_raster(data: Readable, filename: str, kind: str) -> Image.Image:
    """Check a PNG/JPEG header for size, refuse polyglots, then decode it fully.

    Returns the decoded PIL image. Dimensions are read from the header first, so a
    20000×20000 bomb is refused without allocating its pixels; a file is read in pieces, never
    loaded whole, until the pixels are decoded."""
    handle = as_handle(data)
    handle.seek(0)
    dims = header_dimensions(handle.read(HEADER_BYTES), kind)
    if dims is not None:
        check_pixel_budget(filename, dims[1], dims[0])
    trailing = trailing_bytes(handle, kind)
    if trailing:
        raise UnsupportedFileType(
            filename,
            f"{trailing} bytes of extra data after the end of the {kind.upper()} image (e.g. appended HTML or "
            "script); re-export the image",
        )
    handle.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(_Lent(handle))  # reads the header only
            width, height = image.size
            check_pixel_budget(filename, height, width)
            expected = PNG if image.format == "PNG" else JPEG if image.format in ("JPEG", "MPO") else image.format
            if expected != kind:
                raise UnsupportedFileType(filename, f"content is {image.format}, not {kind.upper()}")
            image.load()
    except (ImageBomb, UnsupportedFileType):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageBomb(filename, f"image too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise CorruptFile(filename, f"the {kind.upper()} image is damaged or truncated ({exc})") from exc
    if getattr(image, "n_frames", 1) > 1 and kind == PNG:
        raise UnsupportedFileType(filename, "animated PNG is not a scan image")
    return image
