"""The stale-job sweeper (Celery beat runs it every SWEEPER_INTERVAL_SECONDS): re-enqueue
jobs whose message was lost (e.g. the broker restarted) or whose worker died, and fail
those that used up their attempts."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.workflow.classification import start_processing
from portal.workflow.errors import max_attempts
from portal.workflow.jobs import enqueue, fail
from scans.models import Job, Study, StudyStatus

log = logging.getLogger(__name__)


def _sweep_one(job_id: int, stale_after: float) -> bool:
    """Re-enqueue (True) or fail one stale job, under its row lock; False when it is locked
    by someone else, gone, finished, or alive after all."""
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or not job.is_active:
            return False
        if job.updated_at >= timezone.now() - timezone.timedelta(seconds=stale_after):
            return False
        if job.attempts >= max_attempts(job.kind):
            fail(job, _("Gave up after %(n)d attempts (the job was still %(state)s with no progress). %(error)s")
                 % {"n": job.attempts, "state": job.get_state_display().lower(), "error": job.error})
            return False
        job.resend()
        enqueue(job)
        return True


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


def sweep_stale_jobs() -> int:
    """Re-enqueue jobs queued or running with no sign of life for JOB_STALE_AFTER_SECONDS.
    Returns how many were re-enqueued."""
    stale_after = float(settings.JOB_STALE_AFTER_SECONDS)
    stale = list(Job.objects.stale(stale_after).values_list("pk", flat=True))
    requeued = sum(_sweep_one(job_id, stale_after) for job_id in stale)
    requeued += _start_studies_without_jobs(stale_after)
    if requeued:
        log.warning("sweeper re-enqueued %d stale job(s)", requeued)
    return requeued
