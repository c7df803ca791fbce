// The run form's button says what will happen: "Run it for real" with the real run only, "Run
// and ask the model" once a model method is chosen (data-label-real / data-label-model, set by
// playground/runs/templatetags/runs.py). Also after Back, when the browser restores the select.
// With the method, it shows a probe method's questions, turns the rule off for a method that
// cannot take one, and shows the chosen rule's sentence.
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
    var chosen = select.options[select.selectedIndex];
    // A probe method's questions are set only where one is chosen.
    var probes = form.querySelector("[data-probe-settings]");
    if (probes) probes.hidden = !(chosen && chosen.hasAttribute("data-probes"));
    // A method that cannot run under a changed rule (Chain of Code) gets standard Python.
    var rule = form.querySelector("select[data-rule-select]");
    if (rule) {
      var ruleless = !!(chosen && chosen.hasAttribute("data-no-rule"));
      if (ruleless) rule.value = "";
      rule.disabled = ruleless;
      rule.title = ruleless ? "This method cannot run under a changed rule" : "";
    }
    ruleText(form);
  }

  // The chosen rule's sentence (what the model will be told) under the select.
  function ruleText(form) {
    var rule = form.querySelector("select[data-rule-select]");
    var texts = form.querySelectorAll("[data-rule-text] [data-rule]");
    for (var i = 0; i < texts.length; i++) {
      texts[i].hidden = !rule || texts[i].getAttribute("data-rule") !== rule.value;
    }
  }

  function labelAll() {
    var forms = document.querySelectorAll("form.run-form");
    for (var i = 0; i < forms.length; i++) label(forms[i]);
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el instanceof HTMLSelectElement && (el.name === "method" || el.name === "rule") &&
        el.form && el.form.classList.contains("run-form")) label(el.form);
  });
  document.addEventListener("DOMContentLoaded", labelAll);
  window.addEventListener("pageshow", labelAll);
})();
