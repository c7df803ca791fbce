// The run page while the model writes: its box follows the newest text until the reader
// scrolls up (then "Jump to newest" appears), and a meter shows the tokens so far, tokens/s
// and the time since the run started, ticking on its own. "started ... ago" stays current.
// Times come from the server (data-since and data-now, in epoch seconds), so a browser clock
// that is wrong does not matter. The websocket swaps #model-output (whole, or text appended)
// and #model-meter-data (the counts) in; a mutation observer notices both. Milestones are
// said in the page's polite region (below).
(function () {
  "use strict";
  var NEAR = 24; // px from the bottom that still count as "reading the newest text"
  var follow = true;
  var current = null; // the #model-output element in the page (the websocket may replace it)
  var lastTop = 0;
  var seenAt = new WeakMap(); // element -> when this page first saw it (Date.now())
  var pending = false;

  function atBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight <= NEAR;
  }

  // Seconds since the element's data-since, by the server's clock.
  function age(el) {
    var since = Number(el.getAttribute("data-since"));
    var now = Number(el.getAttribute("data-now"));
    if (!since || !now) return null;
    if (!seenAt.has(el)) seenAt.set(el, Date.now());
    return Math.max(0, now - since + (Date.now() - seenAt.get(el)) / 1000);
  }

  function count(n) {
    return Number(n).toLocaleString("en");
  }

  function clock(s) {
    s = Math.floor(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + " min";
  }

  function ago(s) {
    function unit(n, word) { return n + " " + word + (n === 1 ? "" : "s") + " ago"; }
    if (s < 5) return "just now";
    if (s < 60) return unit(Math.floor(s), "second");
    if (s < 3600) return unit(Math.floor(s / 60), "minute");
    if (s < 86400) return unit(Math.floor(s / 3600), "hour");
    return null; // older: the server's words stay
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text; // no change, no mutation
  }

  function drawMeter() {
    var meter = document.getElementById("model-meter");
    if (!meter) return;
    var data = document.getElementById("model-meter-data");
    var parts = [];
    var tokens = data && data.value !== "" ? Number(data.value) : 0;
    if (!tokens) {
      parts.push("waiting for the model's first token");
    } else {
      var calls = Number(data.getAttribute("data-calls")) || 1;
      var answer = Number(data.getAttribute("data-answer")) || tokens;
      var limit = data.getAttribute("data-limit") || meter.getAttribute("data-limit");
      if (calls > 1) {
        parts.push(count(tokens) + " tokens in " + calls + " answers (this one " + count(answer) +
          " of at most " + count(limit) + ")");
      } else {
        parts.push(count(tokens) + " of at most " + count(limit) + " tokens");
      }
      var rate = data.getAttribute("data-rate");
      if (rate) parts.push(rate + " tokens/s");
    }
    var elapsed = age(meter);
    if (elapsed !== null) parts.push(clock(elapsed) + " elapsed");
    setText(meter, parts.join(" · "));
    meter.hidden = false;
  }

  function drawAges() {
    var times = document.querySelectorAll("time[data-since]");
    for (var i = 0; i < times.length; i++) {
      var s = age(times[i]);
      var text = s === null ? null : ago(s);
      if (text) setText(times[i], text);
    }
  }

  function jumpButton() {
    return document.getElementById("model-jump");
  }

  function showJump(show) {
    var button = jumpButton();
    if (button && button.hidden === show) button.hidden = !show;
  }

  function followText() {
    var el = document.getElementById("model-output");
    if (!el || !el.classList.contains("live")) { current = null; return; }
    if (el !== current) { current = el; lastTop = 0; } // replaced: starts at the top
    if (follow) {
      el.scrollTop = el.scrollHeight;
      lastTop = el.scrollTop;
      showJump(false);
    } else {
      showJump(!atBottom(el));
    }
  }

  // What a screen reader hears while the model writes (site.js's polite region): the status
  // line when it changes, every LINES lines of text and every STEPS emulated steps, and the
  // verdict once the finished page is in; never the text itself token by token.
  var LINES = 20, STEPS = 10;
  var heard = { status: null, lines: 0, steps: 0, verdict: false };
  function announce(text) { if (window.playgroundAnnounce) window.playgroundAnnounce(text); }
  function milestones() {
    var status = document.getElementById("run-status");
    var now = status ? status.textContent.replace(/\s+/g, " ").trim() : "";
    if (status && heard.status !== null && now !== heard.status) announce(now);
    if (status) heard.status = now;
    var output = document.getElementById("model-output");
    if (output && output.classList.contains("live")) {
      var lines = Math.floor(output.textContent.split("\n").length / LINES) * LINES;
      if (lines > heard.lines) { heard.lines = lines; announce("The model has written " + lines + " lines."); }
    }
    var steps = document.querySelectorAll("#emulated-steps > li").length;
    steps = Math.floor(steps / STEPS) * STEPS;
    if (steps > heard.steps) { heard.steps = steps; announce(steps + " emulated steps so far."); }
    var verdict = document.getElementById("verdict");
    if (verdict && heard.status !== null && !heard.verdict && !document.getElementById("run-live")) {
      heard.verdict = true;
      var headline = verdict.querySelector("strong");
      announce("The run finished. " + (headline ? headline.textContent : verdict.textContent));
    }
  }

  function update() {
    pending = false;
    followText();
    drawMeter();
    milestones();
  }

  function soon() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(update);
  }

  // Only the reader scrolling up stops following (new text only ever moves the end down, and
  // our own scrolling goes down); reaching the end again resumes it.
  document.addEventListener("scroll", function (event) {
    var el = event.target;
    if (!(el instanceof HTMLElement) || el !== current) return;
    if (el.scrollTop < lastTop - 2) follow = false;
    if (atBottom(el)) follow = true;
    lastTop = el.scrollTop;
    showJump(!follow);
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("#model-jump") : null;
    if (!button) return;
    follow = true;
    update();
  });

  document.addEventListener("DOMContentLoaded", function () {
    new MutationObserver(soon).observe(document.body, {
      childList: true, subtree: true, characterData: true, attributes: true,
      attributeFilter: ["value", "data-rate", "data-calls", "data-answer"],
    });
    update();
    drawAges();
    window.setInterval(function () { drawMeter(); drawAges(); }, 500);
  });
})();
