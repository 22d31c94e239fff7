"""Results back to the PACS. On sign-off and on each amendment, one "send" job per object
(DICOM SR of the signed report, key-image Secondary Capture) and destination: rows written in
the sign-off's own transaction, so a PACS that is down never blocks or loses a sign-off.

Each send goes through the job life cycle of portal.workflow.jobs (claim with an attempt
count, transient errors back to the queue with backoff, permanent ones failed with their
message). A PACS that
is down is a transient error, and send jobs have DICOM_SEND_MAX_ATTEMPTS attempts. Queued
sends are retried by the Celery task's backoff, by the sweeper, and, in the embedded default
(no Celery beat), by `manage.py dicom_listener` through `retry_pending_sends`.

Unsigned AI output goes out only with DICOM_SEND_PRELIMINARY, marked preliminary.
"""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import record
from hospital import results, scu
from hospital.models import DicomSend, RemoteNode, SendObject
from portal.workflow import review as review_service
from portal.workflow.classification import study_awaiting_review
from portal.workflow.errors import PermanentError
from portal.workflow.jobs import enqueue, run_claimed
from scans.jobs import JobKind, JobState
from scans.models import Job, Prediction, Review, Study

log = logging.getLogger(__name__)


def _queue(study: Study, node: RemoteNode, what: str, *, review: Review | None, preliminary: bool = False) -> Job:
    job = Job.objects.create(kind=JobKind.SEND, study=study)
    DicomSend.objects.create(job=job, node=node, review=review, what=what, preliminary=preliminary)
    enqueue(job)
    return job


def send_results(review: Review) -> list[Job]:
    """Queue the SR and the key image of this signed version for every destination."""
    return [
        _queue(review.study, node, what, review=review)
        for node in RemoteNode.objects.destinations()
        for what in (SendObject.SR, SendObject.SC)
    ]


def send_preliminary(study: Study, prediction: Prediction | None) -> list[Job]:
    """Unsigned AI output, only when explicitly configured; marked preliminary."""
    if not settings.DICOM_SEND_PRELIMINARY or prediction is None:
        return []
    return [
        _queue(study, node, what, review=None, preliminary=True)
        for node in RemoteNode.objects.destinations()
        for what in (SendObject.SR, SendObject.SC)
    ]


def subject_of(send: DicomSend) -> results.Subject:
    study = send.job.study
    if send.review is not None:
        return results.Subject(study, send.review.prediction, send.review)
    return results.Subject(study, study.primary_prediction(), None)


def build(send: DicomSend):
    subject = subject_of(send)
    return results.build_sr(subject) if send.what == SendObject.SR else results.build_sc(subject)


def _deliver(job: Job) -> None:
    send = DicomSend.objects.select_related("node", "review", "job__study__patient").get(job=job)
    ds = build(send)
    if not send.sop_instance_uid:
        DicomSend.objects.filter(pk=send.pk).update(sop_instance_uid=ds.SOPInstanceUID)
    try:
        scu.store(send.node, ds)
    except scu.PacsRefused as exc:
        raise PermanentError(str(exc)) from exc


def _finish(job: Job) -> None:
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(state=JobState.DONE, error="", finished_at=now, updated_at=now)


def run_send(job_id: int, *, task_id: str | None = None) -> Job | None:
    return run_claimed(job_id, JobKind.SEND, task_id, _deliver, _finish)


def resend(send: DicomSend, *, user: Any, request: Any = None) -> Job:
    """An administrator's re-send: a new job for the same object and destination."""
    with transaction.atomic():
        job = _queue(send.job.study, send.node, send.what, review=send.review, preliminary=send.preliminary)
        record("dicom.resend", request=request, actor=user, obj=job.dicom_send, patient_id=send.job.study.patient_id,
               previous_job=send.job_id)
    return job


def retry_pending_sends(older_than_seconds: float = 60.0) -> int:
    """Enqueue again the send jobs waiting in the queue (a PACS that was down) for longer than
    `older_than_seconds`. Returns how many."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    jobs = list(Job.objects.filter(kind=JobKind.SEND, state=JobState.QUEUED, updated_at__lte=cutoff))
    for job in jobs:
        Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(updated_at=timezone.now())
        enqueue(job)
    return len(jobs)


def _on_awaiting_review(sender: Any, study: Study, **kwargs: Any) -> None:
    send_preliminary(study, study.primary_prediction())


def _on_signed(sender: Any, review: Review, **kwargs: Any) -> None:
    send_results(review)


study_awaiting_review.connect(_on_awaiting_review, dispatch_uid="pacs-preliminary")
review_service.report_signed.connect(_on_signed, dispatch_uid="pacs-results")
