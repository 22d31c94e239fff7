"""SHA-256 on every storage read, and the S3 storage path against a local moto server."""
from __future__ import annotations

import hashlib
import socket
import uuid

import numpy as np
import pytest
from django.urls import reverse

from scans import imaging
from scans.errors import IntegrityError, ScanError
from scans.ingest import import_files
from scans.models import Slice
from tests.factories import make_patient
from tests.ingest import builders as b

pytestmark = pytest.mark.django_db


def test_stored_files_carry_their_sha256(media):
    patient = make_patient(mrn="MRN-TEST")
    data = b.dicom_bytes()
    import_files([("a.dcm", data)], patient=patient)
    sl = Slice.objects.get()
    assert sl.sha256 == hashlib.sha256(data).hexdigest()
    assert (media / sl.file.name).read_bytes() == data
    assert sl.file.name.rsplit("/", 1)[-1] == f"{sl.sha256}.dcm"  # named by content, not by the upload


def test_corruption_on_read_gives_a_clear_error(media, client, radiologist):
    patient = make_patient(mrn="MRN-TEST")
    import_files([("a.dcm", b.dicom_bytes())], patient=patient)
    sl = Slice.objects.get()
    imaging.slice_pixels(sl)  # fine while intact
    path = media / sl.file.name
    damaged = bytearray(path.read_bytes())
    damaged[-10] ^= 0xFF  # one flipped byte in the pixel data
    path.write_bytes(bytes(damaged))
    imaging.decoded_cache.clear()
    with pytest.raises(IntegrityError) as info:
        imaging.slice_pixels(sl)
    assert isinstance(info.value, ScanError)
    assert info.value.filename == "a.dcm" and "failed its integrity check" in info.value.message
    client.force_login(radiologist)
    response = client.get(reverse("scans:slice_image", args=[sl.pk]))
    assert response.status_code == 500
    assert "integrity check" in response.json()["error"]
    path.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        imaging.slice_pixels(sl)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(settings, monkeypatch):
    import boto3  # a dependency of the S3 storage (requirements.txt): never missing
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"scans-test-{uuid.uuid4().hex[:12]}"  # moto's state outlives one server
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    imaging.decoded_cache.clear()
    yield client
    imaging.decoded_cache.clear()
    server.stop()


def test_s3_storage_write_and_verified_read(s3):
    from django.core.files.storage import storages
    from storages.backends.s3 import S3Storage

    assert isinstance(storages["default"], S3Storage)
    patient = make_patient(mrn="MRN-TEST")
    files = b.series_files(3)
    import_files(files, patient=patient)
    slices = list(Slice.objects.order_by("order_index"))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket)["Contents"]}
    assert keys == {sl.file.name for sl in slices}
    for sl in slices:
        body = s3.get_object(Bucket=s3.bucket, Key=sl.file.name)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == sl.sha256
        assert imaging.slice_pixels(sl).shape == (32, 32)
    # Damage one object in the bucket: the next read notices.
    s3.put_object(Bucket=s3.bucket, Key=slices[0].file.name, Body=b"tampered")
    imaging.decoded_cache.clear()
    with pytest.raises(IntegrityError, match="integrity check"):
        imaging.slice_pixels(slices[0])


def test_s3_failed_import_leaves_no_objects(s3):
    patient = make_patient(mrn="MRN-TEST")
    with pytest.raises(ScanError):
        import_files(b.series_files(3) + [("x.dcm", b.dicom_bytes(patient_id="SOMEONE", sop_uid="1.2.3.9"))], patient=patient)
    assert s3.list_objects_v2(Bucket=s3.bucket).get("KeyCount", 0) == 0
    # A failure after some objects were written (a unique-UID clash) removes them.
    other = make_patient(mrn="OTHER")
    import_files([("y.dcm", b.dicom_bytes(patient_id="OTHER", study_uid="1.2.3.100", series_uid="1.2.3.101", sop_uid="1.2.3.102"))], patient=other)
    before = {o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket)["Contents"]}
    mixed = b.series_files(3) + [("y.dcm", b.dicom_bytes(study_uid="1.2.3.100", series_uid="1.2.3.101", sop_uid="1.2.3.102"))]
    with pytest.raises(ScanError, match="cannot be accepted"):
        import_files(mixed, patient=patient)
    after = {o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket)["Contents"]}
    assert after == before and Slice.objects.count() == 1


def test_decoded_cache_makes_scrolling_fast(media):
    """Rendering a 48-slice scroll twice: the second pass reads no storage and decodes
    nothing (cache hits), and each preview is well under a frame budget."""
    import time

    patient = make_patient(mrn="MRN-TEST")
    import_files(b.series_files(48, rows=256, columns=256), patient=patient)
    slices = list(Slice.objects.order_by("order_index"))
    imaging.decoded_cache.clear()
    t0 = time.perf_counter()
    for sl in slices:
        imaging.render_png(sl, size=256)
    cold = time.perf_counter() - t0
    hits = imaging.decoded_cache.hits
    t0 = time.perf_counter()
    for sl in slices:
        imaging.render_png(sl, window_center=500, window_width=400, size=256)
    warm = time.perf_counter() - t0
    assert imaging.decoded_cache.hits - hits == 48
    assert warm / 48 < 0.05, f"{warm / 48 * 1000:.1f} ms per warm preview"
    assert np.isfinite(cold)


def test_decoded_cache_is_bounded_by_bytes():
    cache = imaging.DecodedCache(max_bytes=3 * 64 * 64 * 4)
    for i in range(5):
        cache.put((f"sha{i}", 0), imaging.Decoded(np.zeros((64, 64), np.float32), None, None, None))
    assert cache.get(("sha0", 0)) is None and cache.get(("sha1", 0)) is None
    assert all(cache.get((f"sha{i}", 0)) is not None for i in (2, 3, 4))
