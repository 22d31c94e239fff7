"""The bad-input corpus of issue 3, one test per case, each through the real upload
endpoint (POST /api/uploads/). Each must answer 4xx naming the file and the problem, store
nothing (no rows, no files) and keep memory bounded (tracemalloc peak)."""
from __future__ import annotations

import tracemalloc

import pytest
from django.urls import reverse

from scans.models import Series, Slice, Study
from tests.factories import make_patient
from tests.ingest import builders as b
from tests.ingest.conftest import stored_files

pytestmark = pytest.mark.django_db

# Peak Python memory allowed while the server handles one hostile upload. The largest
# input here is a 256 MiB zip bomb and 400 M-pixel PNGs; decoding any of them would blow
# far past this.
MEMORY_BOUND = 48 * 1024 * 1024


@pytest.fixture
def patient(db):
    return make_patient(mrn="MRN-TEST")


@pytest.fixture
def upload(staff_api, patient, media):
    def post(name: str, data: bytes, *, expect: int | tuple[int, ...] | None = None) -> dict:
        from django.core.files.uploadedfile import SimpleUploadedFile

        files = [SimpleUploadedFile(name, data, content_type="application/octet-stream")]
        tracemalloc.start()
        try:
            response = staff_api.post(reverse("api:uploads"), {"patient": patient.pk, "files": files})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert 400 <= response.status_code < 500, response.content
        if expect is not None:
            assert response.status_code in ((expect,) if isinstance(expect, int) else expect)
        body = response.json()
        assert body["file"].startswith(name) or name in body["file"], body
        assert body["error"]
        assert peak < MEMORY_BOUND, f"peak {peak / 1e6:.1f} MB"
        assert Study.objects.count() == 0 and Series.objects.count() == 0 and Slice.objects.count() == 0
        assert stored_files(media) == []
        return body

    return post


def test_zero_byte_file(upload):
    body = upload("empty.dcm", b"", expect=400)
    assert "empty (0 bytes)" in body["error"]


@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_dicom_truncated(upload, shared_data, fraction):
    data = sorted((shared_data / "dicom" / "brain-dwi-sagittal-48").glob("*.dcm"))[0].read_bytes()
    body = upload("cut.dcm", data[: int(len(data) * fraction)], expect=400)
    assert "truncated" in body["error"]


@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_generated_dicom_truncated(upload, fraction):
    data = b.dicom_bytes(rows=64, columns=64)
    body = upload("cut2.dcm", data[: int(len(data) * fraction)], expect=400)
    assert "truncated" in body["error"]


@pytest.mark.parametrize("build", [b.raw_dicom_without_preamble, b.raw_implicit_dataset_without_meta])
def test_no_dicm_preamble(upload, build):
    body = upload("raw.dcm", build(), expect=415)
    assert "preamble" in body["error"] and "Part 10" in body["error"]


def test_wrong_pixel_data_length(upload):
    ds = b.make_dataset(rows=32, columns=32)
    ds.PixelData = ds.PixelData[:-200]
    body = upload("short.dcm", b.to_bytes(ds), expect=400)
    assert "pixel data is 1848 bytes" in body["error"] and "needs 2048" in body["error"]


def test_rows_65535(upload):
    ds = b.make_dataset(rows=4, columns=4)
    ds.Rows = 65535
    body = upload("huge.dcm", b.to_bytes(ds), expect=413)
    assert "Rows=65535" in body["error"]


@pytest.mark.parametrize("depth", [40, 3000])
def test_deeply_nested_sequences(upload, depth):
    body = upload("nested.dcm", b.nested_sequence_dicom(depth), expect=400)
    assert "nested more than" in body["error"]


@pytest.mark.parametrize("side", [20000, 10000])
def test_png_bomb(upload, side):
    data = b.png_bomb(side, side)
    assert len(data) < 1_000_000  # tiny on disk ...
    body = upload(f"bomb{side}.png", data, expect=413)  # ... refused from the header, never decoded
    assert f"{side}×{side}" in body["error"] and "pixels" in body["error"]


def test_png_bomb_builder_makes_real_pngs():
    """The bombs are genuine PNGs (a small one decodes), so the refusal above is for size."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(b.png_bomb(300, 333)))
    image.load()
    assert image.size == (300, 333) and image.getextrema() == (0, 0)


def test_png_with_html_appended(upload):
    data = b.png_bytes() + b"<html><script>alert(document.cookie)</script></html>"
    body = upload("polyglot.png", data, expect=415)
    assert "extra data after the end of the PNG" in body["error"]


@pytest.mark.parametrize(
    ("name", "data", "what"),
    [
        ("report.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "PDF"),
        ("figure.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "PostScript/EPS"),
        ("binary-eps.png", b"\xc5\xd0\xd3\xc6" + b"\x00" * 60, "EPS"),
        ("anim.png", b"GIF89a" + b"\x00" * 40, "GIF"),
        ("page.png", b"<!DOCTYPE html><html></html>", "HTML"),
        ("mystery.png", b"\x01\x02\x03\x04 not an image at all", "unrecognised"),
    ],
)
def test_other_formats_renamed_png(upload, name, data, what):
    body = upload(name, data, expect=415)
    assert what in body["error"]


def test_zip_bomb_refused_before_extracting(upload):
    data = b.zip_bomb(256 * 1024 * 1024)
    assert len(data) < 2_000_000
    body = upload("bomb.zip", data, expect=413)
    assert "expands" in body["error"] and "scan.dcm" in body["error"]


def test_zip_total_expanded_size_refused_before_extracting(upload, settings):
    settings.ZIP_MAX_EXPANDED_BYTES = 50_000
    entries = [(f"s{i}.dcm", b.dicom_bytes(rows=64, columns=64, seed=i, sop_uid=f"1.2.3.{i}")) for i in range(10)]
    body = upload("big.zip", b.zip_bytes(entries), expect=413)
    assert "expands to" in body["error"] and "before extracting" in body["error"]


def test_zip_whose_declared_sizes_lie(upload):
    import struct

    payload = b.dicom_bytes(rows=64, columns=64)
    data = bytearray(b.zip_bytes([("a.dcm", payload)]))
    # Rewrite the declared uncompressed size to 100 bytes in both headers.
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, 100)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 100)
    body = upload("liar.zip", bytes(data), expect=(400, 413))
    assert "a.dcm" in body["error"]


def test_zip_with_10000_entries(upload):
    data = b.zip_bytes([(f"f{i:05d}.dcm", b"x") for i in range(10_000)], compression=0)
    body = upload("many.zip", data, expect=413)
    assert "10,000 entries" in body["error"]


@pytest.mark.parametrize("entry", ["../evil.dcm", "series/../../evil.dcm", "/etc/evil.dcm", "C:/evil.dcm", "..\\evil.dcm"])
def test_zip_slip_entries(upload, entry):
    data = b.zip_bytes([("ok.dcm", b.dicom_bytes()), (entry, b.dicom_bytes(sop_uid="1.2.3.4"))])
    body = upload("slip.zip", data, expect=400)
    assert "absolute path" in body["error"] or "escapes the archive" in body["error"]


def test_nested_zip_not_followed(upload):
    inner = b.zip_bytes([("a.dcm", b.dicom_bytes())])
    body = upload("outer.zip", b.zip_bytes([("inner.zip", inner)]), expect=400)
    assert "nested archive" in body["error"]


def test_upload_over_size_limit_refused_before_parsing(staff_api, patient, media, settings, monkeypatch):
    """413 from Content-Length alone: the multipart body is never parsed."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.http import multipartparser

    settings.UPLOAD_MAX_BYTES = 100_000

    def never(*args, **kwargs):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(multipartparser.MultiPartParser, "parse", never)
    big = SimpleUploadedFile("big.dcm", b"\x00" * 1_300_000)
    for url in (reverse("api:uploads"), reverse("uploads:upload")):
        response = staff_api.post(url, {"patient": patient.pk, "files": [big]})
        big.seek(0)
        assert response.status_code == 413, response.content
        assert "limit is 100,000 bytes" in response.json()["error"]
    assert Slice.objects.count() == 0 and stored_files(media) == []


def test_single_file_over_limit_within_request_slack(upload, settings):
    settings.UPLOAD_MAX_BYTES = 100_000
    body = upload("big.dcm", b"\x00" * 150_000, expect=413)  # under limit + multipart slack
    assert "larger than the" in body["error"]


def test_bad_file_in_a_good_batch_stores_nothing(staff_api, patient, media):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [SimpleUploadedFile(n, d) for n, d in b.series_files(4, patient_id="MRN-TEST")]
    files.append(SimpleUploadedFile("bad.dcm", b.dicom_bytes()[:500]))
    response = staff_api.post(reverse("api:uploads"), {"patient": patient.pk, "files": files})
    assert response.status_code == 400 and response.json()["file"] == "bad.dcm"
    assert Slice.objects.count() == 0 and stored_files(media) == []


def test_upload_page_reports_errors_too(staff_api, patient, media):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = staff_api.post(
        reverse("uploads:upload"),
        {"patient": patient.pk, "files": [SimpleUploadedFile("x.png", b"%PDF-1.4")]},
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    assert response.status_code == 415
    assert response.json() == {"file": "x.png", "error": "this is a PDF document, not a DICOM, JPEG or PNG image", "code": "unsupported_type"}
    response = staff_api.post(reverse("uploads:upload"), {"patient": patient.pk, "files": [SimpleUploadedFile("x.png", b"%PDF-1.4")]})
    assert response.status_code == 415 and b"x.png" in response.content and b"PDF document" in response.content


def test_too_many_files_in_one_upload(staff_api, patient, media, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.UPLOAD_MAX_FILES = settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(n, d) for n, d in b.series_files(3, patient_id="MRN-TEST")]
    response = staff_api.post(reverse("uploads:upload"), {"patient": patient.pk, "files": files}, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 413 and "too many files" in response.json()["error"]
    # A zip holding more members than UPLOAD_MAX_FILES is refused as well.
    archive = SimpleUploadedFile("three.zip", b.zip_bytes(b.series_files(3, patient_id="MRN-TEST")))
    response = staff_api.post(reverse("api:uploads"), {"patient": patient.pk, "files": [archive]})
    assert response.status_code == 413 and "too many files" in response.json()["error"]
    assert Slice.objects.count() == 0 and stored_files(media) == []
