// Behaviour of the staff pages, kept out of the templates so the Content-Security-Policy
// needs no inline script (docs/security.md).
(function () {
  "use strict";

  // <select data-autosubmit>: submit its form when the choice changes.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // A processing run's page (templates/bounces/pipeline/run.html): poll its status.
  const poll = document.querySelector("[data-run-status-url]");
  if (!poll) return;
  const url = poll.dataset.runStatusUrl;
  function text(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function tick() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (data) {
      text("run-status", data.status_display);
      text("run-processed", data.processed);
      text("run-total", data.total);
      text("run-chunks-done", data.chunks_done);
      const bar = document.getElementById("run-bar");
      bar.style.width = data.percent + "%";
      bar.textContent = data.percent + "%";
      text("run-summary", data.summary);
      document.getElementById("run-queued-hint").classList.toggle("d-none", data.status !== "queued");
      bar.classList.toggle("bg-danger", data.status === "failed");
      for (const [name, value] of Object.entries(data.counts)) text("count-" + name, value);
      const errors = document.getElementById("run-errors");
      errors.textContent = data.error_log;
      errors.classList.toggle("d-none", !data.error_log);
      if (data.finished) {
        bar.classList.remove("progress-bar-striped", "progress-bar-animated");
      } else {
        setTimeout(tick, 1500);
      }
    }).catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 1000);
})();
