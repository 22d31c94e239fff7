"""Issue 18: no work is lost when the broker is down during an upload (full stack: the test
PostgreSQL, a real Redis, a real `celery worker`). Every study of the upload gets its job in
the upload's own transaction; the failed send neither fails the request nor loses the job;
the sweeper sends it once the broker is back, and also starts a stored study that has no job
at all; import_scans records the work, warns and exits 0."""
from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from portal.celery import app
from portal.workflow.sweeper import sweep_stale_jobs
from scans.ingest import import_files
from scans.jobs import JobKind, JobState
from scans.models import Job, Patient, Study, StudyStatus
from tests.ingest import builders as b
from tests.pipeline.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REFUSED = "redis://127.0.0.1:7189/0"  # nothing listens here (this port range)
TIMEOUT = 180


def _point_broker_at(url: str) -> None:
    app.conf.broker_url = url
    app._after_fork()  # drop pools built for the old URL


@pytest.fixture
def broker_down(broker, redis_url):
    _point_broker_at(REFUSED)
    yield
    _point_broker_at(redis_url)


def _awaiting_review(studies) -> bool:
    return all(Study.objects.get(pk=s.pk).status == StudyStatus.AWAITING_REVIEW for s in studies)


def test_broker_down_during_an_upload_loses_no_work(broker_down, broker, redis_url, start_worker, radiologist,
                                                    settings, tmp_path):
    patient = Patient.objects.create(mrn="MRN-BROKER")
    client = Client()
    client.force_login(radiologist)
    files = [SimpleUploadedFile(name, data) for name, data in b.fresh_series(patient.mrn) + b.fresh_series(patient.mrn)]
    response = client.post(reverse("api:uploads"), {"patient": patient.pk, "files": files})
    assert response.status_code == 201, response.content
    uploaded = list(Study.objects.filter(patient=patient))
    assert len(uploaded) == 2
    for study in uploaded:  # recorded in the upload's transaction, though nothing was sent
        assert study.jobs.filter(kind=JobKind.CLASSIFY, state=JobState.QUEUED).count() == 1
    assert broker.llen("inference") == 0

    # import_scans in the same situation: the work is recorded, a clear warning, exit 0.
    folder = tmp_path / "scans"
    folder.mkdir()
    for name, data in b.fresh_series(patient.mrn):
        (folder / name).write_bytes(data)
    out, err = StringIO(), StringIO()
    call_command("import_scans", str(folder), "--patient", patient.mrn, stdout=out, stderr=err)
    assert "not sent" in err.getvalue() and "sweeper" in err.getvalue(), err.getvalue()
    imported = Study.objects.filter(patient=patient).exclude(pk__in=[s.pk for s in uploaded]).get()
    assert imported.jobs.filter(state=JobState.QUEUED).count() == 1

    # A study stored with no job at all (e.g. by a version of the portal before this fix).
    orphan = import_files(b.fresh_series(patient.mrn), patient=patient).studies[0]
    assert not orphan.jobs.exists() and orphan.status == StudyStatus.RECEIVED

    # The broker comes back; the sweeper sends the recorded jobs and starts the orphan.
    _point_broker_at(redis_url)
    settings.JOB_STALE_AFTER_SECONDS = 1
    time.sleep(1.5)
    start_worker(JOB_STALE_AFTER_SECONDS=1)
    assert sweep_stale_jobs() == 4
    everything = uploaded + [imported, orphan]
    wait_for(lambda: _awaiting_review(everything), TIMEOUT, what="every study to be classified")
    assert Job.objects.filter(study__in=everything, kind=JobKind.CLASSIFY).exclude(state=JobState.DONE).count() == 0
