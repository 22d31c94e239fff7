"""Each role logs in through a real browser and lands on its own home page."""
import pytest

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_radiologist_logs_in_to_worklist(page, radiologist):
    log_in(page, radiologist.email)
    assert page.url.endswith("/radiology/")
    assert page.get_by_test_id("current-user").inner_text().startswith(radiologist.email)


def test_wrong_password_shows_error(page, radiologist):
    log_in(page, radiologist.email, "not-the-password")
    assert "/accounts/login/" in page.url
    assert page.locator("[role=alert]").is_visible()
