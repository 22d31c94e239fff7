"""Issue 18: uploads are checked as streams (size, type and hash never need the whole file
in memory), and a JPEG with data after its end-of-image marker is refused like the PNG
equivalent. The memory figures themselves come from loadtest/upload_memory.py."""
from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from scans.errors import TooLarge, UnsupportedFileType
from scans.ingest import import_files
from scans.ingest_files import Source
from scans.models import Patient, Slice

pytestmark = pytest.mark.django_db
FILE_MB = 40
HEAP_BUDGET = 8 * 2**20  # a few 1 MiB chunks, far below the file


def _big_file(tmp_path: Path, magic: bytes) -> Path:
    path = tmp_path / "big.png"
    block = os.urandom(2**20)
    with open(path, "wb") as handle:
        handle.write(magic)
        for _ in range(FILE_MB):
            handle.write(block)
    return path


def _heap_peak(call) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    error = None
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - returned and asserted by the caller
        error = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, error


def test_a_refused_large_file_is_never_held_in_memory(tmp_path, media):
    path = _big_file(tmp_path, b"JUNK")
    peak, error = _heap_peak(lambda: import_files([path], patient=Patient.objects.create(mrn="MRN-MEM")))
    assert isinstance(error, UnsupportedFileType)
    assert peak < HEAP_BUDGET, f"{peak / 2**20:.0f} MiB held for a {FILE_MB} MiB file"


def test_the_size_limit_is_enforced_while_streaming(tmp_path, media, settings):
    settings.UPLOAD_MAX_BYTES = 10 * 2**20
    path = _big_file(tmp_path, b"\x89PNG\r\n\x1a\n")
    source = Source("big.png", None, lambda: open(path, "rb"))  # size unknown up front
    peak, error = _heap_peak(lambda: import_files([source], patient=Patient.objects.create(mrn="MRN-MEM")))
    assert isinstance(error, TooLarge)
    assert peak < HEAP_BUDGET, f"{peak / 2**20:.0f} MiB held before refusing"


def _jpeg(progressive: bool = False) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 90).save(buffer, "JPEG", progressive=progressive)
    return buffer.getvalue()


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_with_data_after_its_end_is_refused_like_png(client, radiologist, media, progressive):
    client.force_login(radiologist)
    patient = Patient.objects.create(mrn="MRN-JPEG")
    polyglot = _jpeg(progressive) + b"<html><script>alert(document.cookie)</script></html>"
    response = client.post(reverse("api:uploads"),
                           {"patient": patient.pk, "files": [SimpleUploadedFile("scan.jpg", polyglot)]})
    assert response.status_code == 415
    body = response.json()
    assert body["code"] == "unsupported_type" and "extra data after the end of the JPEG" in body["error"]
    assert Slice.objects.count() == 0 and not any(p.is_file() for p in media.rglob("*"))
    clean = client.post(reverse("api:uploads"),
                        {"patient": patient.pk, "files": [SimpleUploadedFile("scan.jpg", _jpeg(progressive))]})
    assert clean.status_code == 201
    stored = Slice.objects.get()
    assert stored.file.read() == _jpeg(progressive)
