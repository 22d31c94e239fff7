"""A patient's path through a real browser: log in, see the signed report list, open the
report (final class, explanation, key slice image loaded), download the PDF, open history."""
import pytest

from scans.models import Patient
from tests.browser.conftest import log_in
from tests.factories import make_study
from tests.patient.builders import sign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_patient_reads_signed_report_downloads_pdf_and_opens_history(page, patient_alice, radiologist):
    patient = Patient.objects.get(user=patient_alice)
    study = make_study(patient, label="glioma", confidence=0.96)
    sign(study, radiologist, final_class="meningioma", decision="override", reason="Dural based")
    unsigned = make_study(patient, label="pituitary")

    log_in(page, patient_alice.email)
    assert page.url.endswith("/patient/")
    report_list = page.get_by_test_id("report-list")
    assert report_list.is_visible()
    assert report_list.locator("li").count() == 1  # the unsigned study is not listed
    assert f"/patient/reports/{unsigned.pk}/" not in page.content()
    assert report_list.get_by_test_id("final-class").inner_text() == "Meningioma"

    report_list.locator("a").first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/patient/reports/{study.pk}/")
    assert page.get_by_test_id("final-class").inner_text() == "Meningioma"
    explanation = page.get_by_test_id("explanation")
    assert explanation.is_visible()
    assert "Your scan shows a meningioma." in explanation.inner_text()
    assert "What to ask your doctor" in explanation.inner_text()
    assert "glioma" not in page.locator("main").inner_text().lower()  # never the raw AI class

    image = page.get_by_test_id("key-slice")
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => img.naturalWidth") > 0

    with page.expect_download() as download_info:
        page.get_by_test_id("download-pdf").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    with open(download.path(), "rb") as fh:
        assert fh.read(5) == b"%PDF-"

    page.get_by_role("link", name="See your history").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/patient/history/")
    timeline = page.get_by_test_id("timeline")
    assert "Finding: Meningioma" in timeline.inner_text()
    assert timeline.locator("li").count() == 2  # the scan and the signed report
