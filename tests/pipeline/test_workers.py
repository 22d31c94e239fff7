"""Reliability with a REAL Redis broker and REAL `celery worker` processes on the test
PostgreSQL database: (a) a worker killed with SIGKILL mid-classification, (b) the broker
flushed with jobs queued, (c) a poison input that kills its worker every time, (d) 20 series
at once on 2 worker processes. The database is the truth in every case."""
from __future__ import annotations

import re
import time

import pytest
from django.db.models import Count

from portal import tasks
from portal.workflow.classification import start_processing
from portal.workflow.sweeper import sweep_stale_jobs
from scans.jobs import JobKind, JobState
from scans.models import Job, Prediction, Series, StudyStatus
from tests.factories import make_patient, make_study
from tests.pipeline.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLASSIFY_TIMEOUT = 120


def new_studies(n: int, n_slices: int = 1, description: str = "MR brain"):
    patient = make_patient()
    studies = [make_study(patient, status=StudyStatus.RECEIVED, n_slices=n_slices, label=None) for _ in range(n)]
    if description != "MR brain":
        Series.objects.filter(study__in=studies).update(description=description)
    return studies


def classify_jobs(studies):
    return Job.objects.filter(kind=JobKind.CLASSIFY, study__in=studies)


def all_finished(studies) -> bool:
    return not classify_jobs(studies).filter(state__in=[JobState.QUEUED, JobState.RUNNING]).exists()


def assert_one_prediction_per_series(studies) -> None:
    series = Series.objects.filter(study__in=studies)
    counts = dict(series.annotate(n=Count("predictions")).values_list("pk", "n"))
    assert counts and set(counts.values()) == {1}, counts


def test_a_worker_killed_mid_classification_job_completes_once(start_worker, broker, settings):
    settings.JOB_STALE_AFTER_SECONDS = 2
    [study] = new_studies(1, n_slices=2)
    [job] = start_processing(study)  # autocommit: enqueued to Redis at once
    doomed = start_worker(PIPELINE_TEST_SLEEP_SECONDS=120, JOB_STALE_AFTER_SECONDS=2)
    wait_for(lambda: Job.objects.get(pk=job.pk).state == JobState.RUNNING, CLASSIFY_TIMEOUT, what="job running")
    time.sleep(1.0)  # well inside the classification (it sleeps before storing)
    doomed.kill()
    running = Job.objects.get(pk=job.pk)
    assert running.state == JobState.RUNNING and running.attempts == 1
    assert not Prediction.objects.filter(series__study=study).exists()
    # The message is unacknowledged in Redis; nothing runs it until the sweeper notices
    # that the heartbeat stopped.
    start_worker(JOB_STALE_AFTER_SECONDS=2)
    time.sleep(settings.JOB_STALE_AFTER_SECONDS + 0.5)
    assert sweep_stale_jobs() == 1
    wait_for(lambda: all_finished([study]), CLASSIFY_TIMEOUT, what="the swept job to finish")
    done = Job.objects.get(pk=job.pk)
    assert done.state == JobState.DONE and done.attempts == 2, (done.state, done.attempts, done.error)
    assert_one_prediction_per_series([study])
    study.refresh_from_db()
    assert study.status == StudyStatus.AWAITING_REVIEW


def test_b_broker_flushed_sweeper_recovers_every_job(start_worker, broker, settings):
    settings.JOB_STALE_AFTER_SECONDS = 2
    studies = new_studies(4)
    for study in studies:
        start_processing(study)
    assert broker.llen("inference") == 4
    broker.flushdb()  # Redis restarted without persistence: every queued message is gone
    start_worker(JOB_STALE_AFTER_SECONDS=2)
    time.sleep(settings.JOB_STALE_AFTER_SECONDS + 0.5)
    assert set(classify_jobs(studies).values_list("state", flat=True)) == {JobState.QUEUED}  # truly lost
    assert sweep_stale_jobs() == 4
    wait_for(lambda: all_finished(studies), CLASSIFY_TIMEOUT, what="recovered jobs to finish")
    assert set(classify_jobs(studies).values_list("state", flat=True)) == {JobState.DONE}
    assert_one_prediction_per_series(studies)


def test_c_poison_input_fails_after_three_attempts_while_others_flow(start_worker, broker, settings):
    settings.JOB_MAX_ATTEMPTS = 3
    [poison] = new_studies(1, description="POISON series")
    healthy_before = new_studies(2)
    start_processing(poison)
    for study in healthy_before:
        start_processing(study)
    start_worker(concurrency=2, PIPELINE_TEST_CRASH_MARKER="POISON")
    healthy_after = new_studies(2)  # uploads that arrive while the poison keeps crashing
    for study in healthy_after:
        start_processing(study)
    healthy = healthy_before + healthy_after
    wait_for(lambda: all_finished(healthy + [poison]), CLASSIFY_TIMEOUT * 2, what="all jobs to finish")
    bad = classify_jobs([poison]).get()
    assert bad.state == JobState.FAILED and bad.attempts == 3, (bad.state, bad.attempts, bad.error)
    assert "3 attempts" in bad.error
    assert not Prediction.objects.filter(series__study=poison).exists()
    poison.refresh_from_db()
    assert poison.status == StudyStatus.FAILED and poison.status_detail
    assert set(classify_jobs(healthy).values_list("state", flat=True)) == {JobState.DONE}
    assert_one_prediction_per_series(healthy)


def test_d_twenty_series_two_worker_processes_no_duplicates(start_worker, broker):
    studies = new_studies(20)
    jobs = [job for study in studies for job in start_processing(study)]
    assert len(jobs) == 20
    for study in studies:  # a second upload of the same studies adds no work
        assert start_processing(study) == []
    for job in jobs[:10]:  # and duplicate messages (a redelivery) must not duplicate results
        tasks.classify_series.apply_async(args=[job.pk])
    assert broker.llen("inference") == 30
    worker = start_worker(concurrency=2)
    wait_for(lambda: all_finished(studies), CLASSIFY_TIMEOUT * 2, what="20 series to finish")
    assert Prediction.objects.filter(series__study__in=studies).count() == 20
    assert_one_prediction_per_series(studies)
    assert set(classify_jobs(studies).values_list("state", "attempts")) == {(JobState.DONE, 1)}
    loads = re.findall(r"inference model .* loaded in process (\d+)", worker.output())
    assert 1 <= len(loads) <= 2 and len(set(loads)) == len(loads)  # once per worker process
