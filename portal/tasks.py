"""Celery tasks: thin wrappers that take a job id and call the pipeline service.

Routing (CELERY_TASK_ROUTES): classify_series → queue "inference", explain_study → "llm",
send_dicom (results to a PACS) → "default",
sweep_stale_jobs → "default" (Celery beat runs it every SWEEPER_INTERVAL_SECONDS).
Reliability settings (acks_late, reject_on_worker_lost, prefetch 1, visibility timeout)
are in portal/settings/base.py; the attempt count lives in the database (Job.attempts),
so Celery's own retry counter is not the limit (max_retries=None).
"""
from __future__ import annotations

from celery import shared_task

from portal.workflow import pacs, pipeline


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def classify_series(self, job_id: int) -> str:
    try:
        job = pipeline.run_classification(job_id, task_id=self.request.id)
    except pipeline.RetryLater as exc:
        raise self.retry(exc=exc, countdown=exc.countdown) from exc
    return job.state if job else "missing"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def explain_study(self, job_id: int) -> str:
    try:
        job = pipeline.run_explanation(job_id, task_id=self.request.id)
    except pipeline.RetryLater as exc:
        raise self.retry(exc=exc, countdown=exc.countdown) from exc
    return job.state if job else "missing"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def send_dicom(self, job_id: int) -> str:
    try:
        job = pacs.run_send(job_id, task_id=self.request.id)
    except pipeline.RetryLater as exc:
        if self.request.is_eager:  # in-process: no countdown; retry_pending_sends or the sweeper retries
            return "queued"
        raise self.retry(exc=exc, countdown=exc.countdown) from exc
    return job.state if job else "missing"


@shared_task
def sweep_stale_jobs() -> int:
    return pipeline.sweep_stale_jobs()
