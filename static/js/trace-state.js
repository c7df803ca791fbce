// The state of a trace (schema v3) at any step, shared by the trace viewer and the side-by-side
// viewer: frames rebuilt from each step's changed variables, from checkpoints every
// CHECKPOINT_EVERY steps, so stepping through 10,000 steps stays instant; the objects (the
// steps' `heap` deltas) looked up by version, never copied. Also the stepping controls (slider,
// buttons, keys) that both viewers share.
(function () {
  "use strict";
  var CHECKPOINT_EVERY = 256;

  // A frame: its function, its variables (name -> repr), the object id of each variable bound to
  // a mutable object (name -> id, schema v3), and the line it is at. `globals`: the program's
  // frame once it has returned (a call-mode run then calls the function), so globals stay shown.
  function emptyState() { return { stack: [], popPending: false, globals: null }; }
  function copyFrame(f) { return { func: f.func, vars: new Map(f.vars), ids: new Map(f.ids), line: f.line }; }
  function copyState(s) {
    return { stack: s.stack.map(copyFrame), popPending: s.popPending, globals: s.globals };
  }
  // A call (or the first step) opens a frame, a return or an unwind closes it before the next step.
  function apply(state, step) {
    if (state.popPending) {
      var left = state.stack.pop();
      if (left && left.func === "<module>" && state.stack.length === 0) state.globals = left;
      state.popPending = false;
    }
    if (step.event === "call" || state.stack.length === 0) {
      state.stack.push({ func: step.func, vars: new Map(), ids: new Map(), line: step.line });
    }
    var frame = state.stack[state.stack.length - 1];
    frame.line = step.line;
    var locals = step.locals || {};
    var ids = step.ids || {};
    var names = Object.keys(locals);
    for (var n = 0; n < names.length; n++) {
      frame.vars.set(names[n], locals[names[n]]);
      // A name shown without an id is bound to an immutable value now (or past the id limit).
      if (Object.prototype.hasOwnProperty.call(ids, names[n])) frame.ids.set(names[n], ids[names[n]]);
      else frame.ids.delete(names[n]);
    }
    if (step.event === "return" || step.event === "unwind") state.popPending = true;
  }

  function frameName(func) { return func === "<module>" ? "the program" : func ? func + "()" : "the frame"; }
  // An exception or unwind step in words: which exception, from where, to where. `previous` is
  // the step before (an exception arriving from a callee follows the callee's unwind); `last`
  // whether nothing follows (an exception leaving the program's code then stopped it); null
  // when unknown (a model's trace names no caller).
  function exceptionWords(step, previous, last) {
    var exception = step.exception || "an exception";
    if (step.event === "exception") {
      if (previous && previous.event === "unwind" && previous.exception === step.exception) {
        return exception + " arrives in " + frameName(step.func) + " at line " + step.line +
          ", from " + frameName(previous.func);
      }
      return "line " + step.line + " raises " + exception;
    }
    if (exception === "GeneratorExit" && !step.to) {
      return "the generator " + frameName(step.func) + " is closed (GeneratorExit) and ends";
    }
    var leaves = exception + " leaves " + frameName(step.func) + " (line " + step.line + ")";
    if (step.to) return leaves + ", back to " + frameName(step.to) + " at line " + step.to_line;
    if (last === null || last === undefined) return leaves;
    return leaves + (last ? ": nothing catches it, the program stops" : ", out of the program's code");
  }

  // stateAt(index): the state after steps 0..index (-1: before the first); outputAt(index):
  // everything printed up to and including that step.
  function track(steps) {
    var checkpoints = []; // checkpoints[k] = state before applying step k * CHECKPOINT_EVERY
    var allOutput = "";
    var outputEnd = new Array(steps.length);
    for (var i = 0; i < steps.length; i++) {
      allOutput += steps[i].stdout || "";
      outputEnd[i] = allOutput.length;
    }
    function stateAt(index) {
      if (index < 0) return emptyState();
      var k = Math.floor(index / CHECKPOINT_EVERY);
      while (checkpoints.length <= k) {
        var c = checkpoints.length;
        var base = c === 0 ? emptyState() : copyState(checkpoints[c - 1]);
        for (var j = (c - 1) * CHECKPOINT_EVERY; c > 0 && j < c * CHECKPOINT_EVERY; j++) apply(base, steps[j]);
        checkpoints.push(base);
      }
      var state = copyState(checkpoints[k]);
      for (var s = k * CHECKPOINT_EVERY; s <= index; s++) apply(state, steps[s]);
      return state;
    }
    function outputAt(index) { return index < 0 ? "" : allOutput.slice(0, outputEnd[index]); }
    // Every recorded version of each object: id -> {at: [step indexes], entries: [entries]}.
    var versions = new Map();
    for (var h = 0; h < steps.length; h++) {
      var heap = steps[h].heap;
      if (!heap) continue;
      var keys = Object.keys(heap);
      for (var q = 0; q < keys.length; q++) {
        var id = Number(keys[q]);
        var v = versions.get(id);
        if (!v) { v = { at: [], entries: [] }; versions.set(id, v); }
        v.at.push(h);
        v.entries.push(heap[keys[q]]);
      }
    }
    // objectAt(id, index): the object as of step `index`: {entry, since (the step that recorded
    // this version), first (the step that recorded it first)}, or null if not recorded by then.
    function objectAt(id, index) {
      var v = versions.get(id);
      if (!v || v.at[0] > index) return null;
      var lo = 0, hi = v.at.length - 1;
      while (lo < hi) {
        var mid = (lo + hi + 1) >> 1;
        if (v.at[mid] <= index) lo = mid; else hi = mid - 1;
      }
      return { entry: v.entries[lo], since: v.at[lo], first: v.at[0] };
    }
    return { stateAt: stateAt, outputAt: outputAt, objectAt: objectAt, hasObjects: versions.size > 0 };
  }

  // The stepping controls of a viewer: the slider (drawn once per frame however fast it moves),
  // the buttons whose `attribute` says first, prev, next, last or one of the viewer's own `jumps`,
  // and the keys (arrows, Home, End, and the viewer's own `keys`, each returning whether it
  // acted), which leave typing in a field alone. `show(index)` draws a step and ignores an index
  // out of range; `at()` is the index shown now; `count` how many there are.
  function stepper(o) {
    var pending = null;
    o.slider.addEventListener("input", function () {
      pending = Number(o.slider.value);
      window.requestAnimationFrame(function () { if (pending !== null) { o.show(pending); pending = null; } });
    });
    o.buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var go = button.getAttribute(o.attribute);
        if (o.jumps && o.jumps[go]) { o.jumps[go](); return; }
        var current = o.at();
        o.show(go === "first" ? 0 : go === "last" ? o.count - 1 : go === "prev" ? current - 1 : current + 1);
      });
    });
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      // Typing in a field keeps its keys; a checkbox, a button or the slider does not type.
      var typing = target instanceof HTMLElement && (target.isContentEditable ||
        /^(TEXTAREA|SELECT)$/.test(target.tagName) || (target.tagName === "INPUT" &&
          !/^(checkbox|radio|range|button|submit)$/.test(target.type) && target !== o.slider));
      if (typing || event.altKey || event.ctrlKey || event.metaKey) return;
      var moves = { ArrowRight: 1, ArrowLeft: -1 };
      var own = o.keys && o.keys[event.key];
      if (event.key in moves) { o.show(o.at() + moves[event.key]); event.preventDefault(); }
      else if (event.key === "Home") { o.show(0); event.preventDefault(); }
      else if (event.key === "End") { o.show(o.count - 1); event.preventDefault(); }
      else if (own && own()) event.preventDefault();
    });
  }

  // An object's badge: its # in a hue of its own (the same wherever it is referred to), a
  // button where choosing it leads somewhere (the trace viewer's objects), a plain mark
  // otherwise (the side-by-side panels: each trace numbers its own objects).
  function hue(id) { return String((id * 137) % 360); }
  function badge(id, what, interactive) {
    var node = document.createElement(interactive ? "button" : "span");
    node.className = "ref";
    node.textContent = "#" + id;
    if (interactive) node.type = "button";
    node.setAttribute("data-ref", String(id));
    node.style.setProperty("--hue", hue(id));
    node.setAttribute("aria-label", "object #" + id + " (" + what + ")");
    node.title = what + " #" + id;
    return node;
  }

  window.TraceState = {
    track: track, exceptionWords: exceptionWords, stepper: stepper, frameName: frameName,
    badge: badge, hue: hue,
  };
})();
