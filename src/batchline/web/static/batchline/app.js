// The signing dialog: keyboard first. A button with data-sign-dialog opens the
// <dialog> inside its form; the first empty credential field takes the focus;
// Enter signs, Escape cancels. A dialog the server sent back with an error opens itself.
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
  }
  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSwap", function (e) { wire(e.target); });
})();
