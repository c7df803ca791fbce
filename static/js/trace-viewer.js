// Step-through viewer for a trace (schema v3): the line, every frame on the stack (choose one to
// see its variables), the globals, the objects drawn once each with what they hold (a name or an
// item bound to an object shows its # badge: two names with one badge are one object), and the
// output. Renders one step at a time, so a 10,000-step trace costs no more than a short one.
// Predict mode holds each new state back until the user reveals it.
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
  var globalsBox = document.getElementById("globals-box");
  var globalsBody = document.querySelector("#globals tbody");
  var heapEl = document.getElementById("heap");
  var outputEl = document.getElementById("output");
  var predictBox = document.getElementById("predict-mode");
  var revealButton = document.getElementById("reveal");
  var prompt = document.getElementById("predict-prompt");
  var current = -1;
  var chosen = -1; // the chosen frame's depth (0: outermost); -1: the innermost
  var chosenFunc = null; // and its function (another frame at that depth ends the choice)
  var held = false; // predict mode: the state shown is the one before this step
  // Set when the stored trace was capped in size: the steps after the last one were dropped.
  var totalSteps = Number(viewer.getAttribute("data-total-steps")) || 0;
  var markedLines = [];

  var TS = window.TraceState;
  var track = TS.track(steps);
  var heap = TS.heapView({ container: heapEl, track: track, prefix: "obj-" });
  // Where the exception that stopped the program was raised (the server finds it): the viewer
  // offers to jump there and opens there.
  var raisedAt = viewer.hasAttribute("data-exception-step") ?
    Number(viewer.getAttribute("data-exception-step")) : -1;
  if (!(raisedAt >= 0 && raisedAt < steps.length)) raisedAt = -1;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function markLine(line, cls) {
    var node = document.getElementById("line-" + line);
    if (node) { node.classList.add(cls); markedLines.push([node, cls]); }
    return node;
  }
  function describe(step, index) {
    var where = step.func === "<module>" ? "at module level" : "in " + step.func + "()";
    if (step.event === "exception" || step.event === "unwind") {
      return TS.exceptionWords(step, steps[index - 1], index === steps.length - 1);
    }
    if (step.event === "call") return "call " + (step.func === "<module>" ? "the program" : step.func + "()");
    if (step.event === "return") return "return from " + (step.func === "<module>" ? "the program" : step.func + "()");
    return "line " + step.line + " " + where;
  }
  function kindOf(entry) { return entry.type || entry.kind; }

  // Hovering or focusing a badge lights up the object and every reference to it; choosing it
  // scrolls to the object.
  function badge(id, index) {
    var found = track.objectAt(id, index);
    return TS.badge(id, found ? kindOf(found.entry) : "object", true);
  }
  function valueCell(repr, id, index) {
    var td = el("td");
    if (id !== undefined) td.appendChild(badge(id, index));
    td.appendChild(el("code", null, repr));
    return td;
  }
  function varRows(body, frame, changed, index) {
    body.textContent = "";
    if (frame) {
      frame.vars.forEach(function (value, name) {
        if (name === "__return__" && frame.func === "<module>") return; // a program returns nothing
        var row = el("tr", changed && name in changed ? "changed" : "");
        row.appendChild(el("th", null, name === "__return__" ? "return value" : name));
        row.appendChild(valueCell(value, frame.ids.get(name), index));
        body.appendChild(row);
      });
    }
    if (!body.firstChild) {
      var tr = el("tr");
      tr.appendChild(el("td", "muted", "(no variables yet)"));
      body.appendChild(tr);
    }
  }

  function drawFrames(state, index, step) {
    var stack = state.stack;
    var depth = chosen >= 0 && chosen < stack.length ? chosen : stack.length - 1;
    framesEl.textContent = "";
    for (var f = stack.length - 1; f >= 0; f--) {
      var li = el("li", f === stack.length - 1 ? "top" : "");
      var button = el("button", "frame-button", stack[f].func === "<module>" ? "module" : stack[f].func + "()");
      button.type = "button";
      button.setAttribute("data-depth", String(f));
      button.setAttribute("aria-pressed", f === depth ? "true" : "false");
      button.title = "at line " + stack[f].line + (f === stack.length - 1 ? " (the running frame)" : ", waiting for the call above");
      li.appendChild(button);
      framesEl.appendChild(li);
    }
    var frame = stack[depth];
    if (frame && depth !== stack.length - 1) markLine(frame.line, "frame-line");
    var top = depth === stack.length - 1;
    document.getElementById("vars-title").firstChild.textContent =
      frame ? "Variables of " + TS.frameName(frame.func) + " " : "Variables ";
    varRows(varsBody, frame, top && !held ? step.locals || {} : null, index);
    // The program's frame: at the bottom of the stack, or kept after it returned (a call).
    var globals = stack.length && stack[0].func === "<module>" ? stack[0] : state.globals;
    globalsBox.hidden = !globals || globals === frame;
    if (!globalsBox.hidden) varRows(globalsBody, globals, null, index);
    var shown = stack.map(function (f, depth) {
      return { func: f.func, ids: f.ids, number: stack.length - depth };
    });
    if (globals && stack.indexOf(globals) < 0) shown.unshift({ func: "<module>", ids: globals.ids });
    heap.draw(index, shown, held);
  }

  function show(index, reveal) {
    index = Math.max(0, Math.min(steps.length - 1, index));
    if (index === current && !reveal) return;
    var forward = index === current + 1;
    current = index;
    // Predict mode: stepping forward one step marks the line that just ran and keeps the state
    // from before it until the user reveals it.
    held = predictBox.checked && forward && index > 0 && !reveal;
    render();
    if (history.replaceState) history.replaceState(null, "", "#step-" + (index + 1));
  }
  function render() {
    var index = current;
    var step = steps[index];
    var stateIndex = held ? index - 1 : index;
    var state = track.stateAt(stateIndex);
    if (chosen >= state.stack.length || (chosen >= 0 && state.stack[chosen].func !== chosenFunc)) chosen = -1;
    markedLines.forEach(function (m) { m[0].classList.remove(m[1]); });
    markedLines = [];
    if (index > 0 && steps[index - 1].line !== step.line) markLine(steps[index - 1].line, "prev-line");
    var raising = step.event === "exception" || step.event === "unwind";
    var node = markLine(step.line, raising ? "error-line" : "current-line");
    if (node) node.scrollIntoView({ block: "nearest" });
    slider.value = String(index);
    info.textContent = "Step " + (index + 1) + " of " + steps.length + " · " + describe(step, index);
    if (totalSteps && index === steps.length - 1) {
      info.textContent += " · trace truncated here: the program made " + totalSteps.toLocaleString() + " steps";
    }
    drawFrames(state, stateIndex, step);
    outputEl.textContent = track.outputAt(stateIndex);
    outputEl.scrollTop = outputEl.scrollHeight;
    revealButton.hidden = !held;
    prompt.hidden = !held;
    viewer.classList.toggle("holding", held);
    if (held) {
      var ran = steps[index - 1];
      prompt.textContent = "Line " + ran.line + " ran" +
        (ran.func && ran.func !== "<module>" ? " in " + ran.func + "()" : "") +
        ". What changed? The state below is from before it: reveal (R) to check.";
    }
  }

  function toException() {
    if (raisedAt < 0) return false;
    show(raisedAt);
    return true;
  }
  function reveal() {
    if (!held) return false;
    held = false;
    render();
    return true;
  }
  function togglePredict() {
    predictBox.checked = !predictBox.checked;
    return true;
  }
  revealButton.addEventListener("click", function () {
    reveal();
    viewer.querySelector('[data-go="next"]').focus(); // the Reveal button is hidden now
  });
  predictBox.addEventListener("change", function () { if (!predictBox.checked) reveal(); });
  framesEl.addEventListener("click", function (event) {
    var button = event.target instanceof Element && event.target.closest(".frame-button");
    if (!button) return;
    var stack = track.stateAt(held ? current - 1 : current).stack;
    var depth = Number(button.getAttribute("data-depth"));
    chosen = depth === stack.length - 1 ? -1 : depth;
    chosenFunc = stack[depth] ? stack[depth].func : null;
    render();
    var again = framesEl.querySelector('[data-depth="' + depth + '"]');
    if (again) again.focus();
  });
  TS.linkObjects(viewer, "obj-");

  TS.stepper({
    slider: slider, buttons: viewer.querySelectorAll("[data-go]"), attribute: "data-go",
    count: steps.length, show: show, at: function () { return current; },
    jumps: { exception: toException },
    keys: { e: toException, E: toException, r: reveal, R: reveal, p: togglePredict, P: togglePredict },
  });

  var fromHash = /^#step-(\d+)$/.exec(window.location.hash);
  show(fromHash ? Number(fromHash[1]) - 1 : raisedAt >= 0 ? raisedAt : 0);
  // A link to "#step-N" on the page (a probe's step, templates/runs/_probes.html) shows that
  // step here; show() itself only replaces the address, which fires no hashchange.
  window.addEventListener("hashchange", function () {
    var wanted = /^#step-(\d+)$/.exec(window.location.hash);
    if (!wanted) return;
    show(Number(wanted[1]) - 1);
    viewer.scrollIntoView({ block: "start" });
  });
})();
