// Small progressive enhancements; every page works without them. No page has inline script or
// event-handler attributes (the Content-Security-Policy forbids them): the behaviours that
// templates ask for with data- attributes live here.
(function () {
  "use strict";
  // Tab in a code textarea inserts four spaces. Escape first, then Tab, leaves the field
  // (so keyboard users are never trapped).
  var released = false;
  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (!(el instanceof HTMLTextAreaElement) || !el.classList.contains("code")) return;
    if (event.key === "Escape") { released = true; return; }
    if (event.key !== "Tab" || event.shiftKey || released) { released = false; return; }
    event.preventDefault();
    el.setRangeText("    ", el.selectionStart, el.selectionEnd, "end");
  });

  // <form data-confirm="...">: ask first.
  // Capture phase, so that nothing else acts on a submit the user then declines.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // <select data-autosubmit>: choosing applies the form (its button remains for no-script use).
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (!(el instanceof HTMLSelectElement) || !el.hasAttribute("data-autosubmit") || !el.form) return;
    if (el.form.requestSubmit) el.form.requestSubmit(); else el.form.submit();
  });

  // <input data-select-on-click>: a click selects the whole value (a link to copy).
  document.addEventListener("click", function (event) {
    var el = event.target;
    if (el instanceof HTMLInputElement && el.hasAttribute("data-select-on-click")) el.select();
  });

  // <input data-enter-searches> inside a bigger form: Enter searches (htmx listens for it)
  // instead of sending the form.
  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (event.key === "Enter" && el instanceof HTMLInputElement && el.hasAttribute("data-enter-searches")) {
      event.preventDefault();
    }
  });
})();
