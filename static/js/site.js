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

  // <form data-query-form>: a live search whose fields are the address's query (hx-push-url).
  // Back and Forward restore the page from htmx's history cache, whose snapshot keeps the
  // results but not what was typed: the fields are set again from the address, so the box
  // always says what the results are for.
  function fillFromAddress() {
    var params = new URLSearchParams(window.location.search);
    document.querySelectorAll("form[data-query-form]").forEach(function (form) {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.type === "hidden" || el.type === "submit" || el.type === "button") return;
        el.value = params.get(el.name) || "";
      });
    });
  }
  document.addEventListener("htmx:historyRestore", fillFromAddress);
  window.addEventListener("pageshow", fillFromAddress);

  // <div data-shown-for="NAME" data-shown-values="a b">: shown only while the form's field NAME
  // holds one of those values, so a field that does not apply is not in the way (without
  // script every field shows, and the server ignores the ones that do not apply).
  function showFieldsFor(root) {
    root.querySelectorAll("[data-shown-for]").forEach(function (el) {
      var form = el.closest("form");
      var field = form && form.elements.namedItem(el.getAttribute("data-shown-for"));
      if (!field || field.value === undefined) return;
      el.hidden = el.getAttribute("data-shown-values").split(" ").indexOf(field.value) === -1;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.form) showFieldsFor(event.target.form);
  });
  document.addEventListener("DOMContentLoaded", function () { showFieldsFor(document); });

  // One polite live region for the page (WCAG 4.1.3), outside what swaps replace: a region that
  // is itself swapped in is not reliably read, and one that holds a whole form re-reads it all.
  // What must be heard is said here once: an element with data-announce, when it arrives (a
  // grading result); the last match of data-announce-last="selector" inside an element that
  // arrives (the newest mark of a list re-drawn whole); and window.playgroundAnnounce(text)
  // (the live run's milestones, static/js/live-run.js).
  function announcer() {
    var el = document.getElementById("announcer");
    if (!el) {
      el = document.createElement("div");
      el.id = "announcer";
      el.className = "sr-only";
      el.setAttribute("role", "status");
      el.setAttribute("aria-live", "polite");
      el.setAttribute("aria-atomic", "true");
      document.body.appendChild(el);
    }
    return el;
  }
  var said = null;
  window.playgroundAnnounce = function (text) {
    var el = announcer();
    text = text.replace(/\s+/g, " ").trim();
    if (!text) return;
    // Emptied first, so that the same words twice in a row are read twice.
    el.textContent = "";
    window.clearTimeout(said);
    said = window.setTimeout(function () { el.textContent = text; }, 60);
  };
  function arrived(mark) {
    var words = [];
    document.querySelectorAll("[data-announce]:not([data-announced])").forEach(function (el) {
      el.setAttribute("data-announced", "");
      words.push(el.textContent);
    });
    document.querySelectorAll("[data-announce-last]:not([data-announced])").forEach(function (el) {
      el.setAttribute("data-announced", "");
      var all = el.querySelectorAll(el.getAttribute("data-announce-last"));
      if (all.length) words.push(all[all.length - 1].textContent);
    });
    if (mark && words.length) window.playgroundAnnounce(words.join(" "));
  }
  var looking = false;
  document.addEventListener("DOMContentLoaded", function () {
    announcer();
    arrived(false); // what the page came with is read with the page
    new MutationObserver(function () {
      if (looking) return;
      looking = true;
      window.requestAnimationFrame(function () { looking = false; arrived(true); });
    }).observe(document.body, { childList: true, subtree: true });
  });

  // A form that htmx replaces with its answer takes the focus with it (the button pressed is
  // gone): the focus goes to the first field of what came in its place, or to that region, so
  // that the keyboard goes on from there instead of from the top of the page (WCAG 2.4.3).
  var swapping = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    swapping = elt && elt.contains(document.activeElement) ? elt.getAttribute("hx-target") : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!swapping || (document.activeElement && document.activeElement !== document.body)) return;
    var region = document.querySelector(swapping);
    swapping = null;
    if (!region) return;
    var field = region.querySelector(
      "input:not([type=hidden]):not([disabled]), textarea:not([disabled]), select, button:not([disabled])");
    if (field) { field.focus(); return; }
    region.setAttribute("tabindex", "-1");
    region.focus();
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
