// Step-through viewer for a trace (schema v2). Renders one step at a time, so a 10,000-step
// trace costs no more than a short one; frame states are rebuilt from checkpoints.
// Every string from the trace is set with textContent: nothing from a program becomes markup.
(function () {
  "use strict";
  var dataEl = document.getElementById("trace-steps");
  var viewer = document.getElementById("viewer");
  if (!dataEl || !viewer) return;
  var steps = JSON.parse(dataEl.textContent);
  if (!steps.length) {
    document.getElementById("step-info").textContent = "No steps were recorded.";
    return;
  }
  var slider = document.getElementById("step-slider");
  var info = document.getElementById("step-info");
  var framesEl = document.getElementById("frames");
  var varsBody = document.querySelector("#vars tbody");
  var outputEl = document.getElementById("output");
  var current = -1;
  // Set when the stored trace was capped in size: the steps after the last one were dropped.
  var totalSteps = Number(viewer.getAttribute("data-total-steps")) || 0;
  var markedLines = [];

  var track = window.TraceState.track(steps);
  // Where the exception that stopped the program was raised (the server finds it): the viewer
  // offers to jump there and opens there.
  var raisedAt = viewer.hasAttribute("data-exception-step") ?
    Number(viewer.getAttribute("data-exception-step")) : -1;
  if (!(raisedAt >= 0 && raisedAt < steps.length)) raisedAt = -1;
  var stateAt = track.stateAt;

  function markLine(line, cls) {
    var el = document.getElementById("line-" + line);
    if (el) { el.classList.add(cls); markedLines.push([el, cls]); }
    return el;
  }
  function describe(step) {
    var where = step.func === "<module>" ? "at module level" : "in " + step.func + "()";
    if (step.event === "exception" || step.event === "unwind") {  // `current` is this step's index
      return window.TraceState.exceptionWords(step, steps[current - 1], current === steps.length - 1);
    }
    if (step.event === "call") return "call " + (step.func === "<module>" ? "the program" : step.func + "()");
    if (step.event === "return") return "return from " + (step.func === "<module>" ? "the program" : step.func + "()");
    return "line " + step.line + " " + where;
  }
  function row(name, value, changed) {
    var tr = document.createElement("tr");
    if (changed) tr.className = "changed";
    var th = document.createElement("th");
    th.textContent = name === "__return__" ? "return value" : name;
    var td = document.createElement("td");
    var code = document.createElement("code");
    code.textContent = value;
    td.appendChild(code);
    tr.appendChild(th);
    tr.appendChild(td);
    return tr;
  }

  function show(index) {
    index = Math.max(0, Math.min(steps.length - 1, index));
    if (index === current) return;
    current = index;
    var step = steps[index];
    var state = stateAt(index);
    markedLines.forEach(function (m) { m[0].classList.remove(m[1]); });
    markedLines = [];
    if (index > 0 && steps[index - 1].line !== step.line) markLine(steps[index - 1].line, "prev-line");
    var raising = step.event === "exception" || step.event === "unwind";
    var el = markLine(step.line, raising ? "error-line" : "current-line");
    if (el) el.scrollIntoView({ block: "nearest" });
    slider.value = String(index);
    info.textContent = "Step " + (index + 1) + " of " + steps.length + " · " + describe(step);
    if (totalSteps && index === steps.length - 1) {
      info.textContent += " · trace truncated here: the program made " + totalSteps.toLocaleString() + " steps";
    }

    framesEl.textContent = "";
    for (var f = state.stack.length - 1; f >= 0; f--) {
      var li = document.createElement("li");
      li.textContent = state.stack[f].func === "<module>" ? "module" : state.stack[f].func + "()";
      if (f === state.stack.length - 1) li.className = "top";
      framesEl.appendChild(li);
    }
    varsBody.textContent = "";
    var top = state.stack[state.stack.length - 1];
    var changed = step.locals || {};
    if (top && top.vars.size) {
      top.vars.forEach(function (value, name) { varsBody.appendChild(row(name, value, name in changed)); });
    } else {
      var tr = document.createElement("tr");
      var td = document.createElement("td");
      td.className = "muted";
      td.textContent = "(no variables yet)";
      tr.appendChild(td);
      varsBody.appendChild(tr);
    }
    outputEl.textContent = track.outputAt(index);
    outputEl.scrollTop = outputEl.scrollHeight;
    if (history.replaceState) history.replaceState(null, "", "#step-" + (index + 1));
  }

  function toException() {
    if (raisedAt < 0) return false;
    show(raisedAt);
    return true;
  }
  window.TraceState.stepper({
    slider: slider, buttons: viewer.querySelectorAll("[data-go]"), attribute: "data-go",
    count: steps.length, show: show, at: function () { return current; },
    jumps: { exception: toException }, keys: { e: toException, E: toException },
  });

  var fromHash = /^#step-(\d+)$/.exec(window.location.hash);
  show(fromHash ? Number(fromHash[1]) - 1 : raisedAt >= 0 ? raisedAt : 0);
})();
