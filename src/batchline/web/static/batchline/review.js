// Review by exception: choose every open exception, or a group of them, at once; the count chosen
// is shown beside the signing button. Without JavaScript each exception is chosen on its own.
(function () {
  function boxes(form, key) {
    var scope = key === "all" ? form : form.querySelector('[data-group="' + key + '"]');
    return scope ? Array.prototype.slice.call(scope.querySelectorAll("input[name=exception], input[name=entry]")) : [];
  }
  function refresh(form) {
    form.querySelectorAll("input[data-choose]").forEach(function (toggle) {
      var own = boxes(form, toggle.dataset.choose);
      var checked = own.filter(function (b) { return b.checked; }).length;
      toggle.checked = own.length > 0 && checked === own.length;
      toggle.indeterminate = checked > 0 && checked < own.length;
    });
    var n = boxes(form, "all").filter(function (b) { return b.checked; }).length;
    form.querySelectorAll("[data-chosen-count]").forEach(function (el) {
      el.textContent = n ? n + " chosen" : "";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-choosing]").forEach(function (form) {
      form.addEventListener("change", function (event) {
        var toggle = event.target.closest("input[data-choose]");
        if (toggle) {
          boxes(form, toggle.dataset.choose).forEach(function (b) { b.checked = toggle.checked; });
        }
        refresh(form);
      });
      refresh(form);
    });
  });
})();
