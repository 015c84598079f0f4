// Send progress of a campaign page: polls the JSON endpoint named by #progress while the
// campaign is queued or sending, fills the [data-progress] fields, and reloads the page
// once sending stops (so the results below are current). A static file: CSP forbids
// inline script.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || box.dataset.active !== "1") { return; }
  var url = box.dataset.progressUrl;
  var delay = 2000;

  function show(data) {
    box.querySelectorAll("[data-progress]").forEach(function (el) {
      var key = el.dataset.progress;
      if (Object.prototype.hasOwnProperty.call(data, key)) { el.textContent = String(data[key]); }
    });
    var error = document.getElementById("sending-error");
    if (error) { error.classList.toggle("d-none", !data.last_error); }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (data.active) {
          window.setTimeout(poll, delay);
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        var note = box.querySelector("[data-progress-note]");
        if (note) { note.textContent = "progress unavailable: reload the page"; }
        window.setTimeout(poll, delay * 5);
      });
  }

  window.setTimeout(poll, delay);
}());
