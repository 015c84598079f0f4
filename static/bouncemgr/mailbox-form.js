// The mailbox form (admin add / change page): show only the fields of the chosen protocol,
// login method and schedule, and fill in a preset when one is picked. A static file: the
// Content-Security-Policy allows no inline script. Without it the form still works: every
// field shows and the server validates per protocol (bounces/views/mailbox_form.py).
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  ready(function () {
    const protocol = document.getElementById("id_protocol");
    if (!protocol || !protocol.dataset.fields) return;
    const map = JSON.parse(protocol.dataset.fields);
    const auth = document.getElementById("id_auth");
    const preset = document.getElementById("id_preset");

    function row(name) {
      const input = document.getElementById("id_" + name);
      const el = input ? input.closest(".form-row, .fieldBox") : document.querySelector(".field-" + name);
      return el || document.querySelector(".form-row.field-" + name);
    }
    function show(name, visible) {
      const el = row(name);
      if (el) el.style.display = visible ? "" : "none";
    }
    function checked(name) {
      const radio = document.querySelector("input[name=" + name + "]:checked");
      if (radio) return radio.value;
      const select = document.getElementById("id_" + name);
      return select ? select.value : "";
    }

    function update() {
      const wanted = new Set(map.protocol[protocol.value] || []);
      map.all.forEach(function (name) { show(name, wanted.has(name)); });
      const remote = protocol.value === "imap" || protocol.value === "pop3";
      if (remote && auth) {
        Object.keys(map.auth).forEach(function (method) {
          map.auth[method].forEach(function (name) { show(name, method === auth.value); });
        });
      }
      const schedule = checked("schedule") || "interval";
      Object.keys(map.schedule).forEach(function (kind) {
        map.schedule[kind].forEach(function (name) { show(name, kind === schedule); });
      });
      // POP3 has no folders: moving is not offered there
      ["id_processed_action", "id_unmatched_action"].forEach(function (id) {
        const select = document.getElementById(id);
        if (!select) return;
        const move = select.querySelector("option[value=move]");
        if (move) move.disabled = protocol.value === "pop3";
        const folder = row(id.replace("id_", "").replace("_action", "_folder"));
        if (folder && wanted.has(id.replace("id_", "").replace("_action", "_folder"))) {
          folder.style.display = select.value === "move" ? "" : "none";
        }
      });
      // a fieldset whose every row is hidden goes too (Server for a local mailbox, Login)
      document.querySelectorAll("fieldset.module").forEach(function (fieldset) {
        const rows = Array.from(fieldset.querySelectorAll(".form-row"));
        if (!rows.length) return;
        fieldset.style.display = rows.every(function (r) { return r.style.display === "none"; }) ? "none" : "";
      });
    }

    function fill(values) {
      Object.keys(values).forEach(function (name) {
        const input = document.getElementById("id_" + name);
        if (!input) return;
        if (input.type === "checkbox") input.checked = Boolean(values[name]);
        else input.value = values[name] === null ? "" : String(values[name]);
      });
    }

    if (preset && preset.dataset.presets) {
      const presets = JSON.parse(preset.dataset.presets);
      const apply = document.querySelector(".bm-preset-apply");
      if (apply) apply.style.display = "none";  // the choice applies at once
      preset.addEventListener("change", function () {
        if (presets[preset.value]) fill(presets[preset.value]);
        update();
      });
    }
    [protocol, auth, document.getElementById("id_processed_action"),
      document.getElementById("id_unmatched_action")].forEach(function (el) {
      if (el) el.addEventListener("change", update);
    });
    document.querySelectorAll("input[name=schedule], select[name=schedule]").forEach(function (el) {
      el.addEventListener("change", update);
    });
    update();
  });
})();
