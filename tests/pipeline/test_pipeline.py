"""The job service with in-process (eager) tasks: the happy path with the real predictor,
idempotency, permanent and transient errors, attempt counting, the sweeper and the
live-status JSON view."""
from __future__ import annotations

import hashlib
import io
import json
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from portal import tasks
from portal.workflow import classification, explanations, jobs, predictor, progress, sweeper
from portal.workflow.errors import RetryLater
from scans.errors import CorruptFile
from scans.jobs import JobKind, JobState
from scans.models import Job, Prediction, SlicePrediction, StudyStatus
from tests.factories import make_patient, make_study

pytestmark = pytest.mark.django_db


def new_study(n_slices: int = 2, **fields):
    return make_study(make_patient(), status=StudyStatus.RECEIVED, n_slices=n_slices, label=None, **fields)


def classify_job(study) -> Job:
    return study.jobs.get(kind=JobKind.CLASSIFY)


@pytest.fixture
def no_explanations(monkeypatch):
    """Record explanation requests instead of running them (tested separately)."""
    calls = []
    monkeypatch.setattr(classification, "request_explanation", lambda study, **kw: calls.append(study.pk))
    return calls


def _with_a_real_brain_slice(study, shared_data):
    """Slice 0 of the study becomes a real brain MRI (a Kaggle training image, as PNG), which the
    image check accepts; the factory's synthetic slices are rejected, so the study has both."""
    source = sorted((shared_data / "brain-tumor-mri" / "Training" / "glioma").iterdir())[0]
    buffer = io.BytesIO()
    Image.open(source).convert("L").save(buffer, format="PNG")
    data = buffer.getvalue()
    first = study.series.get().ordered_slices()[0]
    first.file.save(first.original_filename, ContentFile(data), save=False)
    first.sha256 = hashlib.sha256(data).hexdigest()
    first.columns, first.rows = Image.open(source).size
    first.save()
    return study


class TestHappyPath:
    def test_upload_to_prediction_in_process(self, django_capture_on_commit_callbacks, no_explanations, shared_data):
        study = _with_a_real_brain_slice(new_study(n_slices=3), shared_data)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            jobs = classification.start_processing(study)
        assert len(jobs) == 1 and len(callbacks) == 1  # enqueued only on commit
        job = classify_job(study)
        assert job.state == JobState.DONE and job.attempts == 1 and job.error == ""
        assert job.started_at and job.finished_at and job.finished_at >= job.started_at
        prediction = Prediction.objects.get(series__study=study)
        assert prediction.runtime_ms and prediction.runtime_ms > 0
        slice_results = list(prediction.slice_results.order_by("slice__order_index"))
        assert [sr.slice.order_index for sr in slice_results] == [0, 1, 2]
        assert set(slice_results[0].probabilities) == {"glioma", "meningioma", "notumor", "pituitary"}
        # the real brain slice is accepted and gets a heat map (a PNG); the synthetic ones get neither
        assert [sr.is_brain_mri for sr in slice_results] == [True, False, False]
        assert [bool(sr.heatmap) for sr in slice_results] == [True, False, False]
        with slice_results[0].heatmap.open("rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        study.refresh_from_db()
        assert study.status == StudyStatus.AWAITING_REVIEW
        assert no_explanations == [study.pk]

    def test_start_processing_skips_series_with_current_prediction_or_live_job(self, no_explanations):
        study = new_study()
        first = classification.start_processing(study)  # on_commit not run: job stays queued
        assert len(first) == 1
        assert classification.start_processing(study) == []  # a live job exists
        assert Job.objects.filter(series__study=study).count() == 1
        study.refresh_from_db()
        assert study.status == StudyStatus.PROCESSING

    def test_a_new_model_version_reclassifies_old_predictions_only(self, monkeypatch):
        study = make_study(make_patient(), status=StudyStatus.AWAITING_REVIEW)  # predicted by "test-1"
        monkeypatch.setattr(predictor, "current_model_version", lambda: "test-1")
        assert classification.start_processing(study) == []
        monkeypatch.setattr(predictor, "current_model_version", lambda: "test-2")
        assert len(classification.start_processing(study)) == 1
        study.refresh_from_db()
        assert study.status == StudyStatus.PROCESSING

    def test_current_model_version_is_read_without_loading_the_model(self):
        from inference import predict

        loaded_before = dict(predict._CACHE)
        version = predictor.current_model_version()
        assert version and predict._CACHE == loaded_before
        assert version == predictor.get_predictor().model_version

    def test_second_run_of_finished_job_changes_nothing(self, no_explanations):
        study = new_study()
        job = classification.start_processing(study)[0]
        classification.run_classification(job.pk)
        done = Job.objects.get(pk=job.pk)
        prediction = Prediction.objects.get(series__study=study)
        again = classification.run_classification(job.pk)
        assert (again.state, again.attempts, again.finished_at) == (done.state, done.attempts, done.finished_at)
        assert Prediction.objects.filter(series__study=study).count() == 1
        assert Prediction.objects.get(series__study=study).pk == prediction.pk

    def test_new_job_for_series_already_predicted_stores_no_duplicate(self, no_explanations):
        study = new_study()
        classification.run_classification(classification.start_processing(study)[0].pk)
        series = study.series.get()
        n_slice_rows = SlicePrediction.objects.count()
        extra = Job.objects.create(kind=JobKind.CLASSIFY, study=study, series=series)
        assert classification.run_classification(extra.pk).state == JobState.DONE
        assert Prediction.objects.filter(series=series).count() == 1
        assert SlicePrediction.objects.count() == n_slice_rows

    def test_duplicate_store_keeps_one_prediction(self, no_explanations):
        """Two runs that both got past the check (a race) still store one prediction."""
        study = new_study()
        job = classification.start_processing(study)[0]
        series = study.series.get()
        slices = list(series.ordered_slices())
        from scans.imaging import slice_pixels

        result = predictor.get_predictor().predict_series([slice_pixels(s) for s in slices], heatmaps=True)
        a = classification.store_prediction(series, slices, result, 1.0)
        b = classification.store_prediction(series, slices, result, 2.0)
        assert a.pk == b.pk and Prediction.objects.filter(series=series).count() == 1
        assert SlicePrediction.objects.filter(prediction=a).count() == len(slices)


class TestClaim:
    def test_second_delivery_while_running_does_not_run(self, no_explanations):
        study = new_study()
        job = classification.start_processing(study)[0]
        _, first = jobs.claim(job.pk, JobKind.CLASSIFY, "task-a")
        _, second = jobs.claim(job.pk, JobKind.CLASSIFY, "task-b")
        assert first and not second
        assert Job.objects.get(pk=job.pk).attempts == 1

    def test_message_for_a_deleted_study_is_a_no_op(self, no_explanations):
        study = new_study()
        job = classification.start_processing(study)[0]
        study.delete()
        assert classification.run_classification(job.pk) is None
        assert tasks.classify_series.apply(args=[job.pk]).get() == "missing"

    def test_redelivery_of_same_message_counts_an_attempt_then_gives_up(self, no_explanations):
        """A message redelivered because its worker died (same task id) is run again, and
        each try counts: the fourth delivery of a poison input fails the job and the study."""
        study = new_study()
        job = classification.start_processing(study)[0]
        for attempt in (1, 2, 3):
            assert jobs.claim(job.pk, JobKind.CLASSIFY, "task-a")[1]
            assert Job.objects.get(pk=job.pk).attempts == attempt
        final = classification.run_classification(job.pk, task_id="task-a")
        assert final.state == JobState.FAILED and final.attempts == 3
        assert "Gave up after 3 attempts" in final.error
        study.refresh_from_db()
        assert study.status == StudyStatus.FAILED and study.status_detail
        assert not Prediction.objects.filter(series__study=study).exists()


class TestErrors:
    def test_bad_input_fails_at_once_with_its_message(self, monkeypatch, no_explanations):
        study = new_study()
        job = classification.start_processing(study)[0]

        def corrupt(slice_):
            raise CorruptFile(slice_.original_filename, "the pixel data cannot be decoded")

        monkeypatch.setattr("scans.imaging.slice_pixels", corrupt)
        result = classification.run_classification(job.pk)
        assert result.state == JobState.FAILED and result.attempts == 1
        assert "cannot be decoded" in result.error and "slice0.png" in result.error
        study.refresh_from_db()
        assert study.status == StudyStatus.FAILED
        assert "cannot be decoded" in study.status_detail
        assert not no_explanations

    def test_tampered_file_is_a_permanent_failure(self, no_explanations):
        """The real scans.imaging checks the SHA-256 recorded at import."""
        study = new_study()
        sl = study.series.get().ordered_slices()[0]
        with open(sl.file.path, "r+b") as fh:
            fh.seek(100)
            fh.write(b"\x00\x01\x02")
        job = classification.start_processing(study)[0]
        result = classification.run_classification(job.pk)
        assert result.state == JobState.FAILED and result.attempts == 1
        assert "integrity check" in result.error

    def test_transient_error_retries_with_backoff_then_fails(self, monkeypatch, no_explanations, settings):
        settings.JOB_MAX_ATTEMPTS = 3
        settings.JOB_RETRY_BACKOFF_SECONDS = 5
        study = new_study()
        job = classification.start_processing(study)[0]
        monkeypatch.setattr("scans.imaging.slice_pixels", lambda s: (_ for _ in ()).throw(TimeoutError("S3 read timed out")))
        countdowns = []
        for attempt in (1, 2):
            with pytest.raises(RetryLater) as info:
                classification.run_classification(job.pk)
            countdowns.append(info.value.countdown)
            current = Job.objects.get(pk=job.pk)
            assert current.state == JobState.QUEUED and current.attempts == attempt
            assert "timed out" in current.error
        assert countdowns == [5.0, 10.0]
        final = classification.run_classification(job.pk)
        assert final.state == JobState.FAILED and final.attempts == 3
        assert "Failed after 3 attempts" in final.error and "timed out" in final.error
        study.refresh_from_db()
        assert study.status == StudyStatus.FAILED

    def test_celery_task_retries_transient_error_and_recovers(self, monkeypatch, no_explanations):
        """Eager task as in the embedded default (`make run`: eager, errors not propagated):
        the first read fails (storage blip), Celery's retry runs it again and it succeeds."""
        from portal.celery import app
        from scans import imaging

        monkeypatch.setitem(app.conf, "task_eager_propagates", False)  # the test settings propagate

        real = imaging.slice_pixels
        calls = {"n": 0}

        def flaky(slice_):
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionResetError("storage connection reset")
            return real(slice_)

        monkeypatch.setattr("scans.imaging.slice_pixels", flaky)
        study = new_study(n_slices=1)
        job = classification.start_processing(study)[0]
        tasks.classify_series.apply(args=[job.pk])
        job.refresh_from_db()
        assert job.state == JobState.DONE and job.attempts == 2
        assert Prediction.objects.filter(series__study=study).count() == 1


class TestExplanation:
    def test_request_returns_the_live_job(self):
        study = new_study()
        job = explanations.request_explanation(study)
        assert job.kind == JobKind.EXPLAIN and job.state == JobState.QUEUED
        assert explanations.request_explanation(study).pk == job.pk
        assert explanations.request_explanation(study, regenerate=True).pk == job.pk

    def test_llm_timeout_retries_then_draft_done(self, monkeypatch):
        calls = []

        def draft(study):
            calls.append(study.pk)
            if len(calls) == 1:
                raise TimeoutError("LLM did not answer in 20 s")
            return SimpleNamespace(pk=1)

        monkeypatch.setattr(explanations, "draft_explanation", draft)
        study = new_study()
        job = explanations.request_explanation(study)
        with pytest.raises(RetryLater):
            explanations.run_explanation(job.pk)
        assert Job.objects.get(pk=job.pk).state == JobState.QUEUED
        assert explanations.run_explanation(job.pk).state == JobState.DONE
        assert calls == [study.pk, study.pk]


class TestSweeper:
    def test_requeues_stale_jobs_and_fails_exhausted_ones(
        self, settings, monkeypatch, no_explanations, django_capture_on_commit_callbacks
    ):
        settings.JOB_STALE_AFTER_SECONDS = 60
        sent = []
        monkeypatch.setattr(tasks.classify_series, "apply_async", lambda args, task_id: sent.append((args[0], task_id)))
        old = timezone.now() - timezone.timedelta(seconds=120)
        lost = classification.start_processing(new_study())[0]          # message lost with the broker
        dead = classification.start_processing(new_study())[0]          # its worker died mid-run
        spent = classification.start_processing(new_study())[0]         # died three times
        fresh = classification.start_processing(new_study())[0]         # just queued: left alone
        Job.objects.filter(pk=dead.pk).update(state=JobState.RUNNING, attempts=1, celery_task_id="old")
        Job.objects.filter(pk=spent.pk).update(state=JobState.RUNNING, attempts=3)
        Job.objects.filter(pk__in=[lost.pk, dead.pk, spent.pk]).update(updated_at=old)
        sent.clear()

        with django_capture_on_commit_callbacks(execute=True):
            assert sweeper.sweep_stale_jobs() == 2
        assert sorted(job_id for job_id, _ in sent) == sorted([lost.pk, dead.pk])
        dead.refresh_from_db()
        assert dead.state == JobState.QUEUED and dead.celery_task_id not in ("", "old")
        assert (dead.pk, dead.celery_task_id) in sent
        spent.refresh_from_db()
        assert spent.state == JobState.FAILED and "Gave up after 3 attempts" in spent.error
        assert Job.objects.get(pk=fresh.pk).state == JobState.QUEUED
        assert sweeper.sweep_stale_jobs() == 0  # the requeued ones are fresh again

    def test_swept_job_completes(self, settings, no_explanations, django_capture_on_commit_callbacks):
        settings.JOB_STALE_AFTER_SECONDS = 60
        study = new_study(n_slices=1)
        job = classification.start_processing(study)[0]
        Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timezone.timedelta(seconds=120))
        with django_capture_on_commit_callbacks(execute=True):
            assert sweeper.sweep_stale_jobs() == 1
        assert Job.objects.get(pk=job.pk).state == JobState.DONE
        assert Prediction.objects.filter(series__study=study).count() == 1


class TestProgressView:
    def test_progress_is_json_and_follows_the_job(self, no_explanations):
        study = new_study()
        job = classification.start_processing(study)[0]
        before = progress.study_progress(study)
        json.dumps(before)
        assert before["status"] == StudyStatus.PROCESSING and not before["terminal"]
        assert before["progress"] == {"total": 1, "done": 0, "failed": 0}
        assert before["summary"] == "0 of 1 series classified"
        assert before["jobs"][0]["state"] == JobState.QUEUED
        classification.run_classification(job.pk)
        after = progress.study_progress(study)
        assert after["terminal"] and after["progress"]["done"] == 1
        assert after["jobs"][0]["state"] == JobState.DONE and after["jobs"][0]["run_seconds"] is not None

    def test_view_access(self, client, radiologist, patient_alice, patient_bob, no_explanations):
        from scans.models import Patient

        study = make_study(Patient.objects.get(user=patient_alice), status=StudyStatus.RECEIVED, label=None)
        classification.start_processing(study)
        url = reverse("uploads:study_status", args=[study.pk])
        assert url.endswith(f"/uploads/studies/{study.pk}/status.json")
        assert client.get(url).status_code == 302  # anonymous → login
        client.force_login(radiologist)
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        assert response.json()["jobs"][0]["kind"] == JobKind.CLASSIFY
        assert client.get(reverse("uploads:study_status", args=[999999])).status_code == 404
        client.logout()
        for user in (patient_alice, patient_bob):  # unreleased / not theirs
            client.force_login(user)
            assert client.get(url).status_code == 404
            client.logout()
