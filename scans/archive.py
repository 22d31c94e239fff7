"""Zip uploads, checked before anything is extracted.

1. Entry count against settings.ZIP_MAX_ENTRIES.
2. Every name: no absolute paths, drive letters or `..` components (zip-slip).
3. Declared expanded size of all entries against settings.ZIP_MAX_EXPANDED_BYTES, and each
   entry's compression ratio against ZIP_MAX_RATIO (a zip bomb compresses zeros ~1000:1).
4. Extraction streams each entry in chunks with a hard byte cap, because the sizes in the
   central directory are written by whoever made the zip and can lie.
Nested zips are not followed: they are listed as rejected.
"""
from __future__ import annotations

import posixpath
import re
import tempfile
import zipfile
from dataclasses import dataclass
from typing import IO

from django.conf import settings

from scans.errors import CorruptFile, UnsafeArchive, ZipBomb

ZIP_MAX_RATIO = 200  # expanded / compressed, per entry ...
ZIP_RATIO_MIN_BYTES = 4 * 1024 * 1024  # ... checked for entries that expand beyond this
CHUNK = 1024 * 1024
_IGNORED = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)


@dataclass
class Member:
    name: str  # "archive.zip/inner/path.dcm"
    file: IO[bytes]  # a temporary file positioned at 0
    size: int


@dataclass
class Skipped:
    name: str
    reason: str


def _check_name(archive_name: str, name: str) -> None:
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[a-zA-Z]:", normal):
        raise UnsafeArchive(archive_name, f"entry '{name}' has an absolute path")
    if ".." in normal.split("/"):
        raise UnsafeArchive(archive_name, f"entry '{name}' escapes the archive with '..'")
    if "\x00" in normal:
        raise UnsafeArchive(archive_name, f"entry '{name}' has a NUL byte in its name")


def inspect(archive: zipfile.ZipFile, archive_name: str) -> list[zipfile.ZipInfo]:
    """All checks that need only the central directory. Returns the file entries."""
    infos = archive.infolist()
    max_entries = int(settings.ZIP_MAX_ENTRIES)
    if len(infos) > max_entries:
        raise ZipBomb(archive_name, f"the zip has {len(infos):,} entries (limit {max_entries:,})")
    max_bytes = int(settings.ZIP_MAX_EXPANDED_BYTES)
    total = 0
    for info in infos:
        _check_name(archive_name, info.filename)
        if info.flag_bits & 0x1:
            raise CorruptFile(archive_name, f"entry '{info.filename}' is encrypted")
        total += info.file_size
        if info.file_size > ZIP_RATIO_MIN_BYTES and info.file_size > ZIP_MAX_RATIO * max(info.compress_size, 1):
            raise ZipBomb(
                archive_name,
                f"entry '{info.filename}' expands {info.file_size / max(info.compress_size, 1):,.0f}× "
                f"(limit {ZIP_MAX_RATIO}×): refused as a zip bomb",
            )
    if total > max_bytes:
        raise ZipBomb(archive_name, f"the zip expands to {total:,} bytes (limit {max_bytes:,}): refused before extracting")
    return [info for info in infos if not info.is_dir()]


def extract(fileobj: IO[bytes], archive_name: str) -> tuple[list[Member], list[Skipped]]:
    """Check, then stream-extract every entry into temporary files under a hard total cap."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptFile(archive_name, f"not a readable zip file ({exc})") from exc
    members: list[Member] = []
    skipped: list[Skipped] = []
    budget = int(settings.ZIP_MAX_EXPANDED_BYTES)
    try:
        with archive:
            for info in inspect(archive, archive_name):
                label = f"{archive_name}/{info.filename}"
                if _IGNORED.search(info.filename) or posixpath.basename(info.filename).startswith("._"):
                    skipped.append(Skipped(label, "operating-system metadata file: skipped"))
                    continue
                if info.filename.lower().endswith(".zip"):
                    skipped.append(Skipped(label, "nested archive: not followed"))
                    continue
                out = tempfile.TemporaryFile()
                written = 0
                try:
                    with archive.open(info) as source:
                        for chunk in iter(lambda: source.read(CHUNK), b""):
                            written += len(chunk)
                            if written > info.file_size:
                                raise ZipBomb(archive_name, f"entry '{info.filename}' expands beyond its declared size")
                            if written > budget:
                                raise ZipBomb(archive_name, "the zip expands beyond the size limit")
                            out.write(chunk)
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                    out.close()
                    raise CorruptFile(archive_name, f"entry '{info.filename}' cannot be extracted ({exc})") from exc
                except BaseException:
                    out.close()
                    raise
                budget -= written
                out.seek(0)
                if out.read(4) in (b"PK\x03\x04", b"PK\x05\x06"):
                    out.close()
                    skipped.append(Skipped(label, "nested archive: not followed"))
                    continue
                out.seek(0)
                members.append(Member(label, out, written))
    except BaseException:
        for member in members:
            member.file.close()
        raise
    return members, skipped
