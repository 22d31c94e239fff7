"""Benchmark: import the 48-slice series (../shared/data/dicom/brain-dwi-sagittal-48) with
the real import service (validation, decoding, SHA-256, storage writes, database rows,
ordering), without inference. Prints one JSON object.

    .venv/bin/python benchmarks/bench_import.py [--repeat 3] [--folder PATH]

It uses a throw-away SQLite database and media folder under a temporary directory, so it
touches nothing else. Peak memory is the tracemalloc peak (Python and numpy allocations) of one extra import (plus the
process's max RSS for reference). Target: <= 3 s wall time on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", default=str(REPO.parent / "shared" / "data" / "dicom" / "brain-dwi-sagittal-48"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(args.folder)
    if not folder.is_dir():
        sys.exit(f"no such folder: {folder}")

    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    os.environ["PORTAL_VAR_DIR"] = str(work)
    os.environ.pop("DATABASE_URL", None)
    os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    os.environ["DJANGO_MEDIA_ROOT"] = str(work / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.dev")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from scans import imaging
    from scans.ingest import import_files
    from scans.ingest_files import sources_from_path
    from scans.models import Patient, Slice

    from scans.models import Series, Study

    def fresh_patient(i: int) -> Patient:
        Slice.objects.all().delete()
        Series.objects.all().delete()
        Study.objects.all().delete()
        return Patient.objects.create(mrn=f"BENCH-{i}")

    # Timed runs without tracemalloc (it slows every allocation), then one measured run.
    runs = []
    for i in range(args.repeat):
        patient = fresh_patient(i)
        t0 = time.perf_counter()
        result = import_files(sources_from_path(folder), patient=patient, allow_mismatch=True)
        wall = time.perf_counter() - t0
        runs.append({"wall_s": round(wall, 3), "slices": sum(result.series_slices.values())})
    patient = fresh_patient(args.repeat)
    tracemalloc.start()
    import_files(sources_from_path(folder), patient=patient, allow_mismatch=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # Preview rendering: a cold pass (read + verify + decode + PNG) and a warm scroll.
    series_slices = list(Slice.objects.order_by("order_index"))
    imaging.decoded_cache.clear()
    t0 = time.perf_counter()
    for sl in series_slices:
        imaging.render_png(sl)
    cold_ms = (time.perf_counter() - t0) / len(series_slices) * 1000
    t0 = time.perf_counter()
    for sl in series_slices:
        imaging.render_png(sl, window_center=400, window_width=800)
    warm_ms = (time.perf_counter() - t0) / len(series_slices) * 1000

    # Larger slices: the 384×384 transfer-syntax set (JPEG 2000, JPEG-LS, RLE ...), if present.
    big = {}
    ts_folder = folder.parent / "transfer-syntaxes"
    if ts_folder.is_dir():
        patient = Patient.objects.create(mrn="BENCH-TS")
        import_files(sources_from_path(ts_folder), patient=patient, allow_mismatch=True)
        ts_slices = list(Slice.objects.filter(series__study__patient=patient))
        imaging.decoded_cache.clear()
        t0 = time.perf_counter()
        for sl in ts_slices:
            imaging.render_png(sl)
        big["preview_384_cold_ms_per_slice"] = round((time.perf_counter() - t0) / len(ts_slices) * 1000, 2)
        t0 = time.perf_counter()
        for _ in range(5):
            for sl in ts_slices:
                imaging.render_png(sl, window_center=600, window_width=1200)
        big["preview_384_warm_ms_per_slice"] = round((time.perf_counter() - t0) / (5 * len(ts_slices)) * 1000, 2)

    walls = sorted(r["wall_s"] for r in runs)
    print(
        json.dumps(
            {
                "benchmark": "import brain-dwi-sagittal-48 (no inference)",
                "files": len(list(folder.iterdir())),
                "slices": runs[-1]["slices"],
                "runs": runs,
                "wall_s_median": walls[len(walls) // 2],
                "wall_s_max": walls[-1],
                "target_s": 3.0,
                "meets_target": walls[-1] <= 3.0,
                "peak_tracemalloc_mb": round(peak / 1e6, 1),
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "preview_cold_ms_per_slice": round(cold_ms, 2),
                "preview_warm_ms_per_slice": round(warm_ms, 2),
                **big,
                "cpu_count": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
