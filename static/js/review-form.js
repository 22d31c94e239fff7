/* The review panel's sign-off and amendment forms: the override fields (final class) matter
 * only when "override" is chosen, the reason why images cannot be assessed only when
 * "cannot be assessed" is chosen. */
(function () {
  "use strict";

  var FIELDS = { "[data-override-fields]": "override", "[data-unassessable-fields]": "unassessable" };

  document.querySelectorAll("form.review-form").forEach(function (form) {
    function sync() {
      var chosen = form.querySelector("input[name=decision]:checked");
      var decision = chosen ? chosen.value : "override";
      Object.keys(FIELDS).forEach(function (selector) {
        var fields = form.querySelector(selector);
        if (!fields) { return; }
        var on = decision === FIELDS[selector];
        fields.hidden = !on;
        fields.querySelectorAll("select, textarea").forEach(function (el) { el.disabled = !on; });
      });
    }
    form.querySelectorAll("input[name=decision]").forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  });
}());

/* Review forms (sign-off, amendment): the patient explanation box always holds the exact
 * text the patient will read for the decision currently chosen.
 *
 * The server embeds that text for every decision (#explanation-previews, keyed
 * "decision:class"). When the radiologist changes the decision or the final class and has
 * not edited the box, the box takes the text for the new choice; when they have edited it,
 * a note asks them to check it (the server refuses a text naming another finding).
 */
(function () {
  "use strict";

  var dataEl = document.getElementById("explanation-previews");
  if (!dataEl) { return; }
  var previews = JSON.parse(dataEl.textContent);

  function squash(text) { return (text || "").split(/\s+/).join(" ").trim(); }

  document.querySelectorAll("form.review-form").forEach(function (form) {
    var box = form.querySelector("textarea[name=explanation_text]");
    if (!box) { return; }
    var note = form.querySelector("[data-explanation-note]");
    var select = form.querySelector("select[name=final_class]");
    var shown = box.value; // the text the page last put in the box

    function currentKey() {
      var chosen = form.querySelector("input[name=decision]:checked");
      var decision = chosen ? chosen.value : "";
      return decision === "override" ? "override:" + (select ? select.value : "") : decision + ":";
    }

    function sync() {
      var text = previews[currentKey()];
      if (text === undefined) { return; }
      var untouched = squash(box.value) === squash(shown) || squash(box.value) === "";
      if (untouched) {
        box.value = text;
        shown = text;
      }
      if (note) { note.hidden = untouched || squash(box.value) === squash(text); }
    }

    form.querySelectorAll("input[name=decision]").forEach(function (radio) {
      radio.addEventListener("change", sync);
    });
    if (select) { select.addEventListener("change", sync); }
    box.addEventListener("input", function () {
      if (note && squash(box.value) === squash(previews[currentKey()])) { note.hidden = true; }
    });
  });
}());
