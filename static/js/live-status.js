/*
 * Live processing status. Any element with data-live-status-url is polled (default every
 * 1.5 s; data-live-status-interval in ms overrides) until the study reaches a terminal
 * state, and updated in place:
 *   [data-live-status-field="status"]   the study status text (status_display)
 *   [data-live-status-field="detail"]   the status detail
 *   [data-live-status-field="summary"]  "2 of 3 series classified" (translated by the server)
 *   progress[data-live-status-progress] value/max = series done/total
 *   [data-live-status-jobs]             a list (ul/ol) rebuilt with one item per job
 * The element gets data-state=<study status> and aria-live="polite" (set here when absent).
 * With data-live-status-reload="true" the page reloads once when processing finishes, so
 * the result that the server renders appears. Events: "live-status:update" and
 * "live-status:done" (detail = the JSON) bubble from the element.
 * No inline script is needed (CSP script-src 'self'): include this file with defer.
 */
(function () {
  "use strict";

  var DEFAULT_INTERVAL = 1500;
  var MAX_INTERVAL = 30000;

  function text(el, value) {
    if (el) { el.textContent = value == null ? "" : String(value); }
  }

  function jobLine(job, maxAttempts) {
    var parts = [job.kind_display + (job.series_label ? " — " + job.series_label : ""), job.state_display];
    if (job.attempts > 1) { parts.push("↻ " + job.attempts + "/" + maxAttempts); }
    if (job.run_seconds != null && job.state === "done") { parts.push(job.run_seconds.toFixed(1) + " s"); }
    var line = parts.join(" · ");
    if (job.error && job.state !== "done") { line += " — " + job.error; }
    return line;
  }

  function render(root, data) {
    root.setAttribute("data-state", data.status);
    text(root.querySelector('[data-live-status-field="status"]'), data.status_display);
    text(root.querySelector('[data-live-status-field="detail"]'), data.status_detail);
    var p = data.progress || { total: 0, done: 0, failed: 0 };
    text(root.querySelector('[data-live-status-field="summary"]'), data.summary);
    var bar = root.querySelector("progress[data-live-status-progress]");
    if (bar) {
      bar.max = Math.max(p.total, 1);
      bar.value = p.done + p.failed;
    }
    var list = root.querySelector("[data-live-status-jobs]");
    if (list) {
      while (list.firstChild) { list.removeChild(list.firstChild); }
      (data.jobs || []).forEach(function (job) {
        var li = document.createElement("li");
        li.setAttribute("data-job-state", job.state);
        li.setAttribute("data-job-id", job.id);
        li.textContent = jobLine(job, data.max_attempts);
        list.appendChild(li);
      });
    }
  }

  function start(root) {
    var url = root.getAttribute("data-live-status-url");
    var interval = parseInt(root.getAttribute("data-live-status-interval"), 10) || DEFAULT_INTERVAL;
    var delay = interval;
    var wasActive = false;
    if (!root.hasAttribute("aria-live")) { root.setAttribute("aria-live", "polite"); }

    function schedule() { window.setTimeout(poll, delay); }

    function poll() {
      if (document.hidden) { schedule(); return; }
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          delay = interval;
          render(root, data);
          root.dispatchEvent(new CustomEvent("live-status:update", { bubbles: true, detail: data }));
          if (data.terminal) {
            root.dispatchEvent(new CustomEvent("live-status:done", { bubbles: true, detail: data }));
            if (wasActive && root.getAttribute("data-live-status-reload") === "true") {
              window.location.reload();
            }
            return;
          }
          wasActive = true;
          schedule();
        })
        .catch(function () {
          // Network blip or server restart: keep trying, more slowly.
          delay = Math.min(delay * 2, MAX_INTERVAL);
          schedule();
        });
    }
    poll();
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-live-status-url]"), start);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
