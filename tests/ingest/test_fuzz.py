"""Damaged files never crash the import: random byte flips and cuts in DICOM (native and
RLE, whose native decoder can panic), PNG and JPEG files give either a clean import or a
ScanError naming the file, never any other exception."""
from __future__ import annotations

import random

import pytest
from pydicom.uid import RLELossless

from scans.dicom_read import SkipFile
from scans.errors import ScanError
from scans.ingest_files import as_source
from scans.ingest_parse import parse_file
from tests.ingest import builders as b


def _seeds() -> list[bytes]:
    rle = b.make_dataset(rows=48, columns=48)
    rle.compress(RLELossless)
    return [b.dicom_bytes(rows=24, columns=24), b.to_bytes(rle), b.png_bytes(24, 24), b.jpeg_bytes(24, 24)]


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about each broken value
@pytest.mark.parametrize("seed", range(4))
def test_mutated_files_fail_cleanly(seed, settings):
    rng = random.Random(seed)
    seeds = _seeds()
    outcomes = {"ok": 0, "refused": 0}
    for i in range(100):
        data = bytearray(rng.choice(seeds))
        start = 132 if data[128:132] == b"DICM" else 8
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(start, len(data))] = rng.randrange(256)
        if rng.random() < 0.25:
            data = data[: rng.randrange(start + 1, len(data))]
        name = f"fuzz{i}.bin"
        try:
            parse_file(as_source((name, bytes(data))))
            outcomes["ok"] += 1
        except (ScanError, SkipFile) as exc:
            assert exc.filename == name
            outcomes["refused"] += 1
    assert outcomes["refused"] > 10  # the mutations really do break files
