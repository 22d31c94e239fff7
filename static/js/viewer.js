/* Slice viewer for the radiologist's study page.
 *
 * Data comes from the json_script element #viewer-data (no inline script: CSP is
 * script-src 'self'). Slice images are rendered by the server at the requested window
 * (scans:slice_image?wc=&ww=); heat maps come from scans:slice_heatmap.
 *
 * Controls: mouse wheel / arrow keys / Page Up / Page Down / Home / End / slider change the
 * slice; drag adjusts window (horizontal) and level (vertical); Shift + drag or the Pan tool
 * pans; Ctrl + wheel zooms about the pointer, + / - / 0 and the buttons about the centre;
 * H toggles the heat map; K jumps to the key slice; I inverts; P plays the series (cine).
 * The tag panel and the comparison pane live in viewer-panels.js.
 */
(function () {
  "use strict";

  var dataEl = document.getElementById("viewer-data");
  var viewer = document.getElementById("viewer");
  if (!dataEl || !viewer) { return; }
  var data = JSON.parse(dataEl.textContent);
  var slices = data.slices || [];
  if (!slices.length) { return; }

  var viewport = document.getElementById("viewport");
  var stack = document.getElementById("stack");
  var img = document.getElementById("slice-image");
  var overlay = document.getElementById("heatmap-overlay");
  var slider = document.getElementById("slice-slider");
  var indexOut = document.getElementById("slice-index");
  var keyMarker = document.getElementById("slice-key-marker");
  var windowOut = document.getElementById("window-readout");
  var overlayNote = document.getElementById("overlay-note");
  var overlayToggle = document.getElementById("overlay-toggle");
  var opacity = document.getElementById("overlay-opacity");
  var zoomOut = document.getElementById("zoom-readout");
  var probList = document.getElementById("slice-prob-list");
  var errorOut = document.getElementById("viewer-error");

  var PAGE_STEP = 10;
  var ZOOM_STEPS = [1, 1.25, 1.5, 2, 2.5, 3, 4];
  // Presets relative to each slice's own stored window (MRI intensities have no absolute
  // scale like CT Hounsfield units): "brain" narrows the width for grey/white contrast,
  // "bone / wide" doubles it. "default" asks the server for the stored window.
  var PRESETS = {
    "default": null,
    "brain": { center: 1.0, width: 0.5 },
    "bone": { center: 1.15, width: 2.0 }
  };

  var state = {
    index: 0,
    preset: "default",
    wc: null, // null = server default window
    ww: null,
    zoom: 0,
    overlayOn: false
  };
  var cache = {}; // url -> Image, keeps preloaded neighbours alive

  function baseWindow(s) {
    // The slice's stored window, or the full 8-bit range for JPEG/PNG slices.
    return {
      center: typeof s.wc === "number" ? s.wc : 127.5,
      width: typeof s.ww === "number" && s.ww > 0 ? s.ww : 255
    };
  }

  function imageUrl(s) {
    if (state.wc === null || state.ww === null) { return s.image; }
    return s.image + "?wc=" + encodeURIComponent(state.wc.toFixed(1)) +
      "&ww=" + encodeURIComponent(Math.max(1, state.ww).toFixed(1));
  }

  // Image cache with retry: a rendering that fails (e.g. a busy server) is tried again twice
  // before the viewer reports it. cache[url] = {img, state: loading|ok|error, waiters}.
  var MAX_RETRIES = 2;
  var inFlight = 0; // exposed as data-loading, so tests can wait for a quiet viewer
  function loading(delta) {
    inFlight += delta;
    viewer.dataset.loading = String(inFlight);
  }
  function load(url, attempt) {
    attempt = attempt || 0;
    var entry = cache[url];
    if (entry) { return entry; }
    var pre = new Image();
    entry = { img: pre, state: "loading", waiters: [] };
    cache[url] = entry;
    loading(1);
    function settle(ok) {
      entry.state = ok ? "ok" : "error";
      var waiters = entry.waiters;
      entry.waiters = [];
      waiters.forEach(function (cb) { cb(ok); });
    }
    pre.onload = function () { loading(-1); settle(true); };
    pre.onerror = function () {
      loading(-1);
      if (attempt >= MAX_RETRIES) { settle(false); return; }
      loading(1); // the retry below is still pending
      setTimeout(function () {
        loading(-1);
        if (cache[url] === entry) { delete cache[url]; }
        var again = load(url, attempt + 1);
        again.waiters = again.waiters.concat(entry.waiters);
        entry.waiters = [];
      }, 250 * (attempt + 1));
    };
    pre.decoding = "async";
    pre.src = url;
    return entry;
  }

  function whenLoaded(url, cb) {
    var entry = load(url);
    if (entry.state === "loading") { entry.waiters.push(cb); } else { cb(entry.state === "ok"); }
  }

  function preloadNeighbours() {
    [1, -1, 2, -2, 3].forEach(function (d) {
      var j = state.index + d;
      if (j >= 0 && j < slices.length) { load(imageUrl(slices[j])); }
    });
    // Keep the cache bounded on long series.
    var keys = Object.keys(cache);
    if (keys.length > 80) {
      keys.slice(0, keys.length - 40).forEach(function (k) { if (cache[k].state !== "loading") { delete cache[k]; } });
    }
  }

  function renderOverlay() {
    var s = slices[state.index];
    if (state.overlayOn && s.heatmap) {
      if (overlay.getAttribute("src") !== s.heatmap) { overlay.src = s.heatmap; }
      overlay.hidden = false;
      overlayNote.textContent = "";
    } else {
      overlay.hidden = true;
      overlayNote.textContent = state.overlayOn && !s.heatmap ? "· " + (viewer.dataset.noHeatmap || "no heat map for this slice") : "";
    }
    overlay.style.opacity = String(Number(opacity.value) / 100);
  }

  function renderWindow() {
    if (state.wc === null) {
      windowOut.textContent = "W/L " + (viewer.dataset.defaultLabel || "default");
    } else {
      windowOut.textContent = "W " + Math.round(state.ww) + " / L " + Math.round(state.wc);
    }
  }

  // Swap the displayed image only once the new one has loaded, so scrolling never shows a
  // blank or half-drawn frame; a failed rendering is reported in the readout.
  var wanted = null;
  function show(url) {
    wanted = url;
    if (img.getAttribute("src") === url) { return; }
    whenLoaded(url, function (ok) {
      if (wanted !== url) { return; }
      if (ok) {
        img.src = url;
        viewer.classList.remove("image-error");
        errorOut.textContent = "";
      } else {
        delete cache[url];
        viewer.classList.add("image-error");
        errorOut.textContent = viewer.dataset.loadError || "This image could not be loaded.";
      }
    });
  }

  function render() {
    var s = slices[state.index];
    show(imageUrl(s));
    img.alt = (viewer.dataset.sliceAlt || "Slice %(n)s of %(total)s")
      .replace("%(n)s", String(state.index + 1)).replace("%(total)s", String(slices.length));
    slider.value = String(state.index + 1);
    indexOut.textContent = String(state.index + 1);
    viewer.dataset.sliceIndex = String(state.index);
    keyMarker.hidden = !s.is_key;
    renderOverlay();
    renderWindow();
    if (probList) {
      var buttons = probList.querySelectorAll(".slice-prob");
      for (var i = 0; i < buttons.length; i++) {
        var current = Number(buttons[i].dataset.index) === state.index;
        buttons[i].classList.toggle("current", current);
        if (current) { buttons[i].setAttribute("aria-current", "true"); } else { buttons[i].removeAttribute("aria-current"); }
      }
    }
    preloadNeighbours();
    listeners.forEach(function (cb) { cb(s, state.index, slices.length); });
  }
  var listeners = [];

  function go(index) {
    var next = Math.max(0, Math.min(slices.length - 1, index));
    if (next !== state.index) { state.index = next; render(); }
  }

  function setPreset(name) {
    state.preset = name;
    var p = PRESETS[name];
    if (!p) {
      state.wc = null; state.ww = null;
    } else {
      var b = baseWindow(slices[state.index]);
      state.wc = b.center * p.center;
      state.ww = b.width * p.width;
    }
    viewer.querySelectorAll("[data-preset]").forEach(function (btn) {
      btn.setAttribute("aria-pressed", btn.dataset.preset === name ? "true" : "false");
    });
    render();
  }

  // --- Zoom and pan: one CSS transform on the stack (translate, then scale) -------------
  // A point p of the viewport shows image point (p - t) / z; zooming about p keeps it fixed.
  var MAX_ZOOM = 8;
  var view = { z: 1, tx: 0, ty: 0 };
  function applyView() {
    if (view.z <= 1) { view.z = 1; view.tx = 0; view.ty = 0; }
    stack.style.transform = "translate(" + view.tx + "px, " + view.ty + "px) scale(" + view.z + ")";
    viewport.classList.toggle("zoomed", view.z > 1);
    zoomOut.textContent = Math.round(view.z * 100) + "%";
    viewer.dataset.zoom = String(view.z);
    viewer.dataset.pan = Math.round(view.tx) + "," + Math.round(view.ty);
  }
  function zoomAbout(z, px, py) {
    z = Math.max(1, Math.min(MAX_ZOOM, z));
    if (px === undefined) { px = viewport.clientWidth / 2; py = viewport.clientHeight / 2; }
    view.tx = px - (px - view.tx) * z / view.z;
    view.ty = py - (py - view.ty) * z / view.z;
    view.z = z;
    applyView();
  }
  function setZoom(step) {
    state.zoom = Math.max(0, Math.min(ZOOM_STEPS.length - 1, step));
    zoomAbout(ZOOM_STEPS[state.zoom]);
  }
  function stepZoom(direction) {
    // The next preset step above or below the current (possibly in-between) zoom.
    var i = 0;
    if (direction > 0) { while (i < ZOOM_STEPS.length - 1 && ZOOM_STEPS[i] <= view.z + 1e-6) { i++; } }
    else { i = ZOOM_STEPS.length - 1; while (i > 0 && ZOOM_STEPS[i] >= view.z - 1e-6) { i--; } }
    setZoom(i);
  }
  function panBy(dx, dy) {
    if (view.z <= 1) { return; }
    view.tx += dx; view.ty += dy;
    applyView();
  }

  // --- Invert and cine --------------------------------------------------------------------
  var invertToggle = document.getElementById("invert-toggle");
  function toggleInvert() {
    var on = !viewer.classList.contains("inverted");
    viewer.classList.toggle("inverted", on);
    invertToggle.setAttribute("aria-pressed", on ? "true" : "false");
  }
  var cineToggle = document.getElementById("cine-toggle");
  var cineFps = document.getElementById("cine-fps");
  var cineTimer = null;
  function stopCine() {
    if (cineTimer) { clearInterval(cineTimer); cineTimer = null; }
    cineToggle.setAttribute("aria-pressed", "false");
    cineToggle.textContent = cineToggle.dataset.play || "Play";
  }
  function startCine() {
    stopCine();
    cineToggle.setAttribute("aria-pressed", "true");
    cineToggle.textContent = cineToggle.dataset.pause || "Pause";
    cineTimer = setInterval(function () {
      go(state.index + 1 < slices.length ? state.index + 1 : 0);
    }, 1000 / Number(cineFps.value || 8));
  }
  function toggleCine() { if (cineTimer) { stopCine(); } else { startCine(); } }
  cineToggle.addEventListener("click", toggleCine);
  cineFps.addEventListener("change", function () { if (cineTimer) { startCine(); } });
  invertToggle.addEventListener("click", toggleInvert);
  var panTool = document.getElementById("pan-tool");
  panTool.addEventListener("click", function () {
    var on = panTool.getAttribute("aria-pressed") !== "true";
    panTool.setAttribute("aria-pressed", on ? "true" : "false");
    viewport.classList.toggle("pan-mode", on);
  });

  function toggleOverlay(on) {
    state.overlayOn = typeof on === "boolean" ? on : !state.overlayOn;
    overlayToggle.setAttribute("aria-pressed", state.overlayOn ? "true" : "false");
    renderOverlay();
  }

  // --- Slice scrolling --------------------------------------------------------------------
  // One slice per wheel notch; trackpads (many small deltas) move one slice per 40 px.
  var wheelAccum = 0;
  viewport.addEventListener("wheel", function (e) {
    e.preventDefault();
    if (e.ctrlKey) { // Ctrl + wheel (and trackpad pinch) zooms about the pointer
      var r = viewport.getBoundingClientRect();
      zoomAbout(view.z * Math.exp(-e.deltaY * (e.deltaMode === 0 ? 0.002 : 0.08)), e.clientX - r.left, e.clientY - r.top);
      return;
    }
    wheelAccum += e.deltaMode === 0 ? e.deltaY : e.deltaY * 40;
    if (Math.abs(wheelAccum) >= 40) {
      go(state.index + Math.sign(wheelAccum));
      wheelAccum = 0;
    }
  }, { passive: false });

  function onKey(e) {
    if (e.altKey || e.metaKey || e.ctrlKey) { return; }
    var handled = true;
    switch (e.key) {
      case "ArrowDown": case "ArrowRight": go(state.index + 1); break;
      case "ArrowUp": case "ArrowLeft": go(state.index - 1); break;
      case "PageDown": go(state.index + PAGE_STEP); break;
      case "PageUp": go(state.index - PAGE_STEP); break;
      case "Home": go(0); break;
      case "End": go(slices.length - 1); break;
      case "+": case "=": stepZoom(1); break;
      case "-": case "_": stepZoom(-1); break;
      case "0": setZoom(0); break;
      case "i": case "I": toggleInvert(); break;
      case "p": case "P": toggleCine(); break;
      case "h": case "H": toggleOverlay(); break;
      case "k": case "K": jumpKey(); break;
      default: handled = false;
    }
    if (handled) { e.preventDefault(); }
  }
  viewport.addEventListener("keydown", onKey);

  slider.addEventListener("input", function () { go(Number(slider.value) - 1); });

  // --- Window / level drag ----------------------------------------------------------------
  var drag = null;
  var pending = null;
  viewport.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) { return; }
    viewport.focus();
    var b = baseWindow(slices[state.index]);
    drag = {
      x: e.clientX, y: e.clientY, lastX: e.clientX, lastY: e.clientY,
      pan: e.shiftKey || viewport.classList.contains("pan-mode"),
      wc: state.wc === null ? b.center : state.wc,
      ww: state.ww === null ? b.width : state.ww,
      scale: b.width / 256
    };
    viewport.setPointerCapture(e.pointerId);
  });
  viewport.addEventListener("pointermove", function (e) {
    if (!drag) { return; }
    if (drag.pan) {
      panBy(e.clientX - drag.lastX, e.clientY - drag.lastY);
      drag.lastX = e.clientX; drag.lastY = e.clientY;
      return;
    }
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) < 3) { return; }
    state.ww = Math.max(1, drag.ww + dx * drag.scale * 2);
    state.wc = drag.wc - dy * drag.scale;
    state.preset = "custom";
    viewer.querySelectorAll("[data-preset]").forEach(function (btn) { btn.setAttribute("aria-pressed", "false"); });
    renderWindow();
    // Ask the server for at most one rendering every 120 ms while dragging.
    if (!pending) {
      pending = setTimeout(function () { pending = null; render(); }, 120);
    }
  });
  function endDrag(e) {
    if (!drag) { return; }
    var panned = drag.pan;
    drag = null;
    if (viewport.hasPointerCapture && viewport.hasPointerCapture(e.pointerId)) { viewport.releasePointerCapture(e.pointerId); }
    if (pending) { clearTimeout(pending); pending = null; }
    if (!panned) { render(); }
  }
  viewport.addEventListener("pointerup", endDrag);
  viewport.addEventListener("pointercancel", endDrag);

  // --- Toolbar ----------------------------------------------------------------------------
  viewer.querySelectorAll("[data-preset]").forEach(function (btn) {
    btn.addEventListener("click", function () { setPreset(btn.dataset.preset); });
  });
  viewer.querySelectorAll("[data-zoom]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var what = btn.dataset.zoom;
      if (what === "reset") { setZoom(0); } else { stepZoom(what === "in" ? 1 : -1); }
    });
  });
  overlayToggle.addEventListener("click", function () { toggleOverlay(); });
  opacity.addEventListener("input", renderOverlay);
  if (!slices.some(function (s) { return !!s.heatmap; })) {
    overlayToggle.disabled = true;
    overlayToggle.title = viewer.dataset.noHeatmaps || "No heat maps for this series";
  }

  // --- Per-slice probabilities and key slice --------------------------------------------
  function jumpKey() {
    for (var i = 0; i < slices.length; i++) {
      if (slices[i].is_key) { go(i); viewport.focus(); return; }
    }
  }
  var jump = document.getElementById("jump-key");
  if (jump) { jump.addEventListener("click", jumpKey); }
  if (probList) {
    probList.addEventListener("click", function (e) {
      var btn = e.target.closest(".slice-prob");
      if (btn) { go(Number(btn.dataset.index)); }
    });
  }

  // For viewer-panels.js (tag panel, comparison): the current slice and slice changes.
  window.portalViewer = {
    onSlice: function (cb) { listeners.push(cb); cb(slices[state.index], state.index, slices.length); },
    go: go
  };
  setZoom(0);
  render();
  viewer.dataset.ready = "true";
}());
