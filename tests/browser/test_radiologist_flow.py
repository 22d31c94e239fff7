"""The radiologist's path in headless Chromium: worklist → study → scroll slices (wheel and
keys) → heat map → override with a reason → sign off; then the patient sees the signed
report with the radiologist's class, not the AI's."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from scans.models import Review, SlicePrediction, StudyStatus
from tests.browser.conftest import log_in
from tests.browser.fixtures import wait_js as _wait_js
from tests.factories import make_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT_DIR = os.environ.get("RADIOLOGY_SCREENSHOT_DIR")


def _heatmap_png(size: int = 64) -> bytes:
    """An RGBA Grad-CAM style overlay (hot spot off-centre), made by the ML code's own encoder."""
    from inference.gradcam import heatmap_to_png

    yy, xx = np.mgrid[0:size, 0:size]
    hm = np.exp(-(((yy - size * 0.4) ** 2 + (xx - size * 0.6) ** 2) / (2 * (size / 8) ** 2))).astype(np.float32)
    return heatmap_to_png(hm)


def _study_with_heatmaps(patient_record):
    study = make_study(patient_record, n_slices=6, label="glioma", confidence=0.91, description="MR brain with contrast")
    for sp in SlicePrediction.objects.filter(slice__series__study=study):
        sp.heatmap.save(f"hm{sp.slice_id}.png", ContentFile(_heatmap_png()), save=True)
    return study


def _slice_index(page) -> int:
    return int(page.get_by_test_id("slice-index").inner_text())


def test_radiologist_overrides_and_signs_patient_sees_final_class(page, radiologist, patient_alice):
    study = _study_with_heatmaps(patient_alice.patient_record)

    log_in(page, radiologist.email)
    page.goto("/radiology/")
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOT_DIR}/worklist-1280x800.png")
    row = page.locator(f'[data-testid=worklist-row][data-study-id="{study.pk}"]')
    row.get_by_test_id("open-study").click()
    page.wait_for_url(f"**/radiology/studies/{study.pk}/")
    page.wait_for_selector("#viewer[data-ready=true]")
    assert page.get_by_test_id("ai-class").inner_text() == "Glioma"
    image = page.get_by_test_id("slice-image")
    _wait_js(page, "document.getElementById('slice-image').naturalWidth > 0")
    assert _slice_index(page) == 1

    # Mouse wheel over the image moves one slice per notch.
    page.get_by_test_id("viewer").locator("#viewport").hover()
    page.mouse.wheel(0, 100)
    _wait_js(page, "document.getElementById('slice-index').textContent === '2'")
    page.mouse.wheel(0, 100)
    _wait_js(page, "document.getElementById('slice-index').textContent === '3'")
    assert "/scans/slices/" in image.get_attribute("src")

    # Keyboard: focus the viewport, arrows and Page Up / End / Home.
    page.locator("#viewport").focus()
    page.keyboard.press("ArrowDown")
    assert _slice_index(page) == 4
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert _slice_index(page) == 2
    page.keyboard.press("End")
    assert _slice_index(page) == 6
    page.keyboard.press("PageUp")
    assert _slice_index(page) == 1
    # One click to the key slice (the middle one: index 3 → "4").
    page.get_by_test_id("jump-key").click()
    assert _slice_index(page) == 4
    _wait_js(page, "document.getElementById('slice-image').complete && document.getElementById('slice-image').naturalWidth > 0")

    # Window preset asks the server for a new rendering.
    page.get_by_role("button", name="Brain").click()
    _wait_js(page, "document.getElementById('slice-image').getAttribute('src').includes('ww=')")
    _wait_js(page, "document.getElementById('slice-image').naturalWidth > 0")
    assert page.locator("#viewer-error").inner_text() == ""

    # Heat map overlay.
    overlay = page.get_by_test_id("heatmap-overlay")
    assert not overlay.is_visible()
    page.get_by_test_id("overlay-toggle").click()
    overlay.wait_for(state="visible")
    assert page.get_by_test_id("overlay-toggle").get_attribute("aria-pressed") == "true"
    _wait_js(page, "document.getElementById('heatmap-overlay').naturalWidth > 0")
    page.get_by_test_id("overlay-opacity").fill("80")
    assert page.eval_on_selector("#heatmap-overlay", "el => getComputedStyle(el).opacity") == "0.8"

    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOT_DIR}/study-1280x800.png", full_page=False)
        page.screenshot(path=f"{SCREENSHOT_DIR}/study-1280-full.png", full_page=True)
        page.set_viewport_size({"width": 800, "height": 1100})
        page.screenshot(path=f"{SCREENSHOT_DIR}/study-800x1100.png", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})

    _wait_js(page, "document.getElementById('viewer').dataset.loading === '0'")

    # Override without a reason is refused with a visible error; then with a reason.
    page.get_by_test_id("decision-override").check()
    page.get_by_test_id("final-class-select").select_option("meningioma")
    page.get_by_test_id("sign-off").click()
    page.wait_for_load_state("networkidle")
    assert "needs a reason" in page.locator("#signoff-error").inner_text()
    assert not Review.objects.exists()
    page.get_by_test_id("override-reason").fill("Extra-axial mass with a dural tail: meningioma.")
    page.get_by_test_id("final-class-select").select_option("meningioma")
    page.get_by_test_id("sign-off").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("final-class").inner_text() == "Meningioma"
    review = Review.objects.get(study=study)
    assert (review.decision, review.final_class, review.version) == ("override", "meningioma", 1)
    study.refresh_from_db()
    assert study.status == StudyStatus.SIGNED
    if SCREENSHOT_DIR:
        page.screenshot(path=f"{SCREENSHOT_DIR}/study-signed.png", full_page=True)
        page.goto(reverse("radiology:patient_history", args=[study.patient_id]))
        page.screenshot(path=f"{SCREENSHOT_DIR}/history.png", full_page=True)

    # The patient logs in and sees the radiologist's class, not the AI's.
    page.get_by_role("button", name="Log out").click()
    log_in(page, patient_alice.email)
    page.goto(reverse("patient:report", args=[study.pk]))
    body = page.locator("main").inner_text()
    assert "Meningioma" in body or "meningioma" in body
    assert "Glioma" not in body and "glioma" not in body
    if SCREENSHOT_DIR:
        page.screenshot(path=f"{SCREENSHOT_DIR}/patient-report.png", full_page=True)


def test_window_level_drag_zoom_and_tablet_layout(page, radiologist, patient_alice):
    study = _study_with_heatmaps(patient_alice.patient_record)
    log_in(page, radiologist.email)
    page.goto(reverse("radiology:study", args=[study.pk]))
    page.wait_for_selector("#viewer[data-ready=true]")
    _wait_js(page, "document.getElementById('slice-image').naturalWidth > 0")
    assert "default" in page.locator("#window-readout").inner_text()

    # Drag right and up: wider window, higher level; the server renders the new window.
    box = page.locator("#viewport").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y - 40, steps=6)
    page.mouse.up()
    readout = page.locator("#window-readout").inner_text()
    width, level = (int(part.split()[-1]) for part in readout.split("/"))
    assert width > 255 and level > 128, readout
    _wait_js(page, "document.getElementById('slice-image').getAttribute('src').includes('wc=')")
    assert page.get_by_role("button", name="Default").get_attribute("aria-pressed") == "false"

    # Zoom with the buttons and the keyboard.
    page.get_by_role("button", name="Zoom in").click()
    assert page.locator("#zoom-readout").inner_text() == "125%"
    page.locator("#viewport").focus()
    page.keyboard.press("+")
    assert page.locator("#zoom-readout").inner_text() == "150%"
    page.keyboard.press("0")
    assert page.locator("#zoom-readout").inner_text() == "100%"
    # H toggles the heat map from the keyboard.
    page.keyboard.press("h")
    assert page.get_by_test_id("heatmap-overlay").is_visible()

    # Tablet width: one column, the viewer first and nearly full width, review panel below.
    page.set_viewport_size({"width": 800, "height": 1100})
    viewport_box = page.locator("#viewport").bounding_box()
    panel_box = page.locator(".review-panel").bounding_box()
    assert viewport_box["width"] > 650
    assert panel_box["y"] > viewport_box["y"] + viewport_box["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 800  # no sideways scrolling


def test_amendment_in_the_browser_patient_sees_amended(page, radiologist, patient_alice):
    from portal.workflow.review import sign_off

    study = _study_with_heatmaps(patient_alice.patient_record)
    sign_off(study, user=radiologist, decision="confirm")
    log_in(page, radiologist.email)
    page.goto(reverse("radiology:study", args=[study.pk]))
    page.wait_for_selector("#viewer[data-ready=true]")
    _wait_js(page, "document.getElementById('viewer').dataset.loading === '0'")
    page.locator("[data-testid=amend-details] summary").click()
    # The report was confirmed, so the amendment starts from "confirm"; changing the class is an override.
    assert page.get_by_test_id("amend-confirm").is_checked()
    page.get_by_test_id("amend-override").check()
    page.get_by_test_id("amend-class").select_option("pituitary")
    page.get_by_test_id("amend-reason").fill("Sellar origin on the coronal images.")
    page.get_by_test_id("amend-submit").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("final-class").inner_text() == "Pituitary tumour"
    assert page.get_by_test_id("versions").locator("li").count() == 2
    study.refresh_from_db()
    assert study.status == StudyStatus.AMENDED

    page.get_by_role("button", name="Log out").click()
    log_in(page, patient_alice.email)
    page.goto(reverse("patient:report", args=[study.pk]))
    body = page.locator("main").inner_text()
    assert "ituitary" in body and "mended" in body
    assert "Glioma" not in body
