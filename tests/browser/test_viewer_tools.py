"""The viewer's working tools in headless Chromium, on the seed_demo studies: series
thumbnails and switching, pan, zoom about the pointer, invert, the DICOM tag panel,
side-by-side comparison with the previous study, cine play and the keyboard focus ring."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import log_in
from tests.browser.fixtures import screenshot, wait_js

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open(page, study, query: str = "") -> None:
    page.goto(reverse("radiology:study", args=[study.pk]) + query)
    page.wait_for_selector("#viewer[data-ready=true]")
    wait_js(page, "document.getElementById('slice-image').naturalWidth > 0")


def _view(page) -> tuple[float, float, float]:
    zoom = float(page.get_by_test_id("viewer").get_attribute("data-zoom"))
    tx, ty = (float(v) for v in page.get_by_test_id("viewer").get_attribute("data-pan").split(","))
    return zoom, tx, ty


def _index(page) -> int:
    return int(page.get_by_test_id("slice-index").inner_text())


def test_series_switching_pan_zoom_invert_and_focus(page, radiologist, demo_studies):
    current = demo_studies[1]
    first, second = current.series.order_by("series_number")
    log_in(page, radiologist.email)
    _open(page, current)

    # Thumbnails of both series; the first is current. Clicking the second switches to it.
    thumbs = page.get_by_test_id("series-thumb")
    assert thumbs.count() == 2
    assert thumbs.nth(0).get_attribute("aria-current") == "true"
    wait_js(page, "[...document.querySelectorAll('[data-testid=series-thumb] img')].every(i => i.naturalWidth > 0)")
    thumbs.nth(1).click()
    page.wait_for_url(f"**?series={second.pk}*")
    page.wait_for_selector("#viewer[data-ready=true]")
    assert page.get_by_test_id("series-thumb").nth(1).get_attribute("aria-current") == "true"
    assert page.get_by_test_id("slice-slider").get_attribute("max") == str(second.slices.count())
    first_image = reverse("scans:slice_image", args=[first.ordered_slices().first().pk])
    assert first_image not in page.content()

    # The "Key slice" badge shows on the key slice only.
    marker = page.locator("#slice-key-marker")
    key = int(page.get_by_test_id("jump-key").get_attribute("data-index")) + 1
    page.locator("#viewport").focus()
    page.keyboard.press("Home")
    assert _index(page) == 1 and (key == 1) == marker.is_visible()
    page.get_by_test_id("jump-key").click()
    assert _index(page) == key and marker.is_visible()
    page.keyboard.press("ArrowDown" if key == 1 else "ArrowUp")
    assert not marker.is_visible()
    page.keyboard.press("Home")

    # Zoom in about the centre, then pan with the Pan tool: the image moves, W/L does not.
    page.get_by_role("button", name="Zoom in").click()
    assert page.locator("#zoom-readout").inner_text() == "125%"
    readout = page.locator("#window-readout").inner_text()
    page.get_by_test_id("pan-tool").click()
    box = page.locator("#viewport").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _, tx0, ty0 = _view(page)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 50, cy + 30, steps=5)
    page.mouse.up()
    _, tx1, ty1 = _view(page)
    assert (round(tx1 - tx0), round(ty1 - ty0)) == (50, 30)
    assert page.locator("#window-readout").inner_text() == readout
    assert "translate(" in page.get_by_test_id("stack").get_attribute("style")
    page.get_by_test_id("pan-tool").click()

    # Ctrl + wheel zooms about the pointer: the image point under it stays put.
    px, py = box["width"] * 0.25, box["height"] * 0.3
    z0, tx0, ty0 = _view(page)
    page.mouse.move(box["x"] + px, box["y"] + py)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -200)
    page.keyboard.up("Control")
    wait_js(page, f"Number(document.getElementById('viewer').dataset.zoom) > {z0}")
    z1, tx1, ty1 = _view(page)
    assert abs((px - tx0) / z0 - (px - tx1) / z1) < 1.5 and abs((py - ty0) / z0 - (py - ty1) / z1) < 1.5
    assert _index(page) == 1  # zooming did not scroll slices

    # Invert, from the button and the keyboard.
    page.get_by_test_id("invert-toggle").click()
    assert page.eval_on_selector("#slice-image", "el => getComputedStyle(el).filter") == "invert(1)"
    page.locator("#viewport").focus()
    page.keyboard.press("i")
    assert page.get_by_test_id("invert-toggle").get_attribute("aria-pressed") == "false"

    # The keyboard focus ring is visible around the viewport.
    page.get_by_role("button", name="Fit").focus()
    page.keyboard.press("Shift+Tab")
    page.locator("#viewport").focus()
    assert page.eval_on_selector("#viewport", "el => el.matches(':focus-visible')")
    style = page.eval_on_selector("#viewport", "el => [getComputedStyle(el).outlineStyle, getComputedStyle(el).outlineWidth]")
    assert style == ["solid", "3px"]
    screenshot(page, "viewer-series-zoom")


def test_tags_compare_and_cine(page, radiologist, demo_studies):
    prior, current, _ = demo_studies
    log_in(page, radiologist.email)
    _open(page, current)

    # DICOM tags of the current slice, filtered.
    panel = page.get_by_test_id("tag-panel")
    assert not panel.is_visible()
    page.get_by_test_id("tags-toggle").click()
    wait_js(page, "document.getElementById('tag-rows').children.length > 10")
    page.get_by_test_id("tag-filter").fill("body part")
    assert panel.locator("tbody tr").count() == 1
    assert "BRAIN" in panel.locator("tbody tr").inner_text()

    # Side by side with the previous study; scrolling together moves both.
    page.get_by_test_id("compare-toggle").click()
    pane = page.get_by_test_id("compare-pane")
    assert pane.is_visible()
    assert prior.description in pane.inner_text()
    wait_js(page, "document.getElementById('compare-image').naturalWidth > 0")
    before = int(page.get_by_test_id("compare-index").inner_text())
    page.locator("#viewport").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert int(page.get_by_test_id("compare-index").inner_text()) == before + 2
    main_box, pane_box = page.locator("#viewport").bounding_box(), pane.bounding_box()
    assert pane_box["x"] > main_box["x"] + main_box["width"] - 1  # beside it, not below
    screenshot(page, "viewer-compare-tags", full_page=True)

    # Cine: play advances the slices on its own; pause stops it.
    start = _index(page)
    page.get_by_test_id("cine-toggle").click()
    wait_js(page, f"document.getElementById('slice-index').textContent !== '{start}'", timeout=5)
    page.get_by_test_id("cine-toggle").click()
    assert page.get_by_test_id("cine-toggle").get_attribute("aria-pressed") == "false"
    stopped = _index(page)
    page.wait_for_timeout(400)
    assert _index(page) == stopped
