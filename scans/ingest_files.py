"""What an upload is made of, before anything is parsed: each input (an UploadedFile, a
path, bytes) becomes a Source that can be re-read; zips are replaced by their checked
members (scans.archive); sizes and file counts are held to the upload limits. Files are
read a chunk at a time, never whole in memory."""
from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from django.conf import settings

from scans import archive
from scans.errors import TooLarge

READ_CHUNK = 1024 * 1024
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
IMAGE_SUFFIXES = {".dcm", ".dicom", ".ima", ".png", ".jpg", ".jpeg", ".jpe", ".jfif"}


def natural_key(name: str) -> list:
    """'slice2' before 'slice10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


@dataclass
class Source:
    """One input file: a name for messages and a way to read its bytes."""

    name: str
    size: int | None
    _open: Callable[[], IO[bytes]]
    # Inside a folder or zip: stray non-image files (README, LICENSE, a viewer program) are
    # listed as rejected instead of failing the upload.
    contained: bool = False

    def check(self) -> tuple[bytes, str]:
        """Read the file once, a chunk at a time, refusing it as soon as it passes the upload
        limit: returns its first bytes (for the type) and its SHA-256. Memory holds one chunk,
        never the whole file (Django has already streamed large uploads to temporary files)."""
        limit = int(settings.UPLOAD_MAX_BYTES)
        if self.size is not None and self.size > limit:
            raise TooLarge(self.name, f"the file is larger than the upload limit of {limit:,} bytes")
        with self.opened() as handle:
            head, digest = stream_digest(handle, limit)
        if digest is None:
            raise TooLarge(self.name, f"the file is larger than the upload limit of {limit:,} bytes")
        return head, digest

    def opened(self) -> ReuseOrOpen:
        """The file, rewound, for a `with` block (closed after it only when opened for it)."""
        return ReuseOrOpen(self._open)

    def skippable(self) -> bool:
        """A stray document in a folder/zip is skipped; a file named as an image that is not
        one (a PDF renamed .png) fails the upload wherever it is."""
        return self.contained and Path(self.name).suffix.lower() not in IMAGE_SUFFIXES


def stream_digest(handle: IO[bytes], limit: int | None = None) -> tuple[bytes, str | None]:
    """(first 512 bytes, SHA-256) of a file read in chunks; digest None past `limit` bytes."""
    digest = hashlib.sha256()
    head = b""
    total = 0
    while chunk := handle.read(READ_CHUNK):
        total += len(chunk)
        if limit is not None and total > limit:
            return head, None
        if len(head) < 512:
            head += chunk[: 512 - len(head)]
        digest.update(chunk)
    return head, digest.hexdigest()


class ReuseOrOpen:
    """Opens a path each time; rewinds an already-open file object instead of closing it."""

    def __init__(self, opener: Callable[[], IO[bytes]]) -> None:
        self.opener = opener
        self.handle: IO[bytes] | None = None
        self.owned = False

    def __enter__(self) -> IO[bytes]:
        handle = self.opener()
        self.owned = getattr(handle, "_portal_owned", False)
        if hasattr(handle, "seek"):
            handle.seek(0)
        self.handle = handle
        return handle

    def __exit__(self, *exc: Any) -> None:
        if self.owned and self.handle is not None:
            self.handle.close()


def _path_opener(path: Path) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        handle = open(path, "rb")  # noqa: SIM115 - closed by ReuseOrOpen
        handle._portal_owned = True  # type: ignore[attr-defined]
        return handle

    return opener


# --- Making sources -----------------------------------------------------------------------------


def as_source(item: Any) -> Source:
    """Accept an UploadedFile, a path, (name, bytes) or (name, file object)."""
    if isinstance(item, Source):
        return item
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        return Source(path.name, path.stat().st_size, _path_opener(path))
    if isinstance(item, tuple) and len(item) == 2:
        name, payload = item
        if isinstance(payload, (bytes, bytearray)):
            buffer = io.BytesIO(bytes(payload))
            return Source(str(name), len(payload), lambda: buffer)
        return Source(str(name), getattr(payload, "size", None), lambda: payload)
    if hasattr(item, "read") and hasattr(item, "name"):
        name = os.path.basename(str(item.name)) or "upload"
        return Source(name, getattr(item, "size", None), lambda: item)
    raise TypeError(f"cannot import {item!r}")


def sources_from_path(path: Path) -> list[Source]:
    """A file, or every file under a folder (natural name order)."""
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: natural_key(str(p.relative_to(path))))
        sources = []
        for p in files:
            source = as_source(p)
            source.name = str(p.relative_to(path))
            source.contained = True
            sources.append(source)
        return sources
    return [as_source(path)]


# --- Limits and archives ------------------------------------------------------------------------


def _check_file_count(sources: list[Source]) -> None:
    max_files = int(settings.UPLOAD_MAX_FILES)
    if len(sources) > max_files:
        raise TooLarge(sources[max_files].name, f"too many files in one upload ({len(sources):,}; limit {max_files:,})")


def check_totals(sources: list[Source]) -> None:
    """The upload as sent: at most UPLOAD_MAX_FILES files and UPLOAD_MAX_BYTES in all."""
    _check_file_count(sources)
    limit = int(settings.UPLOAD_MAX_BYTES)
    total = 0
    for source in sources:
        total += source.size or 0
        if total > limit:
            raise TooLarge(source.name, f"the upload is larger than the limit of {limit:,} bytes")


def expand_archives(sources: list[Source], rejected: list[dict], cleanup: list[IO[bytes]]) -> list[Source]:
    """Replace each zip by its (checked) members; everything else passes through. Members
    skipped by scans.archive are added to `rejected`; their temporary files to `cleanup`."""
    out: list[Source] = []
    for source in sources:
        with source.opened() as handle:
            if handle.read(4) not in ZIP_SIGNATURES:
                out.append(source)
                continue
            handle.seek(0)
            members, skipped = archive.extract(handle, source.name)
        rejected.extend({"file": s.name, "reason": s.reason} for s in skipped)
        for member in members:
            cleanup.append(member.file)
            out.append(Source(member.name, member.size, (lambda f=member.file: f), contained=True))
    _check_file_count(out)
    return out
