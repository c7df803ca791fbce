// Step-through viewer for a trace (schema v3): the line, every frame on the stack (choose one to
// see its variables), the globals, the objects drawn once each with what they hold (a name or an
// item bound to an object shows its # badge: two names with one badge are one object), and the
// output. Renders one step at a time, so a 10,000-step trace costs no more than a short one.
// Predict mode holds each new state back until the user reveals it. Debugger moves: over a call
// (the next step in this frame), out of the frame, go to step n. On a stepping run's page
// (playground/emulation/stepping.py) the model's prediction of each step sits beside the real
// state, marked right or wrong, with the true values where it was wrong; "next wrong" runs to
// the next step it got wrong.
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
    if (model) model.draw(index);
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

  // Debugger moves. Each step's frame depth, as track() builds the stack: a call's step is one
  // deeper than its caller's, its return or unwind still in it; one scan from the current step
  // finds where "over" and "out" go.
  var depths = new Int32Array(steps.length);
  (function () {
    var depth = 0, leaving = false;
    for (var i = 0; i < steps.length; i++) {
      if (leaving) { depth--; leaving = false; }
      if (steps[i].event === "call" || depth <= 0) depth++;
      depths[i] = depth;
      if (steps[i].event === "return" || steps[i].event === "unwind") leaving = true;
    }
  })();
  function firstAfter(test) {
    for (var j = current + 1; j < steps.length; j++) if (test(depths[j])) return j;
    return steps.length - 1; // the frame never comes back (or never ends): the last step
  }
  function over() { var d = depths[current]; show(firstAfter(function (x) { return x <= d; })); return true; }
  function out() { var d = depths[current]; show(firstAfter(function (x) { return x < d; })); return true; }
  function step() { show(current + 1); return true; }
  function back() { show(current - 1); return true; }
  var gotoForm = document.getElementById("goto-form");
  var gotoInput = document.getElementById("goto-step");
  function focusGoto() { if (!gotoInput) return false; gotoInput.focus(); gotoInput.select(); return true; }
  if (gotoForm && gotoInput) gotoForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var wanted = Math.round(Number(gotoInput.value));
    if (!gotoInput.value || !(wanted >= 1 && wanted <= steps.length)) {
      info.textContent = "There is no step " + gotoInput.value + ": the steps go from 1 to " + steps.length + ".";
      return;
    }
    show(wanted - 1);
  });

  var model = modelPanel();
  var keys = {
    e: toException, E: toException, r: reveal, R: reveal, p: togglePredict, P: togglePredict,
    n: over, N: over, o: out, O: out, s: step, S: step, b: back, B: back, g: focusGoto, G: focusGoto,
  };
  if (model) { keys.d = keys.D = model.nextWrong; }
  // The letter keys can be turned off (WCAG 2.1.4: speech input types letters too); the choice
  // is kept in this browser. Arrows, Home and End stay.
  var letters = document.getElementById("letter-keys");
  var LETTERS = "playground.letter-keys";
  if (letters) {
    try { letters.checked = window.localStorage.getItem(LETTERS) !== "off"; } catch (e) { /* no storage */ }
    letters.addEventListener("change", function () {
      try { window.localStorage.setItem(LETTERS, letters.checked ? "on" : "off"); } catch (e) { /* no storage */ }
    });
  }
  Object.keys(keys).forEach(function (key) {
    var act = keys[key];
    keys[key] = function () { return letters && !letters.checked ? false : act(); };
  });
  TS.stepper({
    slider: slider, buttons: viewer.querySelectorAll("[data-go]"), attribute: "data-go",
    count: steps.length, show: show, at: function () { return current; },
    jumps: { exception: toException, over: over, out: out, wrong: model ? model.nextWrong : null },
    keys: keys,
  });

  // The model's prediction of the step shown, on a stepping run's page: its marks (one per step
  // it was asked for, by the real step's "i"), drawn as text only; null on any other page.
  function modelPanel() {
    var data = document.getElementById("stepping-marks");
    var box = document.getElementById("model-step");
    if (!data || !box) return null;
    var marks;
    try { marks = JSON.parse(data.textContent); } catch (e) { return null; }
    if (!Array.isArray(marks)) return null;
    var markEl = document.getElementById("model-mark");
    var table = document.getElementById("model-vs");
    var body = table.querySelector("tbody");
    var realHead = document.getElementById("model-vs-real");
    var raw = document.getElementById("model-raw");
    var wrongButton = document.getElementById("next-wrong");
    var free = viewer.getAttribute("data-stepping") === "free";
    var cap = Number(viewer.getAttribute("data-cap")) || 0;
    var indexOf = new Map();
    steps.forEach(function (s, k) { indexOf.set(typeof s.i === "number" ? s.i : k, k); });
    var byIndex = new Map();
    var wrong = [];
    marks.forEach(function (m) {
      if (!m || typeof m !== "object") return;
      var k = indexOf.get(m.real_step);
      if (k === undefined) return;
      byIndex.set(k, m);
      if (m.status !== "correct") wrong.push(k);
    });
    wrong.sort(function (a, b) { return a - b; });
    // The call's first step: the model is asked from there on (the module's definitions before
    // it are not asked); later steps without a mark are past the cap of model calls.
    var callStart = -1;
    for (var c = 0; c < steps.length; c++) if (steps[c].func !== "<module>") { callStart = c; break; }
    if (wrongButton && !wrong.length) {
      wrongButton.disabled = true;
      wrongButton.title = "The model got every step it was asked right";
    }
    var modelLine = null;

    function text(value) { return value == null ? "" : String(value); }
    function where(line, event) {
      if (line == null) return "(no line)";
      return event && event !== "line" ? "line " + line + " (" + event + ")" : "line " + line;
    }
    function row(part, said, truth, right) {
      var tr = el("tr", right === false ? "wrong" : right === true ? "right" : "");
      var th = el("th", null, part);
      th.scope = "row";
      tr.appendChild(th);
      var td = el("td");
      if (right !== undefined && right !== null) td.appendChild(el("span", "mark", right ? "✓ " : "✗ "));
      td.appendChild(said === null ? el("span", "muted", "(nothing)") : el("code", null, said));
      tr.appendChild(td);
      var real = el("td", "truth");
      real.appendChild(truth === null ? el("span", "muted", "(nothing)") : el("code", null, truth));
      tr.appendChild(real);
      body.appendChild(tr);
    }
    function markLineOf(line) {
      if (modelLine) modelLine.classList.remove("emu-line");
      modelLine = null;
      var node = line == null ? null : document.getElementById("line-" + line);
      if (node && !node.classList.contains("current-line") && !node.classList.contains("error-line")) {
        node.classList.add("emu-line");
        modelLine = node;
      }
    }
    function draw(index) {
      var m = byIndex.get(index);
      body.textContent = "";
      raw.hidden = true;
      box.className = "model-step";
      markLineOf(null);
      if (!m) {
        table.hidden = true;
        box.classList.add("not-asked");
        markEl.textContent = index < callStart || callStart < 0 ?
          "Not asked: the model predicts the call's steps, from its first one (step " + (callStart + 1) + ")." :
          "Not asked: past the cap of " + (cap || "the") + " model calls a run, this step was not graded.";
        return;
      }
      var real = steps[index];
      var ok = m.status === "correct";
      box.classList.add(ok ? "right" : "wrong");
      var said = m.status === "unparsable" ? "✗ unreadable: " + text(m.why) :
        ok ? "✓ right: every part of this step predicted" :
        "✗ wrong: " + (Array.isArray(m.wrong) ? m.wrong.join(", ") : "");
      if (!ok && free) said += " · re-synced here: the real step was given back";
      markEl.textContent = said;
      var p = m.predicted && typeof m.predicted === "object" ? m.predicted : null;
      if (!p) { // unreadable (or a mark from before the viewer): the raw answer, as text
        table.hidden = true;
        raw.hidden = false;
        raw.querySelector("code").textContent = m.answer == null ? "(no answer)" : text(m.answer);
        return;
      }
      table.hidden = false;
      table.classList.toggle("agrees", ok);
      realHead.hidden = ok;
      var parts = m.parts || {};
      var event = real.event || "line";
      row("next line", where(p.line, p.event), where(real.line, event), parts.line);
      if (!parts.line) markLineOf(p.line);
      var realVars = real.locals || {};
      var named = {};
      var variables = m.variables || {};
      Object.keys(realVars).concat(Object.keys(p.changed || {})).forEach(function (name) {
        if (name === "__return__" || named[name]) return;
        named[name] = true;
        var got = p.changed && Object.prototype.hasOwnProperty.call(p.changed, name) ? text(p.changed[name]) : null;
        var truth = Object.prototype.hasOwnProperty.call(realVars, name) ? text(realVars[name]) : null;
        row(name + " =", got, truth, variables[name]);
      });
      if (p.printed || real.stdout || parts.output === false) {
        row("printed", p.printed ? text(p.printed) : null, real.stdout ? text(real.stdout) : null, parts.output);
      }
      var realValue = event === "return" ? text(realVars.__return__) :
        event === "exception" || event === "unwind" ? text(real.exception) : null;
      var saidValue = p.returns !== undefined ? text(p.returns) : p.exception !== undefined ? text(p.exception) : null;
      if (realValue !== null || saidValue !== null || parts.value === false) {
        row(event === "return" || p.returns !== undefined ? "returns" : "raises", saidValue, realValue, parts.value);
      }
      // Right: the model's column is the run's; only where it was wrong is the truth beside it.
      body.querySelectorAll("td.truth").forEach(function (cell) { cell.hidden = ok; });
    }
    function nextWrong() {
      for (var w = 0; w < wrong.length; w++) {
        if (wrong[w] > current) { show(wrong[w]); return true; }
      }
      markEl.textContent = wrong.length ? "No step after this one was predicted wrong." :
        "The model got every step it was asked right.";
      return true;
    }
    return { draw: draw, nextWrong: nextWrong };
  }

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
