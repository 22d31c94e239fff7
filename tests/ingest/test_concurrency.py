"""Ten simultaneous uploads of the same series on PostgreSQL end as one series holding each
instance exactly once, with exactly one stored file per instance."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from scans.ingest import import_files
from scans.models import Patient, Series, Slice, Study
from tests.ingest import builders as b
from tests.ingest.conftest import stored_files

pytestmark = pytest.mark.django_db(transaction=True)


def test_ten_concurrent_uploads_give_one_series(postgres, media):
    patient = Patient.objects.create(mrn="MRN-TEST")
    files = b.series_files(12)
    barrier = threading.Barrier(10)
    results, errors = [], []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(import_files(files, patient=patient))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(results) == 10
    assert Study.objects.count() == 1 and Series.objects.count() == 1
    assert Slice.objects.count() == 12
    assert sorted(len(r.new_slice_ids) for r in results) == [0] * 9 + [12]
    assert all(r.series_slices == {b.SERIES_UID: 12} for r in results)
    order = list(Series.objects.get().ordered_slices().values_list("order_index", "slice_location"))
    assert [o for o, _ in order] == list(range(12))
    assert [loc for _, loc in order] == sorted(loc for _, loc in order)
    assert len(stored_files(media)) == 12  # the losers' files were never written
