/* When live-status.js reports that processing is done, the parts of the page marked
 * [data-refresh-when-done id=...] (e.g. each series' AI result) are fetched again from the
 * server and replaced in place: the page itself is not reloaded. */
(function () {
  "use strict";
  document.addEventListener("live-status:done", function () {
    var parts = document.querySelectorAll("[data-refresh-when-done][id]");
    if (!parts.length) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        parts.forEach(function (el) {
          var next = fresh.getElementById(el.id);
          if (next) { el.innerHTML = next.innerHTML; }
        });
      })
      .catch(function () { /* the result is on the page after a manual reload */ });
  });
}());
