"""The life of a job run, shared by every kind of job.

The database (scans.jobs.Job) is the record of every step; Celery only carries "please run
job N" messages, which may be lost (a broker restart) or delivered twice (acks_late). So:

- A job is created in the same transaction as the study change and enqueued on commit.
- A worker claims a job with one conditional UPDATE that also counts the attempt, *before*
  doing the work: a second delivery of the same job cannot run it twice, and an input that
  kills the worker every time still runs out of attempts (JOB_MAX_ATTEMPTS).
- A permanent error fails the job with its message; a transient one queues it again and
  raises RetryLater, which the Celery task turns into a retry with backoff (errors.py).
- The sweeper (sweeper.py) re-enqueues jobs whose message was lost or whose worker died.

Messages are sent by task name, through the Celery app's registry, so this module does not
import the tasks that call it.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils.translation import gettext as _

from portal.celery import app as celery_app
from portal.workflow.dispatch import send_on_commit
from portal.workflow.errors import RetryLater, describe, is_soft_limit, is_transient, max_attempts
from scans.jobs import JobKind, JobState
from scans.models import STUDY_TRANSITIONS, Job, Series, Study, StudyStatus

log = logging.getLogger(__name__)

TASK_NAMES = {
    JobKind.CLASSIFY: "portal.tasks.classify_series",
    JobKind.EXPLAIN: "portal.tasks.explain_study",
    JobKind.SEND: "portal.tasks.send_dicom",
}


def enqueue(job: Job) -> None:
    """Send "run job N" after the surrounding transaction commits (never before: the worker
    must find the row). The task id is recorded on the job so a redelivery is recognised."""
    task = celery_app.tasks[TASK_NAMES[job.kind]]
    send_on_commit(task, job.pk, job.ensure_task_id())  # a broker error is logged, never raised: the row is the record


def set_study_status(study: Study, status: str, detail: str = "") -> bool:
    """Move the study on when its state machine allows it; False (and logged) when not."""
    if study.status == status or status in STUDY_TRANSITIONS.get(study.status, set()):
        study.transition_to(status, detail)
        return True
    log.info("study %s stays %s (cannot go to %s)", study.pk, study.status, status)
    return False


def fail(job: Job, message: str) -> None:
    """Job FAILED with its message; a failed classification fails the study."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=job.study_id)
        job.fail(message)
        if job.kind == JobKind.CLASSIFY:
            series = job.series or Series.objects.get(pk=job.series_id)
            detail = _("Series %(series)s could not be classified: %(error)s") % {
                "series": series.description or series.series_instance_uid,
                "error": message,
            }
            set_study_status(study, StudyStatus.FAILED, detail)


def claim(job_id: int, kind: str, task_id: str | None) -> tuple[Job | None, bool]:
    """(job as it stands, whether this run claimed it). Not claimed: nothing to do (already
    finished, running elsewhere, gone, or out of attempts, in which case it is failed here)."""
    claimed = Job.objects.claim(job_id, kind, task_id, max_attempts(kind))
    job = Job.objects.select_related("study", "series").filter(pk=job_id).first()
    if job is None:  # its study was deleted after the message was sent
        log.info("job %s no longer exists: nothing to do", job_id)
        return None, False
    if claimed:
        return job, True
    redelivered = job.state == JobState.QUEUED or (task_id and job.celery_task_id == task_id)
    if job.is_active and job.attempts >= max_attempts(kind) and redelivered:
        # Every attempt so far died or failed transiently (e.g. a poison input that kills
        # the worker): stop here.
        fail(job, _("Gave up after %(n)d attempts; the last one did not finish (the worker may have crashed). "
                    "%(error)s") % {"n": job.attempts, "error": job.error})
        job.refresh_from_db()
    return job, False


def _requeue_after_transient(job: Job, exc: BaseException) -> None:
    """Transient error: back to queued and RetryLater (or FAILED when the attempts are used up)."""
    message = describe(exc)
    if job.attempts >= max_attempts(job.kind):
        fail(job, _("Failed after %(n)d attempts: %(error)s") % {"n": job.attempts, "error": message})
        return
    job.requeue(message)
    raise RetryLater(job.pk, job.attempts, exc) from exc


@contextmanager
def heartbeat(job_id: int) -> Iterator[None]:
    """While a job runs, touch its updated_at every JOB_STALE_AFTER_SECONDS/4 from a thread,
    so the sweeper only takes over jobs whose worker really stopped (a long series is not
    "stale"). Only on PostgreSQL outside a transaction (a real worker); tests in one
    transaction and SQLite run without it."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    interval = max(float(settings.JOB_STALE_AFTER_SECONDS) / 4.0, 0.5)
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                Job.objects.beat(job_id)
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


def _execute(job: Job, work: Callable[[Job], object]) -> Job | None:
    """Run work(job) under a heartbeat. None when it succeeded; otherwise the job as
    recorded: FAILED with the message (permanent), or queued again → RetryLater (transient)."""
    try:
        with heartbeat(job.pk):
            work(job)
    except RetryLater:
        raise
    except BaseException as exc:  # noqa: BLE001 - every outcome is recorded on the job
        if not isinstance(exc, Exception) and not is_soft_limit(exc):
            raise  # KeyboardInterrupt/SystemExit: the worker is going away; the sweeper resumes
        job.refresh_from_db()
        if is_transient(exc):
            log.warning("%s: transient error: %s", job, exc)
            _requeue_after_transient(job, exc)  # raises RetryLater, or fails the job
        else:
            log.warning("%s: permanent error: %s", job, exc)
            fail(job, describe(exc))
        job.refresh_from_db()
        return job
    return None


def run_claimed(
    job_id: int, kind: str, task_id: str | None, work: Callable[[Job], object], finish: Callable[[Job], None]
) -> Job | None:
    """The one life of a job run: claim it (counting the attempt), do the work with the
    error policy of `_execute`, then finish it. Returns the job as it now stands."""
    job, claimed = claim(job_id, kind, task_id)
    if not claimed:
        return job
    failed = _execute(job, work)
    if failed is not None:
        return failed
    finish(job)
    return Job.objects.get(pk=job_id)
