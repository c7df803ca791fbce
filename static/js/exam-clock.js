// A timed exam's countdown. The server computed the seconds left from its own clock when it
// sent the page (data-seconds-left); this counts them down with the browser's monotonic clock,
// so a browser clock set wrong changes nothing. The server refuses an answer after the end
// whatever this shows.
(function () {
  "use strict";
  var box = document.getElementById("exam-clock");
  var left = document.getElementById("exam-clock-left");
  if (!box || !left || box.dataset.running !== "1") return;
  var total = parseInt(box.dataset.secondsLeft, 10);
  if (!isFinite(total)) return;
  var began = performance.now();
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var remaining = Math.max(0, total - Math.floor((performance.now() - began) / 1000));
    var h = Math.floor(remaining / 3600), m = Math.floor((remaining % 3600) / 60), s = remaining % 60;
    left.textContent = (h ? h + ":" + two(m) : String(m)) + ":" + two(s);
    if (remaining === 0) {
      box.classList.add("exam-clock-over");
      left.textContent = "0:00 (time is up: answers are no longer accepted)";
      return;
    }
    window.setTimeout(tick, 250);
  }
  tick();
})();
