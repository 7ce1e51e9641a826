// The signing dialog: keyboard first. A button with data-sign-dialog opens the
// <dialog> inside its form; the first empty credential field takes the focus;
// Enter signs, Escape cancels. A dialog the server sent back with an error opens itself,
// with what was typed still in its fields (never the password).
(function () {
  function openDialog(dialog) {
    if (!dialog.open) dialog.showModal();
    var field = dialog.querySelector("input[name=signer_username]:not([value]), input[name=signer_password]");
    if (field) field.focus();
  }
  function wire(root) {
    root.querySelectorAll("[data-sign-dialog]").forEach(function (button) {
      if (button.dataset.wired) return;
      button.dataset.wired = "1";
      button.addEventListener("click", function () {
        var dialog = document.getElementById(button.dataset.signDialog);
        var form = button.closest("form");
        // Check what is being signed first; the credentials are asked for in the dialog.
        var fields = form ? Array.prototype.filter.call(form.elements, function (el) {
          return !dialog.contains(el) && el.willValidate;
        }) : [];
        for (var i = 0; i < fields.length; i++) { if (!fields[i].reportValidity()) return; }
        openDialog(dialog);
      });
    });
    root.querySelectorAll("dialog[data-open]").forEach(openDialog);
    root.querySelectorAll("[data-close-dialog]").forEach(function (b) {
      b.addEventListener("click", function () { b.closest("dialog").close(); });
    });
    // A confirmation of values outside their specification holds for the values it names only:
    // leaving the dialog to change them takes it back.
    root.querySelectorAll("dialog").forEach(function (dialog) {
      dialog.addEventListener("close", function () {
        dialog.querySelectorAll("[data-confirm-oos]").forEach(function (box) { box.checked = false; });
      });
    });
    // A barcode scanner types where the focus is: into the shown step's own scan field.
    var scan = root.querySelector("[data-scan-focus]");
    if (scan && !document.querySelector("dialog[open]")) scan.focus({ preventScroll: true });
  }
  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSwap", function (e) { wire(e.target); });
})();

// Timers of timed steps: elapsed time, minimum reached, maximum approaching or exceeded,
// counted from the start the server recorded and the server's clock (asked at /clock/), never
// the tablet's. Shown only: nothing here is ever sent or recorded. Until the minimum is reached
// the step's Complete button waits; the server enforces it either way.
(function () {
  var offset = null; // server clock minus this device's clock, in ms
  var asked = 0;
  function sync() {
    var sent = Date.now();
    asked = sent;
    fetch("/clock/", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (!j) return;
        var back = Date.now();
        offset = j.now_ms - (sent + back) / 2;
        tick();
      })
      .catch(function () {});
  }
  function clock(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }
  function words(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000)), m = Math.floor(s / 60), r = s % 60;
    return m ? m + " min" + (r ? " " + r + " s" : "") : r + " s";
  }
  function show(timer) {
    var started = Number(timer.dataset.startedMs);
    if (!started) return;
    var now = Date.now() + offset;
    var elapsed = now - started;
    var min = timer.dataset.min ? Number(timer.dataset.min) * 1000 : null;
    var max = timer.dataset.max ? Number(timer.dataset.max) * 1000 : null;
    var state = "ok", text = "Running.";
    if (min !== null && elapsed < min) {
      state = "wait";
      text = "Minimum " + words(min) + ": reached in " + words(min - elapsed) + ".";
    } else if (max !== null && elapsed > max) {
      state = "over";
      text = "Maximum " + words(max) + " exceeded by " + words(elapsed - max) + ": completing now raises an exception.";
    } else if (max !== null && (max - elapsed <= Math.min(120000, max * 0.2))) {
      state = "warn";
      text = (min !== null ? "Minimum reached. " : "") + "Maximum " + words(max) + " approaching: " + words(max - elapsed) + " left.";
    } else if (min !== null) {
      text = "Minimum " + words(min) + " reached" + (max !== null ? "; maximum " + words(max) + " in " + words(max - elapsed) : "") + ".";
    } else if (max !== null) {
      text = "Maximum " + words(max) + " in " + words(max - elapsed) + ".";
    }
    timer.classList.remove("wait", "ok", "warn", "over");
    timer.classList.add(state);
    timer.dataset.state = state;
    timer.querySelector("[data-timer-clock]").textContent = clock(elapsed);
    timer.querySelector("[data-timer-text]").textContent = text;
    document.querySelectorAll('[data-timer-gate="' + timer.dataset.timer + '"]').forEach(function (button) {
      if (state === "wait") {
        button.disabled = true;
        button.dataset.waiting = "1";
      } else if (button.dataset.waiting) {
        button.disabled = false;
        delete button.dataset.waiting;
      }
    });
  }
  function tick() {
    var timers = document.querySelectorAll("[data-timer][data-started-ms]");
    if (!timers.length) return;
    if (offset === null) { if (!asked) sync(); return; }
    timers.forEach(show);
  }
  setInterval(tick, 1000);
  setInterval(function () { if (document.querySelector("[data-timer][data-started-ms]")) sync(); }, 600000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
})();
