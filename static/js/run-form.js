// The run form's button says what will happen: "Run it for real" with the real run only, "Run
// and ask the model" once a model method is chosen (data-label-real / data-label-model, set by
// playground/runs/templatetags/runs.py). Also after Back, when the browser restores the select.
(function () {
  "use strict";
  if (window.playgroundRunForm) return; // the form may be on a page more than once
  window.playgroundRunForm = true;

  function label(form) {
    var select = form.querySelector("select[name=method]");
    var button = form.querySelector("button[data-label-real]");
    if (!select || !button) return;
    var text = button.getAttribute(select.value === "real" ? "data-label-real" : "data-label-model");
    if (text && button.textContent !== text) button.textContent = text;
  }

  function labelAll() {
    var forms = document.querySelectorAll("form.run-form");
    for (var i = 0; i < forms.length; i++) label(forms[i]);
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el instanceof HTMLSelectElement && el.name === "method" && el.form &&
        el.form.classList.contains("run-form")) label(el.form);
  });
  document.addEventListener("DOMContentLoaded", labelAll);
  window.addEventListener("pageshow", labelAll);
})();
