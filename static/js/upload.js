/*
 * Upload page: sends the form with XMLHttpRequest so the progress bar shows real upload
 * progress, then follows the "next" URL from the JSON answer (the study with its live
 * status for staff; a confirmation for patients). Errors from the server name the file and
 * the problem and are shown in the alert region. Without JavaScript the form posts normally.
 */
(function () {
  "use strict";

  function init(form) {
    var box = form.parentNode;
    var progress = box.querySelector("[data-upload-progress]");
    var bar = box.querySelector("[data-upload-bar]");
    var percent = box.querySelector("[data-upload-percent]");
    var errorBox = box.querySelector("[data-upload-error]");
    var submit = form.querySelector("[data-upload-submit]");
    var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;
    var maxFiles = parseInt(form.getAttribute("data-max-files"), 10) || 0;

    function showError(file, message) {
      errorBox.textContent = "";
      if (file) {
        var strong = document.createElement("strong");
        strong.textContent = file;
        errorBox.appendChild(strong);
        errorBox.appendChild(document.createTextNode(": "));
      }
      errorBox.appendChild(document.createTextNode(message));
      submit.disabled = false;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      errorBox.textContent = "";
      var input = form.querySelector("input[type=file]");
      var files = input.files || [];
      var total = 0;
      for (var i = 0; i < files.length; i++) { total += files[i].size; }
      if (maxFiles && files.length > maxFiles) {
        showError("", "Too many files (" + files.length + "; the limit is " + maxFiles + ").");
        return;
      }
      if (maxBytes && total > maxBytes) {
        showError("", "The upload is " + total + " bytes; the limit is " + maxBytes + " bytes.");
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) { return; }
        bar.max = e.total;
        bar.value = e.loaded;
        percent.textContent = Math.round((100 * e.loaded) / e.total) + "% uploaded";
      });
      xhr.upload.addEventListener("load", function () {
        percent.textContent = "Uploaded; checking and storing the scans…";
      });
      xhr.addEventListener("load", function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
        if (xhr.status === 201 && data) {
          percent.textContent = "Done.";
          form.setAttribute("data-upload-done", "true");
          window.location.assign(data.next);
          return;
        }
        progress.hidden = true;
        if (data && data.error) {
          showError(data.file || "", data.error);
        } else {
          showError("", "The upload failed (HTTP " + xhr.status + ").");
        }
      });
      xhr.addEventListener("error", function () {
        progress.hidden = true;
        showError("", "The connection failed during the upload. Please try again.");
      });
      submit.disabled = true;
      progress.hidden = false;
      bar.value = 0;
      percent.textContent = "0% uploaded";
      xhr.send(new FormData(form));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("[data-upload-form]");
    for (var i = 0; i < forms.length; i++) { init(forms[i]); }
  });
})();
