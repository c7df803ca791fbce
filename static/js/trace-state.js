// The state of a trace (schema v1) at any step, shared by the trace viewer and the side-by-side
// viewer: frames rebuilt from each step's changed variables, from checkpoints every
// CHECKPOINT_EVERY steps, so stepping through 10,000 steps stays instant.
(function () {
  "use strict";
  var CHECKPOINT_EVERY = 256;

  function emptyState() { return { stack: [], popPending: false }; }
  function copyState(s) {
    return {
      stack: s.stack.map(function (f) { return { func: f.func, vars: new Map(f.vars) }; }),
      popPending: s.popPending,
    };
  }
  // A call (or the first step) opens a frame, a return closes it before the next step.
  function apply(state, step) {
    if (state.popPending) { state.stack.pop(); state.popPending = false; }
    if (step.event === "call" || state.stack.length === 0) {
      state.stack.push({ func: step.func, vars: new Map() });
    }
    var frame = state.stack[state.stack.length - 1];
    var locals = step.locals || {};
    var names = Object.keys(locals);
    for (var n = 0; n < names.length; n++) frame.vars.set(names[n], locals[names[n]]);
    if (step.event === "return") state.popPending = true;
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
    return { stateAt: stateAt, outputAt: outputAt };
  }

  window.TraceState = { track: track };
})();
