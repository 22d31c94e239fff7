/* Forms with data-confirm="question" (Deactivate, Unlink) ask before they submit; Cancel
 * leaves everything as it was. */
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); }
  });
}());
