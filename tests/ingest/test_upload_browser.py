"""The upload page in headless Chromium: XHR upload with a progress bar, then the study page
with live status; a bad file shows an error naming it. No CSP violations."""
from __future__ import annotations

import pytest

from scans.models import Patient, Slice, Study
from tests.browser.fixtures import log_in
from tests.ingest import builders as b

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _watch_csp(pg) -> list[str]:
    violations: list[str] = []
    pg.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def test_staff_upload_with_progress_then_live_status(page, radiologist, tmp_path, media, monkeypatch):  # noqa: F811
    monkeypatch.setattr("portal.workflow.ingest.start_processing", lambda study: [])
    patient = Patient.objects.create(mrn="MRN-TEST", full_name="Una Upload")
    paths = []
    for name, data in b.series_files(4):
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(str(path))
    violations = _watch_csp(page)
    log_in(page, radiologist.email)
    page.get_by_role("link", name="Upload scans").click()
    page.select_option("#id_patient", str(patient.pk))
    page.set_input_files("#id_files", paths)
    # Record every value the progress bar takes while the XHR runs (in sessionStorage, which
    # survives the navigation to the study page that follows).
    page.evaluate(
        """() => { const bar = document.querySelector('[data-upload-bar]'); const seen = [];
        new MutationObserver(() => { seen.push([bar.value, bar.max]);
          sessionStorage.setItem('progress', JSON.stringify(seen)); }).observe(bar, {attributes: true}); }"""
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/uploads/studies/*/")
    progress = page.evaluate("() => JSON.parse(sessionStorage.getItem('progress') || '[]')")
    assert progress, "the progress bar never moved"
    value, maximum = progress[-1]
    assert maximum > 4 * 2000 and value == maximum  # bytes of the request body, all sent
    study = Study.objects.get()
    assert page.url.endswith(f"/uploads/studies/{study.pk}/")
    assert Slice.objects.filter(series__study=study).count() == 4
    live = page.get_by_test_id("live-status")
    assert live.get_attribute("data-live-status-url") == f"/uploads/studies/{study.pk}/status.json"
    page.wait_for_function("() => [...document.querySelectorAll('.thumbs img')].every(i => i.complete && i.naturalWidth > 0)")
    assert violations == []


def test_bad_file_error_is_shown(page, radiologist, tmp_path, media):  # noqa: F811
    patient = Patient.objects.create(mrn="MRN-TEST")
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"%PDF-1.7 not an image")
    violations = _watch_csp(page)
    log_in(page, radiologist.email)
    page.goto("/uploads/")
    page.select_option("#id_patient", str(patient.pk))
    page.set_input_files("#id_files", str(bad))
    page.get_by_role("button", name="Upload").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="scan.png").wait_for()
    assert "PDF document" in alert.inner_text()
    assert Study.objects.count() == 0
    assert violations == []
