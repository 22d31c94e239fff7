"""Celery tasks: thin wrappers that take a job id and call the workflow service.

Routing (CELERY_TASK_ROUTES): classify_series → queue "inference", explain_study → "llm",
send_dicom (results to a PACS) → "default",
sweep_stale_jobs → "default" (Celery beat runs it every SWEEPER_INTERVAL_SECONDS).
Reliability settings (acks_late, reject_on_worker_lost, prefetch 1, visibility timeout)
are in portal/settings/base.py; the attempt count lives in the database (Job.attempts),
so Celery's own retry counter is not the limit (max_retries=None).

The services enqueue these tasks by name (portal.workflow.jobs.TASK_NAMES), so the
dependency points one way: tasks → workflow. PortalConfig.ready() imports this module so
the tasks are registered in every process.
"""
from __future__ import annotations

from typing import Callable

from celery import Task, shared_task

from portal.workflow import classification, explanations, pacs, sweeper
from portal.workflow.errors import RetryLater
from scans.models import Job


def _run(task: Task, service: Callable[..., Job | None], job_id: int) -> str:
    try:
        job = service(job_id, task_id=task.request.id)
    except RetryLater as exc:
        raise task.retry(exc=exc, countdown=exc.countdown) from exc
    return job.state if job else "missing"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def classify_series(self: Task, job_id: int) -> str:
    return _run(self, classification.run_classification, job_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def explain_study(self: Task, job_id: int) -> str:
    return _run(self, explanations.run_explanation, job_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def send_dicom(self: Task, job_id: int) -> str:
    try:
        job = pacs.run_send(job_id, task_id=self.request.id)
    except RetryLater as exc:
        if self.request.is_eager:  # in-process: no countdown; retry_pending_sends or the sweeper retries
            return "queued"
        raise self.retry(exc=exc, countdown=exc.countdown) from exc
    return job.state if job else "missing"


@shared_task
def sweep_stale_jobs() -> int:
    return sweeper.sweep_stale_jobs()
