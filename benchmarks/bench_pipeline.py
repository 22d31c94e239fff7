"""End-to-end pipeline benchmark: upload → stored prediction, through a real Redis broker, a
real PostgreSQL database and a real, warm `celery worker` process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
    REDIS_URL=redis://127.0.0.1:6379/8 \\
    .venv/bin/python benchmarks/bench_pipeline.py [--jpeg-runs 30] [--dicom-runs 8] \\
        [--throughput-slices 200] [--concurrency 1]

It creates/migrates the database named in DATABASE_URL (use a scratch one: studies are
created and deleted), FLUSHES the Redis database in REDIS_URL, starts one worker on the
queue "inference" (as in production; explanation jobs wait on "llm", which is not part of
upload → prediction), warms it (model loaded once), then measures:

- jpeg:     one JPEG from ../shared/data/brain-tumor-mri uploaded through
            portal.workflow.ingest.submit_upload until its Prediction row exists (p50/p95);
- dicom48:  the 48-slice series ../shared/data/dicom/brain-dwi-sagittal-48 the same way;
- throughput: N slices imported first — as N single-JPEG studies, and as N/50 studies of
            one 50-JPEG series each — their classify jobs enqueued in one commit, then
            slices/s until the last prediction is stored.

Prints one JSON object (last line). Files go to var/bench/ (PORTAL_VAR_DIR).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
JPEG_DIR = SHARED / "brain-tumor-mri" / "Training"
DICOM_DIR = SHARED / "dicom" / "brain-dwi-sagittal-48"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_s": round(percentile(values, 50), 3),
        "p95_s": round(percentile(values, 95), 3),
        "mean_s": round(statistics.fmean(values), 3) if values else None,
        "max_s": round(max(values), 3) if values else None,
    }


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def jpeg_files(n: int) -> list[Path]:
    """n JPEGs spread over the four class folders, in a fixed order."""
    per_class = [sorted(d.glob("*.jpg")) for d in sorted(JPEG_DIR.iterdir()) if d.is_dir()]
    out: list[Path] = []
    i = 0
    while len(out) < n:
        for files in per_class:
            if i < len(files) and len(out) < n:
                out.append(files[i])
        i += 1
    return out


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        import django

        django.setup()
        from django.conf import settings

        self.settings = settings

    # ------------------------------------------------------------------ helpers
    def wait_prediction(self, study_ids: list[int], expect: int, timeout: float) -> float:
        from scans.jobs import JobKind, JobState
        from scans.models import Job, Prediction

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if Prediction.objects.filter(series__study_id__in=study_ids).count() >= expect:
                return time.perf_counter()
            failed = Job.objects.filter(study_id__in=study_ids, kind=JobKind.CLASSIFY, state=JobState.FAILED).first()
            if failed:
                raise RuntimeError(f"job {failed.pk} failed: {failed.error}")
            time.sleep(0.005)
        raise TimeoutError(f"no prediction for studies {study_ids[:5]} within {timeout}s")

    def upload(self, files: list[Path], patient, process: bool = True):
        from portal.workflow.ingest import submit_upload

        return submit_upload(files, patient=patient, user=None, allow_mismatch=True, process=process)

    def job_timings(self, study_ids: list[int]) -> tuple[list[float], list[float], list[float]]:
        """(queue wait, job run, model time) of the studies' classify jobs, once they are done."""
        from scans.jobs import JobKind, JobState
        from scans.models import Job, Prediction

        jobs = Job.objects.filter(study_id__in=study_ids, kind=JobKind.CLASSIFY)
        deadline = time.monotonic() + 30
        while jobs.exclude(state=JobState.DONE).exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the prediction is stored a moment before the job row says done
        jobs = list(jobs)
        waits = [(j.started_at - j.queued_at).total_seconds() for j in jobs if j.started_at]
        runs = [j.duration_seconds for j in jobs if j.duration_seconds is not None]
        model_ms = list(Prediction.objects.filter(series__study_id__in=study_ids).values_list("runtime_ms", flat=True))
        return waits, runs, [m / 1000.0 for m in model_ms if m is not None]

    def new_patient(self, tag: str):
        from scans.models import Patient

        return Patient.objects.create(mrn=f"BENCH-{tag}-{time.time_ns()}", full_name="Benchmark")

    def measure(self, label: str, uploads: list[list[Path]], fresh_patient: bool) -> dict:
        """One upload per entry of `uploads`; latency until its prediction is stored."""
        from scans.models import Study

        latencies: list[float] = []
        waits: list[float] = []
        job_runs: list[float] = []
        model: list[float] = []
        patient = self.new_patient(label)
        for i, files in enumerate(uploads):
            if fresh_patient:  # raster UIDs derive from the patient: a new study each run
                patient = self.new_patient(f"{label}{i}")
            else:  # DICOM UIDs come from the files: remove the previous copy first
                Study.objects.filter(series__slices__original_filename__in=[f.name for f in files]).distinct().delete()
            t0 = time.perf_counter()
            result = self.upload(files, patient)
            ids = [s.pk for s in result.studies_with_new_slices]
            t1 = self.wait_prediction(ids, expect=1, timeout=120)
            latencies.append(t1 - t0)
            for into, values in zip((waits, job_runs, model), self.job_timings(ids)):
                into.extend(values)
        out = summary(latencies)
        out.update(
            slices=len(uploads[0]),
            queue_wait_p50_s=round(percentile(waits, 50), 3),
            job_run_p50_s=round(percentile(job_runs, 50), 3),
            model_p50_s=round(percentile(model, 50), 3),
        )
        return out

    def throughput(self, uploads: list[list[Path]]) -> dict:
        """Import every upload first (no jobs), then enqueue all their classify jobs in one
        commit and time until the last prediction is stored."""
        from django.db import transaction

        from portal.workflow.classification import start_processing

        patient = self.new_patient("tp")
        studies = []
        for files in uploads:
            studies.extend(self.upload(files, patient, process=False).studies_with_new_slices)
        ids = [s.pk for s in studies]
        n_slices = sum(len(files) for files in uploads)
        t0 = time.perf_counter()
        with transaction.atomic():  # every classify message is sent at once, on commit
            for study in studies:
                start_processing(study)
        t1 = self.wait_prediction(ids, expect=len(ids), timeout=60 + 5 * n_slices)
        seconds = t1 - t0
        return {"slices": n_slices, "series": len(ids), "seconds": round(seconds, 2),
                "slices_per_s": round(n_slices / seconds, 2)}

    def run(self) -> dict:
        a = self.args
        jpegs = jpeg_files(100)
        dicoms = sorted(DICOM_DIR.glob("*.dcm"))
        # Warm-up: the worker process loads the model on its first task, once.
        self.measure("warm", [[jpegs[-1]], [jpegs[-2]]], fresh_patient=True)
        results: dict = {}
        results["jpeg"] = self.measure("jpeg", [[jpegs[i % 100]] for i in range(a.jpeg_runs)], fresh_patient=True)
        results["dicom48"] = self.measure("dicom", [dicoms] * a.dicom_runs, fresh_patient=False)
        n = a.throughput_slices
        spare = jpeg_files(100 + 2 * n)[100:]  # files not used by the latency runs
        results["throughput_single_slice_series"] = self.throughput([[f] for f in spare[:n]])
        per = 50
        results["throughput_50_slice_series"] = self.throughput(
            [spare[n + i:n + i + per] for i in range(0, n, per)])
        return results


def worker_rss_mb(pid: int) -> dict:
    def rss(p: int) -> float:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")

    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    return {"main": rss(pid), "pool_processes": [rss(int(c)) for c in children]}


def start_worker(env: dict, concurrency: int, log_path: Path, app: str = "portal") -> subprocess.Popen:
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", "inference",
         "--concurrency", str(concurrency), "-n", "bench@%h", "-l", "info",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {log_path.read_text()[-2000:]}")
        if " ready." in log_path.read_text(errors="replace"):
            return proc
        time.sleep(0.2)
    raise TimeoutError("worker did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jpeg-runs", type=int, default=30)
    parser.add_argument("--dicom-runs", type=int, default=8)
    parser.add_argument("--throughput-slices", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes")
    parser.add_argument("--worker-app", default="portal",
                        help="Celery app of the worker; tests.pipeline.worker_app with PIPELINE_TEST_DOUBLES=1 "
                             "only checks this script when no model is installed (its figures mean nothing)")
    args = parser.parse_args()

    db_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not db_url.startswith("postgres") or not redis_url:
        parser.error("set DATABASE_URL=postgres://... and REDIS_URL=redis://... (a scratch database)")
    if not JPEG_DIR.is_dir() or not DICOM_DIR.is_dir():
        parser.error(f"sample data missing under {SHARED}")
    var = REPO / "var" / "bench"
    var.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.dev")
    os.environ.setdefault("PORTAL_VAR_DIR", str(var))
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))

    import redis

    ensure_database(db_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, check=True)
    redis.Redis.from_url(redis_url).flushdb()
    worker = start_worker(dict(os.environ), args.concurrency, var / "worker.log", args.worker_app)
    try:
        bench = Bench(args)
        load_before = os.getloadavg()
        results = bench.run()
        from portal.workflow.predictor import current_model_version

        results["setup"] = {
            "cpus": os.cpu_count(),
            "worker_concurrency": args.concurrency,
            "inference_runtime": os.environ.get("INFERENCE_RUNTIME") or "onnx",
            "model_version": current_model_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "targets": {"jpeg_p95_s": 3.0, "dicom48_s": 10.0},
            "worker_rss_mb": worker_rss_mb(worker.pid),
        }
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
