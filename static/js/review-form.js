/* The review panel's sign-off and amendment forms: the override fields (final class,
 * reason) matter only when "override" is chosen. */
(function () {
  "use strict";

  // --- Review form: the override fields matter only when "override" is chosen -------------
  document.querySelectorAll("form.review-form").forEach(function (form) {
    var fields = form.querySelector("[data-override-fields]");
    if (!fields) { return; }
    function sync() {
      var chosen = form.querySelector("input[name=decision]:checked");
      var override = !chosen || chosen.value === "override";
      fields.hidden = !override;
      fields.querySelectorAll("select, textarea").forEach(function (el) { el.disabled = !override; });
    }
    form.querySelectorAll("input[name=decision]").forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  });
}());
