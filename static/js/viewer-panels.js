/* The viewer's side panels, on top of viewer.js (window.portalViewer):
 *
 * - DICOM tag panel: the current slice's header (scans:slice_tags, staff only), with a filter;
 * - comparison: the patient's previous study side by side; its own wheel / arrow keys, and
 *   "scroll together" moves it with the main viewer at the same relative position.
 */
(function () {
  "use strict";

  var api = window.portalViewer;
  var dataEl = document.getElementById("viewer-data");
  if (!api || !dataEl) { return; }
  var data = JSON.parse(dataEl.textContent);

  function setPressed(button, on) { button.setAttribute("aria-pressed", on ? "true" : "false"); }

  // --- Tag panel ----------------------------------------------------------------------------
  var tagsToggle = document.getElementById("tags-toggle");
  var panel = document.getElementById("tag-panel");
  var rows = document.getElementById("tag-rows");
  var note = document.getElementById("tag-note");
  var filter = document.getElementById("tag-filter");
  var tagCache = {};
  var currentTags = null;

  function cell(text, tag) {
    var td = document.createElement(tag || "td");
    td.textContent = text;
    return td;
  }

  function drawTags() {
    rows.textContent = "";
    if (!currentTags) { return; }
    var q = filter.value.trim().toLowerCase();
    currentTags.forEach(function (t) {
      if (q && (t.tag + " " + t.name + " " + t.value).toLowerCase().indexOf(q) < 0) { return; }
      var tr = document.createElement("tr");
      tr.appendChild(cell(t.tag, "th"));
      tr.firstChild.setAttribute("scope", "row");
      tr.appendChild(cell(t.name));
      tr.appendChild(cell(t.vr));
      tr.appendChild(cell(t.value));
      rows.appendChild(tr);
    });
  }

  function showTags(slice) {
    if (panel.hidden || !slice.tags) { return; }
    var url = slice.tags;
    function done(payload) {
      if (slice.tags !== url) { return; }
      currentTags = payload ? payload.tags : null;
      note.textContent = !payload ? (panel.dataset.error || "") : (payload.tags.length ? "" : (panel.dataset.none || ""));
      panel.dataset.loaded = String(slice.id);
      drawTags();
    }
    if (tagCache[url]) { done(tagCache[url]); return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (payload) { tagCache[url] = payload; done(payload); })
      .catch(function () { done(null); });
  }

  var currentSlice = null;
  if (tagsToggle && panel) {
    tagsToggle.addEventListener("click", function () {
      panel.hidden = !panel.hidden;
      setPressed(tagsToggle, !panel.hidden);
      if (currentSlice) { showTags(currentSlice); }
    });
    filter.addEventListener("input", drawTags);
  }

  // --- Comparison with the previous study ---------------------------------------------------
  var compare = data.compare;
  var compareToggle = document.getElementById("compare-toggle");
  var pane = document.getElementById("compare-pane");
  var cView = document.getElementById("compare-viewport");
  var cImg = document.getElementById("compare-image");
  var cIndexOut = document.getElementById("compare-index");
  var link = document.getElementById("compare-link");
  var cIndex = compare ? compare.start : 0;
  var mainAt = { index: 0, total: 1 };
  var anchor = null; // {main, compare}: the slice pair when scrolling together began

  function showCompare(i) {
    if (!compare) { return; }
    cIndex = Math.max(0, Math.min(compare.slices.length - 1, i));
    cImg.src = compare.slices[cIndex];
    cImg.alt = compare.label + " · " + (cIndex + 1) + " / " + compare.slices.length;
    cIndexOut.textContent = String(cIndex + 1);
    pane.dataset.index = String(cIndex);
  }

  if (compare && compareToggle && pane) {
    compareToggle.addEventListener("click", function () {
      pane.hidden = !pane.hidden;
      setPressed(compareToggle, !pane.hidden);
      document.getElementById("viewports").classList.toggle("side-by-side", !pane.hidden);
      anchor = { main: mainAt.index, compare: cIndex };
      showCompare(cIndex);
    });
    link.addEventListener("change", function () { anchor = { main: mainAt.index, compare: cIndex }; });
    cView.addEventListener("wheel", function (e) {
      e.preventDefault();
      showCompare(cIndex + Math.sign(e.deltaY));
      anchor = { main: mainAt.index, compare: cIndex };
    }, { passive: false });
    cView.addEventListener("keydown", function (e) {
      var step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[e.key];
      if (!step) { return; }
      e.preventDefault();
      showCompare(cIndex + step);
      anchor = { main: mainAt.index, compare: cIndex };
    });
  }

  function followMain(index, total) {
    mainAt = { index: index, total: total };
    if (!compare || !pane || pane.hidden || !link.checked || !anchor) { return; }
    // Same relative movement through the two stacks (they may differ in slice count).
    var ratio = compare.slices.length / Math.max(1, total);
    showCompare(Math.round(anchor.compare + (index - anchor.main) * ratio));
  }

  api.onSlice(function (slice, index, total) {
    currentSlice = slice;
    if (panel) { showTags(slice); }
    followMain(index, total);
  });
}());
