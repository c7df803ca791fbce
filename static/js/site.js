// Small progressive enhancements; every page works without them.
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
})();
