"""The uploaded-study page follows its jobs live (static/js/live-status.js polling
uploads:study_status), with no reload: queued → running → done, study → awaiting review, and
the series' AI result replaced in place (static/js/refresh-when-done.js)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from portal.workflow import classification
from scans.jobs import JobKind, JobState
from scans.models import Job, StudyStatus
from tests.browser.fixtures import log_in, wait_js
from tests.factories import make_patient, make_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_status_moves_on_the_page_without_reload(page, radiologist, monkeypatch):  # noqa: F811
    monkeypatch.setattr(classification, "request_explanation", lambda study, **kw: None)
    study = make_study(make_patient(), status=StudyStatus.RECEIVED, n_slices=1, label=None)
    job = Job.objects.create(kind=JobKind.CLASSIFY, study=study, series=study.series.get())
    study.transition_to(StudyStatus.PROCESSING)

    log_in(page, radiologist.email)
    page.goto(reverse("uploads:study", args=[study.pk]))
    live = page.get_by_test_id("live-status")
    assert live.get_attribute("aria-live") == "polite"
    item = live.locator(f'[data-job-id="{job.pk}"]')
    item.wait_for()
    assert item.get_attribute("data-job-state") == "queued"
    page.evaluate("window.__sameDocument = true")

    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING)
    page.wait_for_selector(f'[data-job-id="{job.pk}"][data-job-state="running"]')
    assert page.evaluate("window.__sameDocument") is True  # updated in place while it runs

    Job.objects.filter(pk=job.pk).update(state=JobState.QUEUED)
    assert classification.run_classification(job.pk).state == JobState.DONE
    page.wait_for_selector(f'[data-job-id="{job.pk}"][data-job-state="done"]')
    status = live.locator('[data-live-status-field="status"]')
    assert status.inner_text() == "Awaiting review"
    assert live.locator("progress").evaluate("p => [p.value, p.max]") == [1, 1]
    assert "1 of 1" in live.locator('[data-live-status-field="summary"]').inner_text()
    # The series' AI result is fetched again and replaced in place once processing is done.
    ai_result = page.get_by_test_id("series-ai-result")
    wait_js(page, "!document.querySelector('[data-testid=series-ai-result]').textContent.includes('not yet')")
    assert "AI result" in ai_result.inner_text()
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
