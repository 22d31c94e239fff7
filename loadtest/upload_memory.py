"""How much memory an upload costs the server process before it is accepted or refused.

Runs `scans.ingest.import_files` (the one path behind the upload page, the API and
import_scans) in this process on a large file on disk, as Django leaves an upload over
FILE_UPLOAD_MAX_MEMORY_SIZE in a temporary file, and reports the Python heap peak
(tracemalloc) and the growth of the resident set (ru_maxrss). The checks stream the file in
1 MiB chunks, so neither should grow with the file.

    .venv/bin/python loadtest/upload_memory.py            # 190 MB, each case
    .venv/bin/python loadtest/upload_memory.py --mb 50
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

CASES = {
    "junk": b"JUNK",  # refused by type (415) after the size check
    "png-header": b"\x89PNG\r\n\x1a\n",  # looks like a PNG, refused as damaged (400)
}


def _one(case: str, mb: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")
    import django

    django.setup()
    from scans.errors import ScanError
    from scans.ingest import import_files
    from scans.models import Patient

    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        handle.write(CASES[case])
        block = os.urandom(1024 * 1024)
        for _ in range(mb):
            handle.write(block)
        handle.flush()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        try:
            import_files([Path(handle.name)], patient=Patient(mrn="MEMORY-CHECK"))
            outcome = "accepted"
        except ScanError as exc:
            outcome = f"{exc.status} {exc.code}"
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"case": case, "file_mb": mb, "outcome": outcome, "heap_peak_mb": round(peak / 2**20, 1),
            "rss_growth_mb": round((rss_after - rss_before) / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=190)
    parser.add_argument("--case", choices=sorted(CASES))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_one(args.case, args.mb)))
        return 0
    for case in CASES:  # a fresh process per case: ru_maxrss only grows
        subprocess.run([sys.executable, __file__, "--case", case, "--mb", str(args.mb)], check=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
