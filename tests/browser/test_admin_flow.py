"""An administrator creates a patient account linked to a patient record in the browser;
the patient uses the set-password link from the e-mail and logs in for the first time."""
import re

import pytest

from accounts.models import AuditEvent, User
from scans.models import Patient
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PATIENT_PASSWORD = "lantern-quarry-velvet-88"


def _watch_csp(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def test_admin_creates_patient_account_and_patient_logs_in(page, administrator, mailoutbox, live_server):
    violations = _watch_csp(page)
    record = Patient.objects.create(mrn="MRN-BROWSER-1", full_name="Brenda Browser")

    log_in(page, administrator.email)
    assert page.url.endswith("/accounts/admin/")
    page.get_by_role("link", name="New patient account").first.click()
    page.fill("#id_email", "brenda@example.org")
    page.fill("#id_full_name", "Brenda Browser")
    page.select_option("#id_existing_record", str(record.pk))
    page.get_by_role("button", name="Create and link").click()
    page.wait_for_load_state("networkidle")

    assert page.get_by_test_id("linked-account").inner_text().startswith("brenda@example.org")
    record.refresh_from_db()
    assert record.user is not None and record.user.email == "brenda@example.org"
    assert AuditEvent.objects.filter(action="admin.patient.link", actor=administrator, patient_id=record.pk).exists()

    # The administrator logs out; the patient opens the link from the e-mail.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state("networkidle")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["brenda@example.org"]
    link = re.search(r"https?://\S+/accounts/set-password/\S+/", mailoutbox[0].body).group(0)
    page.goto(link)
    page.fill("#id_new_password1", PATIENT_PASSWORD)
    page.fill("#id_new_password2", PATIENT_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    page.wait_for_load_state("networkidle")
    assert "/accounts/login/" in page.url
    assert page.get_by_role("status").inner_text().strip().startswith("Your password is set")

    log_in(page, "brenda@example.org", PATIENT_PASSWORD)
    assert page.url.endswith("/patient/")
    assert page.get_by_test_id("current-user").inner_text().startswith("brenda@example.org")
    assert User.objects.get(email="brenda@example.org").last_login is not None
    # The link was for one use only.
    page.goto(link)
    assert page.locator("[role=alert]").inner_text().startswith("This link is invalid")
    assert violations == [], violations


def test_admin_pages_and_api_docs_render_under_the_csp(page, administrator):
    violations = _watch_csp(page)
    log_in(page, administrator.email)
    for path in ("/accounts/admin/", "/accounts/admin/users/new/", "/accounts/admin/audit/", "/administration/patients/",
                 "/administration/patients/new-account/"):
        page.goto(path)
        assert page.locator("h1").count() == 1, path
    page.goto("/api/docs/")
    # Swagger UI is built by the self-hosted scripts: operations appear without any CDN.
    page.wait_for_selector(".opblock-summary", timeout=15_000)
    assert page.locator(".opblock-summary").count() >= 8
    assert violations == [], violations
