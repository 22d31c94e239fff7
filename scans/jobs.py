"""Processing jobs: the database is the record of what is pending.

A Job row is one unit of work (classify a series, explain a study). Its state machine lives
here, so every state change is one of these methods and nothing else writes `Job.state`:

    queued -> claim -> running -> done()    -> done
                               -> fail()    -> failed
                               -> requeue() -> queued   (transient error; the task retries)
    queued/running, no sign of life -> resend() -> queued (the sweeper, a new message id)

Celery only carries "please run job N" messages; the conditional UPDATEs below make a
duplicate or late message harmless.
"""
from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

ERROR_MAX_CHARS = 1000


class JobKind(models.TextChoices):
    CLASSIFY = "classify", _("Classification")
    EXPLAIN = "explain", _("Explanation")
    SEND = "send", _("Send to PACS")


class JobState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)


class JobQuerySet(models.QuerySet["Job"]):
    def active(self) -> "JobQuerySet":
        return self.filter(state__in=ACTIVE_JOB_STATES)

    def stale(self, older_than_seconds: float) -> "JobQuerySet":
        """Jobs queued or running whose last sign of life is older than the timeout: their
        message may have been lost with the broker or their worker may have died."""
        cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
        return self.active().filter(updated_at__lt=cutoff)

    def claim(self, job_id: int, kind: str, task_id: str | None, max_attempts: int) -> bool:
        """Mark the job running and count the attempt in one conditional UPDATE. A job is
        claimable when queued, or when running under this same Celery task id (the message
        was redelivered because the worker that held it died). True when it was claimed."""
        now = timezone.now()
        claimable = Q(state=JobState.QUEUED)
        if task_id:
            claimable |= Q(state=JobState.RUNNING, celery_task_id=task_id)
        updated = self.filter(claimable, pk=job_id, kind=kind, attempts__lt=max_attempts).update(
            state=JobState.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            updated_at=now,
            finished_at=None,
            **({"celery_task_id": task_id} if task_id else {}),
        )
        return bool(updated)

    def beat(self, job_id: int) -> None:
        """A running job's sign of life (the sweeper leaves it alone)."""
        self.filter(pk=job_id, state=JobState.RUNNING).update(updated_at=timezone.now())

    def latest_per_series(self) -> list["Job"]:
        """The newest job of each series (a series re-run has several)."""
        latest: dict[int, Job] = {}
        for job in sorted(self, key=lambda j: (j.queued_at, j.pk)):
            latest[job.series_id] = job
        return list(latest.values())


class Job(models.Model):
    kind = models.CharField(max_length=10, choices=JobKind.choices)
    study = models.ForeignKey("scans.Study", on_delete=models.CASCADE, related_name="jobs")
    series = models.ForeignKey("scans.Series", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        app_label = "scans"
        ordering = ["queued_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=[s.value for s in JobState]), name="job_state_valid"),
            models.CheckConstraint(
                condition=~Q(kind="classify") | Q(series__isnull=False), name="job_classify_has_series"
            ),
            # At most one live job per series (classification) or per study (explanation).
            models.UniqueConstraint(
                fields=["kind", "series"],
                condition=Q(state__in=["queued", "running"], kind="classify"),
                name="job_one_active_classify_per_series",
            ),
            models.UniqueConstraint(
                fields=["kind", "study"],
                condition=Q(state__in=["queued", "running"], kind="explain"),
                name="job_one_active_explain_per_study",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.state})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    def _set(self, **fields: object) -> None:
        fields.setdefault("updated_at", timezone.now())
        Job.objects.filter(pk=self.pk).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)

    def done(self) -> None:
        now = timezone.now()
        self._set(state=JobState.DONE, error="", finished_at=now, updated_at=now)

    def fail(self, message: str) -> None:
        now = timezone.now()
        self._set(state=JobState.FAILED, error=message[:ERROR_MAX_CHARS], finished_at=now, updated_at=now)

    def requeue(self, message: str) -> bool:
        """A running job back to the queue after a transient error (the task retries it).
        False when it is no longer running (e.g. the sweeper took it over)."""
        updated = Job.objects.filter(pk=self.pk, state=JobState.RUNNING).update(
            state=JobState.QUEUED, error=message[:ERROR_MAX_CHARS], updated_at=timezone.now()
        )
        if updated:
            self.state, self.error = JobState.QUEUED, message[:ERROR_MAX_CHARS]
        return bool(updated)

    def resend(self) -> None:
        """Queued again under a new message id (the sweeper: the old message is void)."""
        self._set(state=JobState.QUEUED, celery_task_id=str(uuid.uuid4()))

    def ensure_task_id(self) -> str:
        """The Celery task id of this job's message, made and recorded if it has none, so a
        redelivery of the same message is recognised by `JobQuerySet.claim`."""
        if not self.celery_task_id:
            self.celery_task_id = str(uuid.uuid4())
            Job.objects.filter(pk=self.pk).update(celery_task_id=self.celery_task_id)
        return self.celery_task_id
