"""The live status page's JSON: the state of a study and its jobs."""
from __future__ import annotations

from typing import Any

from django.utils.translation import ngettext

from portal.workflow.errors import max_attempts
from scans.jobs import JobKind, JobState
from scans.models import RELEASED_STATUSES, Job, Study, StudyStatus

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


def _job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.pk,
        "kind": job.kind,
        "kind_display": str(job.get_kind_display()),
        "series": job.series_id,
        "series_label": (job.series.description or job.series.series_instance_uid) if job.series else "",
        "state": job.state,
        "state_display": str(job.get_state_display()),
        "attempts": job.attempts,
        "error": job.error,
        "queued_at": _iso(job.queued_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "wait_seconds": _seconds(job.queued_at, job.started_at),
        "run_seconds": _seconds(job.started_at, job.finished_at),
    }


def study_progress(study: Study) -> dict[str, Any]:
    """JSON-able state of the study and its jobs for the live status page: the latest
    classification of each series and the latest explanation."""
    study.refresh_from_db(fields=["status", "status_detail", "updated_at"])
    jobs = study.jobs.select_related("series").order_by("queued_at", "pk")
    classify = sorted(jobs.filter(kind=JobKind.CLASSIFY).latest_per_series(), key=lambda j: (j.queued_at, j.pk))
    explain = list(jobs.filter(kind=JobKind.EXPLAIN))[-1:]
    shown = classify + explain
    total = len(classify)
    done = sum(1 for j in classify if j.state == JobState.DONE)
    failed = sum(1 for j in classify if j.state == JobState.FAILED)
    active = any(j.is_active for j in shown)
    return {
        "study": study.pk,
        "status": study.status,
        "status_display": str(study.get_status_display()),
        "status_detail": study.status_detail,
        "terminal": study.status in TERMINAL_STUDY_STATES and not active,
        "progress": {"total": total, "done": done, "failed": failed},
        "summary": _summary(total, done, failed),
        "max_attempts": max_attempts(),
        "jobs": [_job_json(j) for j in shown],
    }
