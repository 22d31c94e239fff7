"""A newcomer's portal in headless Chromium: the demo after seed_demo for each role, the
patient report with the radiologist's words, the confirmation before Deactivate, the patient
pages at phone width, and an axe-core accessibility pass over the main pages.

With PORTAL_SCREENSHOTS=docs/screenshots these tests also refresh the screenshots in the docs.
"""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import User
from portal.demo import PRIOR_NOTE, PRIOR_REPORT
from portal.management.commands.seed_demo import DEMO_PASSWORD
from tests.browser.conftest import log_in
from tests.browser.fixtures import screenshot, wait_js

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 740}


def _log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state("networkidle")


def test_demo_after_seed_demo_every_screen_has_content(page):
    call_command("seed_demo", stdout=open("/dev/null", "w"))

    # The radiologist: a worklist with studies, the viewer on the study awaiting review.
    log_in(page, "radiologist@example.org", DEMO_PASSWORD)
    page.goto(reverse("radiology:worklist") + "?status=all")
    rows = page.get_by_test_id("worklist-row")
    assert rows.count() == 3
    screenshot(page, "worklist")
    page.goto(reverse("radiology:worklist"))
    assert page.get_by_test_id("worklist-row").count() == 2  # awaiting review: the MRI and the CT
    page.get_by_test_id("worklist-row").filter(has_text="MR brain with contrast").get_by_test_id("open-study").click()
    page.wait_for_selector("#viewer[data-ready=true]")
    wait_js(page, "document.getElementById('slice-image').naturalWidth > 0")
    assert page.get_by_test_id("ai-class").inner_text() in ("Glioma", "Meningioma", "Pituitary tumour", "No tumour")
    assert page.get_by_test_id("series-thumb").count() == 2
    assert page.get_by_test_id("compare-toggle").is_visible()
    wait_js(page, "document.getElementById('viewer').dataset.loading === '0'")
    screenshot(page, "study-viewer")
    page.goto(reverse("radiology:worklist"))
    page.get_by_test_id("worklist-row").filter(has_text="CT chest").get_by_test_id("open-study").click()
    page.wait_for_selector("#viewer[data-ready=true]")
    assert page.get_by_test_id("ai-class").inner_text() == "No AI class"  # out of scope
    wait_js(page, "document.getElementById('slice-image').naturalWidth > 0")
    screenshot(page, "study-out-of-scope")
    _log_out(page)

    # The patient: the signed report, with the radiologist's words, name and what was scanned.
    log_in(page, "patient@example.org", DEMO_PASSWORD)
    assert page.get_by_test_id("report-list").locator("li").count() == 1
    screenshot(page, "patient-reports")
    page.get_by_test_id("report-title").locator("a").click()
    page.wait_for_load_state("networkidle")
    main = page.locator("main").inner_text()
    assert page.get_by_test_id("final-class").inner_text() == "No tumour"
    assert PRIOR_REPORT in " ".join(page.get_by_test_id("radiologist-report").inner_text().split())
    assert "Dr Rita Radiologist" in page.get_by_test_id("signed-by").inner_text()
    assert PRIOR_NOTE in " ".join(page.get_by_test_id("patient-notes").inner_text().split())
    scanned = page.get_by_test_id("what-was-scanned").inner_text()
    assert "MRI" in scanned and "Brain" in scanned
    assert "glioma" not in main.lower()
    wait_js(page, "document.querySelector('[data-testid=key-slice]').naturalWidth > 0")
    screenshot(page, "patient-report", full_page=True)
    with page.expect_download() as download:
        page.get_by_test_id("download-pdf").click()
    with open(download.value.path(), "rb") as fh:
        assert fh.read(5) == b"%PDF-"
    page.get_by_role("link", name="See your history").first.click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("timeline").locator("li").count() == 2
    screenshot(page, "patient-history")
    _log_out(page)

    # The administrator: accounts, patient records, the audit trail of all of the above.
    log_in(page, "admin@example.org", DEMO_PASSWORD)
    assert page.url.endswith(reverse("accounts:admin_home"))
    screenshot(page, "admin-home")
    page.goto(reverse("accounts:audit_log") + "?action=review")
    assert "review.sign_off" in page.locator("main").inner_text()
    screenshot(page, "audit-log")
    page.goto(reverse("uploads:upload"))
    screenshot(page, "upload")


def test_deactivate_asks_first_and_cancel_keeps_the_account(page, administrator, radiologist):
    log_in(page, administrator.email)
    page.goto(reverse("accounts:user_detail", args=[radiologist.pk]))
    questions: list[str] = []

    def answer(accept: bool):
        def handler(dialog) -> None:
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
        return handler

    page.once("dialog", answer(False))
    page.get_by_role("button", name="Deactivate").click()
    page.wait_for_timeout(300)
    assert questions and radiologist.email in questions[0]
    assert User.objects.get(pk=radiologist.pk).is_active  # cancelled: nothing happened
    screenshot(page, "admin-user")

    page.once("dialog", answer(True))
    page.get_by_role("button", name="Deactivate").click()
    page.wait_for_load_state("networkidle")
    assert len(questions) == 2
    assert page.get_by_test_id("user-status").inner_text() == "Deactivated"
    assert not User.objects.get(pk=radiologist.pk).is_active


def _fits_phone(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px at phone width"


def test_patient_pages_fit_a_phone(browser, live_server, patient_alice, demo_studies):
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        log_in(page, patient_alice.email)
        _fits_phone(page)
        page.get_by_test_id("report-title").locator("a").click()
        page.wait_for_load_state("networkidle")
        _fits_phone(page)
        for testid in ("final-class", "what-was-scanned", "download-pdf"):
            box = page.get_by_test_id(testid).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], testid
        wait_js(page, "document.querySelector('[data-testid=key-slice]').naturalWidth > 0")
        screenshot(page, "patient-report-phone")
        page.goto(reverse("patient:history"))
        _fits_phone(page)
    finally:
        context.close()


# Every main page, as the role that uses it. Serious and critical axe violations fail.
A11Y_PAGES = [
    ("anonymous", "accounts:login", None),
    ("radiologist", "radiology:worklist", None),
    ("radiologist", "radiology:study", "current"),
    ("radiologist", "radiology:patient_history", "patient"),
    ("radiologist", "uploads:upload", None),
    ("patient", "patient:home", None),
    ("patient", "patient:report", "prior"),
    ("patient", "patient:history", None),
    ("administrator", "accounts:admin_home", None),
    ("administrator", "accounts:audit_log", None),
    ("administrator", "administration:patients", None),
]


def test_main_pages_have_no_serious_accessibility_violations(browser, live_server, radiologist, administrator,
                                                            patient_alice, demo_studies):
    from axe_playwright_python.sync_playwright import Axe

    prior, current, _ = demo_studies
    args = {"current": [current.pk], "prior": [prior.pk], "patient": [prior.patient_id], None: []}
    users = {"radiologist": radiologist, "administrator": administrator, "patient": patient_alice}
    axe = Axe()
    # axe is injected with page.evaluate; bypass_csp lets its engine run under the portal's CSP.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    try:
        current_role = None
        for role, name, arg in A11Y_PAGES:
            if role != current_role:
                context.clear_cookies()
                if role != "anonymous":
                    log_in(page, users[role].email)
                current_role = role
            page.goto(reverse(name, args=args[arg]))
            page.wait_for_load_state("networkidle")
            results = axe.run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
            assert len(results.response["passes"]) > 10, f"axe checked next to nothing on {name}"
            for violation in results.response["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    targets = [n["target"] for n in violation["nodes"]][:3]
                    problems.append(f"{name}: {violation['id']} ({violation['impact']}) {violation['help']} at {targets}")
    finally:
        context.close()
    assert problems == [], "\n".join(problems)
