"""Browser fixtures, registered once for the whole suite from tests/conftest.py (a second
sync_playwright() in the same thread would fail). Headless Chromium (Debian's package at /usr/bin/chromium) driven by Playwright against
Django's live server. Playwright never downloads a browser here."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import TEST_PASSWORD, skip_or_fail

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Without these flags Chromium tries to reach Google's services at start-up, and this
# network refuses every such connection.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


# Playwright's sync API runs an event loop in this thread; Django's async-safety check
# would otherwise refuse the ORM calls the tests make between page actions.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page, email: str, password: str = TEST_PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def wait_js(page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from Python: page.wait_for_function evaluates strings in the page,
    which the portal's CSP (no 'unsafe-eval') forbids."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


# `PORTAL_SCREENSHOTS=docs/screenshots make test PYTEST_ARGS="-m browser"` refreshes the
# screenshots in the docs (docs/screenshots/README.md); without it nothing is written.
SCREENSHOT_DIR = os.environ.get("PORTAL_SCREENSHOTS", "")
SCREENSHOT_WIDTH = 960
SCREENSHOT_PIXELS = 850_000  # keeps each JPEG under ~100 KB


def screenshot(page, name: str, *, full_page: bool = False) -> None:
    """A small JPEG of the page (downscaled to SCREENSHOT_WIDTH) when PORTAL_SCREENSHOTS is set."""
    if not SCREENSHOT_DIR:
        return
    import io

    from PIL import Image

    raw = page.screenshot(full_page=full_page, type="png")
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    # At most SCREENSHOT_WIDTH wide and SCREENSHOT_PIXELS in all (long full-page shots shrink more).
    scale = min(1.0, SCREENSHOT_WIDTH / image.width, (SCREENSHOT_PIXELS / (image.width * image.height)) ** 0.5)
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
    image.save(Path(SCREENSHOT_DIR) / f"{name}.jpg", "JPEG", quality=62, optimize=True, progressive=True)


@pytest.fixture
def demo_studies(radiologist, patient_alice):
    """The seed_demo studies (generated images: fast, and no ../shared needed) for Alice,
    signed by the named radiologist: [prior signed, current awaiting review, CT out of scope]."""
    from portal.demo import seed_studies

    return seed_studies(patient_alice.patient_record, radiologist, lambda line: None, shared=None)
