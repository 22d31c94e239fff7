"""The processing pipeline: classify every series of a study, then draft the patient
explanation. The database (scans.models.Job) is the record of every step; Celery only
carries "please run job N" messages, which may be lost (Redis keeps nothing on disk) or
delivered twice (acks_late). So:

- A job is created in the same transaction as the study change and enqueued on commit.
- A worker claims a job with one conditional UPDATE that also counts the attempt, *before*
  doing the work: a second delivery of the same job cannot run it twice, and an input that
  kills the worker every time still runs out of attempts (JOB_MAX_ATTEMPTS).
- Results are written with get_or_create on the unique (series, model_version, slice count), so a
  duplicate run can never store two predictions.
- `sweep_stale_jobs` (Celery beat) re-enqueues jobs whose message was lost or whose worker
  died, and fails those that used up their attempts.

Errors: a permanent error (bad input: scans.errors.ScanError, undecodable pixels, anything
unexpected) fails the job at once with its message; a transient one (storage OSError or
timeout, database OperationalError, LLM timeout) puts the job back in the queue and the
Celery task retries it with exponential backoff (`RetryLater.countdown`).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, InterfaceError, OperationalError, connection, connections, transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import record
from portal.workflow.dispatch import send_on_commit
from scans.models import (
    RELEASED_STATUSES,
    STUDY_TRANSITIONS,
    Job,
    JobKind,
    JobState,
    Prediction,
    Series,
    SlicePrediction,
    Study,
    StudyStatus,
)

log = logging.getLogger(__name__)

ERROR_MAX_CHARS = 1000


class RetryLater(Exception):
    """A transient failure: the job is queued again; retry the task after `countdown` s."""

    def __init__(self, job_id: int, attempts: int, cause: BaseException):
        self.job_id = job_id
        self.attempts = attempts
        self.cause = cause
        self.countdown = backoff_seconds(attempts)
        super().__init__(f"job {job_id}: transient error on attempt {attempts}: {_describe(cause)}")


class PermanentError(Exception):
    """Bad input: retrying cannot help."""


def max_attempts(kind: str | None = None) -> int:
    """Attempts per job; a send to a PACS that may be down for a while gets more."""
    if kind == JobKind.SEND:
        return int(getattr(settings, "DICOM_SEND_MAX_ATTEMPTS", 20))
    return int(getattr(settings, "JOB_MAX_ATTEMPTS", 3))


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff: base, 2·base, 4·base ... capped (JOB_RETRY_BACKOFF_SECONDS)."""
    base = float(os.environ.get("JOB_RETRY_BACKOFF_SECONDS", getattr(settings, "JOB_RETRY_BACKOFF_SECONDS", 5.0)))
    return min(base * (2 ** max(attempts - 1, 0)), 600.0)


def _describe(exc: BaseException) -> str:
    message = str(exc) or type(exc).__name__
    if type(exc).__name__ not in message:
        message = f"{type(exc).__name__}: {message}"
    return message[:ERROR_MAX_CHARS]


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [OSError, TimeoutError, OperationalError, InterfaceError]
    try:
        from celery.exceptions import SoftTimeLimitExceeded

        types.append(SoftTimeLimitExceeded)
    except ImportError:  # pragma: no cover - celery is a dependency
        pass
    for module, name in (("httpx", "TimeoutException"), ("httpx", "NetworkError"), ("openai", "APITimeoutError"),
                         ("openai", "APIConnectionError")):
        try:
            types.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def _permanent_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [PermanentError, ValueError, TypeError]
    try:
        from PIL import UnidentifiedImageError  # an OSError, but the bytes will not change

        types.append(UnidentifiedImageError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from scans.errors import ScanError

        types.insert(0, ScanError)
    except ImportError:  # the ingest module may not be there yet
        pass
    return tuple(types)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _permanent_types()):
        return False
    return isinstance(exc, _transient_types())


# --- Enqueueing ------------------------------------------------------------------------------


def _enqueue(job: Job) -> None:
    """Send "run job N" after the surrounding transaction commits (never before: the worker
    must find the row). The task id is recorded on the job so a redelivery is recognised."""
    from portal import tasks

    task = {JobKind.CLASSIFY: tasks.classify_series, JobKind.SEND: tasks.send_dicom}.get(job.kind, tasks.explain_study)
    task_id = job.celery_task_id or str(uuid.uuid4())
    if job.celery_task_id != task_id:
        Job.objects.filter(pk=job.pk).update(celery_task_id=task_id)
        job.celery_task_id = task_id
    send_on_commit(task, job.pk, task_id)  # a broker error is logged, never raised: the row is the record


def _set_study_status(study: Study, status: str, detail: str = "") -> bool:
    if study.status == status or status in STUDY_TRANSITIONS.get(study.status, set()):
        study.transition_to(status, detail)
        return True
    log.info("study %s stays %s (cannot go to %s)", study.pk, study.status, status)
    return False


# --- Model version ------------------------------------------------------------------------


def _predictor_options() -> dict[str, Any]:
    return {
        "models_dir": getattr(settings, "INFERENCE_MODELS_DIR", None),
        "name": getattr(settings, "INFERENCE_DEFAULT_MODEL", "") or None,
        "runtime": os.environ.get("INFERENCE_RUNTIME") or None,
    }


_PREDICTORS_SEEN: set[int] = set()


def get_predictor():
    """The process-wide predictor (inference.predict.get_predictor caches it, so the model
    is loaded once per worker process), configured from the Django settings."""
    from inference.predict import get_predictor as _get

    options = {k: v for k, v in _predictor_options().items() if v is not None}
    t0 = time.perf_counter()
    predictor = _get(**options)
    if id(predictor) not in _PREDICTORS_SEEN:
        _PREDICTORS_SEEN.add(id(predictor))
        log.info("inference model %s %s loaded in process %d in %.2f s", getattr(predictor, "model_name", "?"),
                 getattr(predictor, "model_version", "?"), os.getpid(), time.perf_counter() - t0)
    return predictor


def current_model_version() -> str | None:
    """The version a worker will use, read from the model's metadata.json without loading
    the model (web processes call this). None when it cannot be read."""
    try:
        from inference.predict import DEFAULT_MODELS_DIR, default_model_name

        models_dir = Path(getattr(settings, "INFERENCE_MODELS_DIR", None) or DEFAULT_MODELS_DIR)
        name = getattr(settings, "INFERENCE_DEFAULT_MODEL", "") or default_model_name(models_dir)
        return str(json.loads((models_dir / name / "metadata.json").read_text())["version"])
    except (ImportError, OSError, ValueError, KeyError):
        return None


# --- Classification -----------------------------------------------------------------------


def start_processing(study: Study) -> list[Job]:
    """One queued classify job per series that no prediction by the current model version
    covers whole (a new series, or one that grew: every slice gets a result) and that has no
    live job; the study goes to PROCESSING (a signed one stays in NEW_IMAGES: see
    scans.addendum). Returns the new jobs."""
    version = current_model_version()
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        live = Job.objects.active().filter(kind=JobKind.CLASSIFY, study=study).values("series_id")
        pending = [s for s in Series.objects.filter(study=study).exclude(pk__in=live) if s.needs_classification(version)]
        jobs = [Job.objects.create(kind=JobKind.CLASSIFY, study=study, series=series) for series in pending]
        _audit_reclassification(study, [s for s in pending if s.predictions.exists()])
        active = study.jobs.active().filter(kind=JobKind.CLASSIFY).count()
        if active:
            detail = ngettext("Classifying %(n)d series.", "Classifying %(n)d series.", active) % {"n": active}
            _set_study_status(study, StudyStatus.PROCESSING, detail)
        for job in jobs:
            _enqueue(job)
    return jobs


def _audit_reclassification(study: Study, grown: list[Series]) -> None:
    for series in grown:
        record("series.reclassify", obj=series, patient_id=study.patient_id, study_id=study.pk,
               slices=series.slices.count(), study_status=study.status)


@dataclass
class Claim:
    job: Job | None
    ran: bool  # False: nothing to do (already finished, running elsewhere, or gave up)


def _claim(job_id: int, kind: str, task_id: str | None) -> Claim:
    """Mark the job running and count the attempt in one conditional UPDATE. A job is
    claimable when queued, or when running under this same Celery task id (the message was
    redelivered because the worker that held it died)."""
    now = timezone.now()
    claimable = Q(state=JobState.QUEUED)
    if task_id:
        claimable |= Q(state=JobState.RUNNING, celery_task_id=task_id)
    updated = (
        Job.objects.filter(claimable, pk=job_id, kind=kind, attempts__lt=max_attempts(kind))
        .update(
            state=JobState.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            updated_at=now,
            finished_at=None,
            **({"celery_task_id": task_id} if task_id else {}),
        )
    )
    job = Job.objects.select_related("study", "series").filter(pk=job_id).first()
    if job is None:  # its study was deleted after the message was sent
        log.info("job %s no longer exists: nothing to do", job_id)
        return Claim(None, False)
    if updated:
        return Claim(job, True)
    if job.state in (JobState.QUEUED, JobState.RUNNING) and job.attempts >= max_attempts(kind) and (
        job.state == JobState.QUEUED or (task_id and job.celery_task_id == task_id)
    ):
        # Every attempt so far died or failed transiently (e.g. a poison input that kills
        # the worker): stop here.
        _fail(job, _("Gave up after %(n)d attempts; the last one did not finish (the worker may have crashed). %(error)s")
              % {"n": job.attempts, "error": job.error})
        job.refresh_from_db()
    return Claim(job, False)


def _fail(job: Job, message: str, *, study_detail: str | None = None) -> None:
    """Job FAILED with its message; a failed classification fails the study."""
    now = timezone.now()
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=job.study_id)
        Job.objects.filter(pk=job.pk).update(
            state=JobState.FAILED, error=message[:ERROR_MAX_CHARS], finished_at=now, updated_at=now
        )
        if job.kind == JobKind.CLASSIFY:
            series = job.series or Series.objects.get(pk=job.series_id)
            detail = study_detail or _("Series %(series)s could not be classified: %(error)s") % {
                "series": series.description or series.series_instance_uid,
                "error": message,
            }
            _set_study_status(study, StudyStatus.FAILED, detail)


def _requeue_after_transient(job: Job, exc: BaseException) -> None:
    """Transient error: back to queued (or FAILED when the attempts are used up)."""
    message = _describe(exc)
    if job.attempts >= max_attempts(job.kind):
        _fail(job, _("Failed after %(n)d attempts: %(error)s") % {"n": job.attempts, "error": message})
        return
    Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(
        state=JobState.QUEUED, error=message, updated_at=timezone.now()
    )
    raise RetryLater(job.pk, job.attempts, exc) from exc


def _test_hooks(series: Series) -> None:
    """TEST-ONLY fault injection, off unless these variables are set (tests/pipeline):
    PIPELINE_TEST_CRASH_MARKER: a series whose description contains it kills its worker
        process (SIGKILL), like a decoder that segfaults on a poison file;
    PIPELINE_TEST_SLEEP_SECONDS: sleep this long before storing, so a test can kill the
        worker in the middle of a classification."""
    marker = os.environ.get("PIPELINE_TEST_CRASH_MARKER")
    if marker and marker in (series.description or ""):
        log.error("test hook: killing worker process %s on series %s", os.getpid(), series.pk)
        os.kill(os.getpid(), signal.SIGKILL)
    delay = float(os.environ.get("PIPELINE_TEST_SLEEP_SECONDS") or 0)
    if delay > 0:
        time.sleep(delay)


def _probabilities(values: Any) -> dict[str, float]:
    if values is None:
        return {}
    if isinstance(values, dict):
        return {str(k): float(v) for k, v in values.items()}
    from inference.predict import CLASSES

    return {name: float(p) for name, p in zip(CLASSES, list(values))}


@contextmanager
def _heartbeat(job_id: int):
    """While a job runs, touch its updated_at every JOB_STALE_AFTER_SECONDS/4 from a thread,
    so the sweeper only takes over jobs whose worker really stopped (a long series is not
    "stale"). Only on PostgreSQL outside a transaction (a real worker); tests in one
    transaction and SQLite run without it."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    interval = max(float(getattr(settings, "JOB_STALE_AFTER_SECONDS", 300)) / 4.0, 0.5)
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(updated_at=timezone.now())
        except Exception:  # noqa: BLE001 - a missed beat only makes the sweeper act sooner
            log.exception("heartbeat of job %s stopped", job_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def _execute(job: Job, work) -> Job | None:
    """Run work(job) under a heartbeat. None when it succeeded; otherwise the job as
    recorded: FAILED with the message (permanent), or queued again → RetryLater (transient)."""
    try:
        with _heartbeat(job.pk):
            work(job)
    except RetryLater:
        raise
    except BaseException as exc:  # noqa: BLE001 - every outcome is recorded on the job
        if not isinstance(exc, Exception) and not _is_soft_limit(exc):
            raise  # KeyboardInterrupt/SystemExit: the worker is going away; the sweeper resumes
        job.refresh_from_db()
        if is_transient(exc):
            log.warning("%s: transient error: %s", job, exc)
            _requeue_after_transient(job, exc)  # raises RetryLater, or fails the job
        else:
            log.warning("%s: permanent error: %s", job, exc)
            _fail(job, _describe(exc))
        job.refresh_from_db()
        return job
    return None


def _classify(job: Job) -> None:
    from scans.imaging import slice_pixels

    series = job.series
    slices = list(series.ordered_slices())
    if not slices:
        raise PermanentError(_("The series has no images."))
    predictor = get_predictor()
    version = getattr(predictor, "model_version", None)
    if version is not None and Prediction.objects.filter(
        series=series, model_version=str(version), slice_count=len(slices)
    ).exists():
        return  # these slices are already classified by this model (e.g. a duplicate job)
    t0 = time.perf_counter()
    if series.scope_reason:  # the header rules (scans.scope) put it out of scope: the model never runs
        from inference.series import out_of_scope

        result = out_of_scope(series.scope_reason, predictor.model_name, str(version))
    else:
        result = predictor.predict_series([slice_pixels(sl) for sl in slices], heatmaps=True)
    runtime_ms = (time.perf_counter() - t0) * 1000.0
    _test_hooks(series)
    _store_prediction(job, series, slices, result, runtime_ms)



def _run_claimed(
    job_id: int, kind: str, task_id: str | None, work: Callable[[Job], object], finish: Callable[[Job], None]
) -> Job | None:
    """The one life of a job run: claim it (counting the attempt), do the work with the
    error policy of `_execute`, then finish it. Returns the job as it now stands."""
    claim = _claim(job_id, kind, task_id)
    if not claim.ran:
        return claim.job
    failed = _execute(claim.job, work)
    if failed is not None:
        return failed
    finish(claim.job)
    return Job.objects.get(pk=job_id)


# The job life cycle for services outside this module (portal.workflow.pacs sends results).
enqueue = _enqueue
run_claimed = _run_claimed
# Sent (inside the transaction) when every series of a study is classified: sender=Study.
study_awaiting_review = Signal()


def _finish_explanation(job: Job) -> None:
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(state=JobState.DONE, error="", finished_at=now, updated_at=now)

def run_classification(job_id: int, *, task_id: str | None = None) -> Job | None:
    """Classify the job's series and store the prediction. Idempotent: a finished job, or a
    series that already has a prediction by this model version, is left as it is."""
    return _run_claimed(job_id, JobKind.CLASSIFY, task_id, _classify, _finish_classification)


def _is_soft_limit(exc: BaseException) -> bool:
    from celery.exceptions import SoftTimeLimitExceeded

    return isinstance(exc, SoftTimeLimitExceeded)


def _store_prediction(job: Job, series: Series, slices: list, result: Any, runtime_ms: float) -> Prediction:
    from inference.gradcam import heatmap_to_png

    version = str(result.model_version)
    # Heat-map files first (storage is not transactional); rows in one transaction below.
    heatmap_names: list[str | None] = []
    for sl, slice_result in zip(slices, result.slices):
        heatmap = getattr(slice_result, "heatmap", None)
        if heatmap is None:
            heatmap_names.append(None)
            continue
        name = f"heatmaps/series{series.pk}/{version}/{len(slices)}/slice{sl.pk}.png"
        heatmap_names.append(default_storage.save(name, ContentFile(heatmap_to_png(heatmap))))
    is_mri = bool(result.is_brain_mri) and bool(result.label)
    key = result.key_slice_index
    key_slice = slices[key] if key is not None and 0 <= key < len(slices) else None
    confidence = min(max(float(result.confidence or 0.0), 0.0), 1.0)
    with transaction.atomic():
        prediction, created = Prediction.objects.get_or_create(
            series=series,
            model_version=version,
            slice_count=len(slices),
            defaults=dict(
                model_name=str(result.model_name)[:64],
                label=str(result.label) if is_mri else "",
                probabilities=_probabilities(result.probabilities),
                confidence=confidence,
                is_brain_mri=is_mri,
                scope_reason="" if is_mri else str(getattr(result, "scope_reason", "") or "")[:200],
                key_slice=key_slice,
                aggregation=str(result.aggregation or ""),
                runtime_ms=runtime_ms,
            ),
        )
        if created:
            SlicePrediction.objects.bulk_create(
                SlicePrediction(
                    prediction=prediction,
                    slice=sl,
                    probabilities=_probabilities(slice_result.probabilities),
                    is_brain_mri=bool(slice_result.is_brain_mri),
                    heatmap=name or "",
                )
                for sl, slice_result, name in zip(slices, result.slices, heatmap_names)
            )
    if not created:  # a duplicate run lost the race: drop its files
        for name in heatmap_names:
            if name:
                default_storage.delete(name)
    remove_orphan_heatmaps(series)
    return prediction


def remove_orphan_heatmaps(series: Series) -> int:
    """Delete heat-map files of the series that no row points to: what an attempt killed
    between writing its files and committing its rows left behind (half-written files too).
    Run after the rows are committed, so a concurrent duplicate run, whose files are not yet
    referenced, only loses files it would delete itself when it loses the race."""
    folder = f"heatmaps/series{series.pk}"
    kept = set(SlicePrediction.objects.filter(slice__series=series).exclude(heatmap="").values_list("heatmap", flat=True))
    removed = 0
    for name in _stored_files(folder):
        if name not in kept:
            default_storage.delete(name)
            removed += 1
    if removed:
        log.warning("removed %d orphan heat-map file(s) of series %s", removed, series.pk)
    return removed


def _stored_files(folder: str) -> list[str]:
    try:
        dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [f"{folder}/{name}" for name in files] + [f for sub in dirs for f in _stored_files(f"{folder}/{sub}")]


def _finish_classification(job: Job) -> None:
    """Job done; when it was the study's last classification, the study awaits review and
    the explanation is requested. The study row lock serialises the last two finishers."""
    now = timezone.now()
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=job.study_id)
        Job.objects.filter(pk=job.pk).update(state=JobState.DONE, error="", finished_at=now, updated_at=now)
        classify = study.jobs.filter(kind=JobKind.CLASSIFY)
        if classify.active().exists():
            return
        failed = [j for j in _latest_per_series(classify) if j.state == JobState.FAILED]
        if failed:
            if study.status != StudyStatus.FAILED:
                _set_study_status(study, StudyStatus.FAILED, _("%(n)d series could not be classified.") % {"n": len(failed)})
            return
        if _set_study_status(study, StudyStatus.AWAITING_REVIEW, _("AI result ready for review.")):
            request_explanation(study)
            study_awaiting_review.send(sender=Study, study=study)


def _latest_per_series(jobs: Iterable[Job]) -> list[Job]:
    latest: dict[int, Job] = {}
    for j in sorted(jobs, key=lambda j: (j.queued_at, j.pk)):
        latest[j.series_id] = j
    return list(latest.values())


# --- Explanation --------------------------------------------------------------------------


def request_explanation(study: Study, *, regenerate: bool = False) -> Job:
    """The explain job for the study on queue "llm". Returns the live one if there is one;
    without `regenerate`, a finished job whose draft exists is returned as it is."""
    with transaction.atomic():
        active = study.jobs.active().filter(kind=JobKind.EXPLAIN).first()
        if active:
            return active
        if not regenerate:
            done = study.jobs.filter(kind=JobKind.EXPLAIN, state=JobState.DONE).order_by("-finished_at", "-pk").first()
            if done and study.explanations.exists():
                return done
        try:
            with transaction.atomic():
                job = Job.objects.create(kind=JobKind.EXPLAIN, study=study)
        except IntegrityError:  # a concurrent request created it first
            return study.jobs.active().get(kind=JobKind.EXPLAIN)
        _enqueue(job)
    return job


def run_explanation(job_id: int, *, task_id: str | None = None) -> Job | None:
    """Draft the patient explanation (portal.workflow.explanations, owned by the patient
    portal). LLM timeouts retry with backoff; other errors fail the job with the message.
    The study status does not depend on it: the radiologist can review without a draft."""
    return _run_claimed(job_id, JobKind.EXPLAIN, task_id, _draft, _finish_explanation)


def _draft(job: Job) -> None:
    from portal.workflow.explanations import draft_explanation  # lazy: owned by the patient portal

    draft_explanation(job.study)


# --- Sweeper --------------------------------------------------------------------------------


def sweep_stale_jobs() -> int:
    """Re-enqueue jobs queued or running with no sign of life for JOB_STALE_AFTER_SECONDS:
    their message was lost (e.g. Redis restarted) or their worker died. Jobs that used up
    their attempts are failed. Returns how many were re-enqueued."""
    stale_after = float(getattr(settings, "JOB_STALE_AFTER_SECONDS", 300))
    requeued = 0
    for job_id in list(Job.objects.stale(stale_after).values_list("pk", flat=True)):
        with transaction.atomic():
            try:
                job = Job.objects.select_for_update(skip_locked=True).get(pk=job_id)
            except Job.DoesNotExist:  # locked by someone else right now, or gone
                continue
            if job.state not in (JobState.QUEUED, JobState.RUNNING):
                continue
            cutoff = timezone.now() - timezone.timedelta(seconds=stale_after)
            if job.updated_at >= cutoff:
                continue
            if job.attempts >= max_attempts(job.kind):
                was = job.get_state_display().lower()
                _fail(job, _("Gave up after %(n)d attempts (the job was still %(state)s with no progress). %(error)s")
                      % {"n": job.attempts, "state": was, "error": job.error})
                continue
            job.state = JobState.QUEUED
            job.celery_task_id = str(uuid.uuid4())  # a new message; the old one is void
            job.updated_at = timezone.now()
            job.save(update_fields=["state", "celery_task_id", "updated_at"])
            _enqueue(job)
            requeued += 1
    requeued += _start_studies_without_jobs(stale_after)
    if requeued:
        log.warning("sweeper re-enqueued %d stale job(s)", requeued)
    return requeued


def _start_studies_without_jobs(stale_after: float) -> int:
    """Stored studies that never got a job (stored while processing was off, or by an old
    version of the portal that lost them with the broker): start them. Returns the new jobs."""
    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after)
    studies = Study.objects.filter(status=StudyStatus.RECEIVED, jobs__isnull=True, created_at__lt=cutoff)
    started = 0
    for study in studies.distinct():
        jobs = start_processing(study)
        if jobs:
            log.warning("sweeper started study %s, stored without a job", study.pk)
        started += len(jobs)
    return started


# --- Progress for the page ------------------------------------------------------------------


TERMINAL_STUDY_STATES = {StudyStatus.AWAITING_REVIEW, StudyStatus.FAILED, *RELEASED_STATUSES}


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _seconds(start, end) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def _summary(total: int, done: int, failed: int) -> str:
    text = ngettext("%(done)d of %(total)d series classified", "%(done)d of %(total)d series classified", total) % {
        "done": done, "total": total}
    if failed:
        text += ", " + ngettext("%(n)d failed", "%(n)d failed", failed) % {"n": failed}
    return text


def study_progress(study: Study) -> dict[str, Any]:
    """JSON-able state of the study and its jobs for the live status page."""
    study.refresh_from_db(fields=["status", "status_detail", "updated_at"])
    jobs = list(study.jobs.select_related("series").order_by("queued_at", "pk"))
    latest = {j.pk for j in _latest_per_series([j for j in jobs if j.kind == JobKind.CLASSIFY])}
    classify = [j for j in jobs if j.kind == JobKind.CLASSIFY and j.pk in latest]
    explain = [j for j in jobs if j.kind == JobKind.EXPLAIN][-1:]
    shown = classify + explain
    total = len(classify)
    done = sum(1 for j in classify if j.state == JobState.DONE)
    failed = sum(1 for j in classify if j.state == JobState.FAILED)
    active = any(j.state in (JobState.QUEUED, JobState.RUNNING) for j in shown)
    return {
        "study": study.pk,
        "status": study.status,
        "status_display": str(study.get_status_display()),
        "status_detail": study.status_detail,
        "terminal": study.status in TERMINAL_STUDY_STATES and not active,
        "progress": {"total": total, "done": done, "failed": failed},
        "summary": _summary(total, done, failed),
        "max_attempts": max_attempts(),
        "jobs": [
            {
                "id": j.pk,
                "kind": j.kind,
                "kind_display": str(j.get_kind_display()),
                "series": j.series_id,
                "series_label": (j.series.description or j.series.series_instance_uid) if j.series else "",
                "state": j.state,
                "state_display": str(j.get_state_display()),
                "attempts": j.attempts,
                "error": j.error,
                "queued_at": _iso(j.queued_at),
                "started_at": _iso(j.started_at),
                "finished_at": _iso(j.finished_at),
                "wait_seconds": _seconds(j.queued_at, j.started_at),
                "run_seconds": _seconds(j.started_at, j.finished_at),
            }
            for j in shown
        ],
    }
