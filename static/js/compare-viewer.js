// Side-by-side viewer: the real trace and the model's, stepped together along the comparison's
// alignment (comparison.steps: one pair of step "i" values per position, either may be null).
// Each trace's frame state is rebuilt from its own `locals` deltas from checkpoints, as in
// trace-viewer.js, so a 10,000-step pair of traces costs no more per step than a short one.
// Every string from a trace or the comparison is set with textContent: nothing becomes markup.
(function () {
  "use strict";
  var root = document.getElementById("cmp");
  var pairsEl = document.getElementById("pairs");
  if (!root || !pairsEl) return;

  function parse(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }
  function byId(id) { return document.getElementById(id); }

  var pairs = parse("pairs");
  if (!Array.isArray(pairs)) pairs = [];
  var firstDiv = parse("first-divergence-data");
  if (!firstDiv || typeof firstDiv !== "object") firstDiv = null;
  // Some of the model's steps were simulated lines (Chain of Code): the method's fact, not its name.
  var simulatesLines = root.getAttribute("data-lm-lines") === "true";
  var info = byId("cmp-info");
  var slider = byId("cmp-slider");
  var jumpButton = byId("cmp-jump");
  var strip = byId("cmp-strip");
  var banner = byId("cmp-divergence");
  var buttons = root.querySelectorAll("[data-cmp-go]");
  if (!pairs.length) {
    info.textContent = "There are no steps to compare.";
    slider.disabled = true;
    for (var b = 0; b < buttons.length; b++) buttons[b].disabled = true;
    return;
  }

  var MAX_CELLS = 2000;
  // An exception the model got wrong (missed, invented, "return None" where it unwound) is as
  // serious as going elsewhere: red, like the control flow.
  // Right values in the wrong objects (a copy where the program shares one): like a value.
  var STATUS_CLASS = { match: "s-match", value: "s-value", identity: "s-value", output: "s-output", control_flow: "s-flow", exception: "s-flow" };
  var STATUS_RANK = { match: 0, output: 1, value: 1, identity: 1, control_flow: 2, exception: 2 };

  function text(value) { return typeof value === "string" ? value : value == null ? "" : String(value); }

  // One trace: its steps (normalised, since the emulated one was written by a model), a map from
  // step "i" to list index, the output so far at each step, and checkpointed frame states.
  function makeTrack(raw) {
    var steps = [];
    var indexOf = new Map();
    if (!Array.isArray(raw)) raw = [];
    for (var r = 0; r < raw.length; r++) {
      var s = raw[r];
      if (!s || typeof s !== "object" || Array.isArray(s)) continue;
      var locals = {};
      if (s.locals && typeof s.locals === "object" && !Array.isArray(s.locals)) {
        var keys = Object.keys(s.locals);
        for (var k = 0; k < keys.length; k++) locals[keys[k]] = text(s.locals[keys[k]]);
      }
      var step = {
        i: typeof s.i === "number" ? s.i : r,
        line: typeof s.line === "number" ? s.line : -1,
        func: text(s.func),
        event: s.event == null ? "line" : text(s.event),
        locals: locals,
        stdout: text(s.stdout),
        lm: s.by === "lm",
        exception: text(s.exception),
        to: text(s.to),  // an unwind's caller (a model's trace names none)
        to_line: typeof s.to_line === "number" ? s.to_line : null,
      };
      // Object identity (schema v3; a model-written trace has none): ints only.
      if (s.ids && typeof s.ids === "object" && !Array.isArray(s.ids)) {
        var ids = {};
        Object.keys(s.ids).forEach(function (name) {
          if (typeof s.ids[name] === "number") ids[name] = s.ids[name];
        });
        step.ids = ids;
      }
      // Its objects (schema v3's heap delta): entries with a kind and a list of items, each a
      // text or an id (a dict's and an instance's items are pairs); anything else is dropped.
      if (s.heap && typeof s.heap === "object" && !Array.isArray(s.heap)) {
        var heap = {};
        Object.keys(s.heap).forEach(function (id) {
          var entry = heapEntry(s.heap[id]);
          if (entry && /^[0-9]+$/.test(id)) heap[id] = entry;
        });
        step.heap = heap;
      }
      if (!indexOf.has(step.i)) indexOf.set(step.i, steps.length);
      steps.push(step);
    }
    var state = window.TraceState.track(steps);
    return {
      steps: steps,
      indexOf: indexOf,
      stateAt: state.stateAt,
      outputAt: state.outputAt,
      objectAt: state.objectAt,
      hasObjects: state.hasObjects,
    };
  }
  function part(value) { return typeof value === "number" ? value : text(value); }
  function heapEntry(e) {
    if (!e || typeof e !== "object" || typeof e.kind !== "string" || !Array.isArray(e.items)) return null;
    var paired = e.kind === "dict" || e.kind === "object";
    var items = [];
    e.items.forEach(function (item) {
      if (paired && Array.isArray(item) && item.length === 2) items.push([text(item[0]), part(item[1])]);
      else if (!paired && !Array.isArray(item)) items.push(part(item));
    });
    var entry = { kind: e.kind, items: items };
    if (typeof e.type === "string") entry.type = e.type;
    if (e.cut === true) entry.cut = true;
    if (typeof e.len === "number") entry.len = e.len;
    return entry;
  }

  var real = makeTrack(parse("real-steps"));
  var emu = makeTrack(parse("emulated-steps"));
  var idsKey = byId("cmp-ids-key");
  if (idsKey) {
    idsKey.hidden = !real.steps.concat(emu.steps).some(function (s) { return s.ids && Object.keys(s.ids).length; });
  }
  var n = pairs.length;

  // Per position: the list index of each side's step (-1: none at this pair) and of the latest
  // step of that side at or before it (what its panel shows when the pair has no step there).
  function sideIndexes(track, key) {
    var at = new Int32Array(n);
    var last = new Int32Array(n);
    var latest = null;
    for (var p = 0; p < n; p++) {
      var pair = pairs[p] || {};
      var idx = pair[key] == null ? undefined : track.indexOf.get(pair[key]);
      at[p] = idx === undefined ? -1 : idx;
      if (at[p] >= 0 && latest === null) latest = at[p] - 1; // steps before the first listed one
    }
    if (latest === null) latest = -1;
    for (var q = 0; q < n; q++) {
      if (at[q] >= 0) latest = at[q];
      last[q] = latest;
    }
    return { at: at, last: last };
  }
  var realIdx = sideIndexes(real, "real");
  var emuIdx = sideIndexes(emu, "emulated");

  function statusOf(p) {
    var s = (pairs[p] || {}).status;
    return STATUS_CLASS.hasOwnProperty(s) ? s : "control_flow";
  }
  function differsOf(p) {
    var d = (pairs[p] || {}).differs;
    return Array.isArray(d) ? d.map(text) : [];
  }

  // The first divergence is the first pair that is not a match; a divergence of the result alone
  // (every step agrees) is shown at the last pair.
  var divPos = -1;
  if (firstDiv) {
    for (var p0 = 0; p0 < n; p0++) {
      if (statusOf(p0) !== "match") { divPos = p0; break; }
    }
    if (divPos === -1 && firstDiv.kind === "result") divPos = n - 1;
  }
  if (divPos >= 0) jumpButton.disabled = false;
  else jumpButton.title = "The model's trace does not depart from the real one";

  // The code: one element per line; lines the model simulated (Chain of Code) get a badge.
  var lineEls = {};
  root.querySelectorAll('.cmp-code [id^="line-"]').forEach(function (el) { lineEls[el.id] = el; });
  function lineEl(line) { return line >= 0 ? lineEls["line-" + line] || null : null; }
  if (simulatesLines) {
    var lmLines = {};
    emu.steps.forEach(function (step) { if (step.lm) lmLines[step.line] = true; });
    var lmKey = byId("cmp-lm-key");
    if (lmKey && Object.keys(lmLines).length) lmKey.hidden = false;
    Object.keys(lmLines).forEach(function (line) {
      var el = lineEl(Number(line));
      if (!el || el.classList.contains("lm-line")) return;
      el.classList.add("lm-line");
      var badge = document.createElement("span");
      badge.className = "lm-badge";
      badge.title = "The model simulated this line (Chain of Code)";
      badge.textContent = "LM";
      el.insertBefore(badge, el.firstChild);
    });
  }

  // The status strip: one cell per pair, or per run of pairs when there are more than MAX_CELLS
  // (a cell then shows the worst status of its pairs and leads to the first such pair).
  var perCell = Math.ceil(n / MAX_CELLS);
  var cells = [];
  (function buildStrip() {
    var fragment = document.createDocumentFragment();
    for (var start = 0; start < n; start += perCell) {
      var end = Math.min(n, start + perCell);
      var worst = start;
      for (var p = start + 1; p < end; p++) {
        if (STATUS_RANK[statusOf(p)] > STATUS_RANK[statusOf(worst)]) worst = p;
      }
      var status = statusOf(worst);
      var cell = document.createElement("span");
      cell.className = "cmp-cell " + STATUS_CLASS[status];
      cell.setAttribute("data-pair", String(worst));
      cell.title = (end - start === 1 ? "Pair " + (start + 1) : "Pairs " + (start + 1) + "–" + end) +
        ": " + status.replace("_", " ");
      fragment.appendChild(cell);
      cells.push(cell);
    }
    if (divPos >= 0) {
      var divCell = cells[Math.floor(divPos / perCell)];
      divCell.classList.add("first-div");
      divCell.title += " · the first divergence";
    }
    if (cells.length > 500) strip.classList.add("dense");
    strip.appendChild(fragment);
  })();
  strip.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.classList.contains("cmp-cell")) {
      show(Number(target.getAttribute("data-pair")));
    }
  });

  function describe(step, previous, last) {
    var func = step.func;
    var name = func === "<module>" ? "the program" : func ? func + "()" : "";
    var where = func === "<module>" ? " at module level" : func ? " in " + func + "()" : "";
    var what;
    if (step.event === "call") what = "call " + (name || "at line " + step.line);
    else if (step.event === "return") what = "return" + (name ? " from " + name : " at line " + step.line);
    else if (step.event === "exception" || step.event === "unwind") what = window.TraceState.exceptionWords(step, previous, last);
    else what = "line " + step.line + where;
    return "Step " + (step.i + 1) + " · " + what; // counted from 1, as in every viewer
  }
  function cell(tag, content, cls) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    el.textContent = content;
    return el;
  }
  function row(name, value, classes, id, drawn) {
    var tr = document.createElement("tr");
    if (classes.length) tr.className = classes.join(" ");
    tr.appendChild(cell("th", name === "__return__" ? "return value" : name));
    var td = document.createElement("td");
    // A badge leads to its object where this side's objects are drawn.
    if (id !== undefined) td.appendChild(window.TraceState.badge(id, "object", drawn));
    if (value === null) td.appendChild(cell("span", "(missing)", "missing"));
    else td.appendChild(cell("code", value));
    tr.appendChild(td);
    return tr;
  }

  function makePanel(prefix, track, sides, absentText) {
    var panel = byId(prefix);
    var stepEl = byId(prefix + "-step");
    var framesEl = byId(prefix + "-frames");
    var body = document.querySelector("#" + prefix + "-vars tbody");
    var outputEl = byId(prefix + "-output");
    // This side's objects, where its trace records them (the real run's; a model's whose method
    // runs the program, Chain of Code; a model-written trace has none).
    var heapBox = byId(prefix + "-objects");
    var heap = null;
    if (heapBox && track.hasObjects) {
      heapBox.hidden = false;
      heap = window.TraceState.heapView({ container: byId(prefix + "-heap"), track: track, prefix: prefix + "-obj-" });
      window.TraceState.linkObjects(panel, prefix + "-obj-");
    }
    return function render(pos, differs) {
      var here = sides.at[pos];
      var index = here >= 0 ? here : sides.last[pos];
      var step = here >= 0 ? track.steps[here] : null;
      var state = track.stateAt(index);
      panel.classList.toggle("absent", !step);
      if (step) {
        // A model's unwind names no caller: where its exception goes is left unsaid (last: null).
        var last = track === real ? here === track.steps.length - 1 : null;
        stepEl.textContent = describe(step, track.steps[here - 1], last) + (simulatesLines && step.lm ? " · simulated by the model" : "");
      } else {
        stepEl.textContent = absentText;
      }
      var names = [];
      for (var f = 0; f < state.stack.length; f++) {
        var func = state.stack[f].func;
        names.push(func === "<module>" ? "module" : func ? func + "()" : "(frame)");
      }
      framesEl.textContent = names.length ? "Frames: " + names.join(" › ") : "";

      body.textContent = "";
      var top = state.stack[state.stack.length - 1];
      var vars = top ? top.vars : new Map();
      var changed = step ? step.locals : {};
      var differ = {};
      differs.forEach(function (d) { differ[d] = true; });
      vars.forEach(function (value, name) {
        var classes = [];
        if (changed.hasOwnProperty(name)) classes.push("changed");
        if (differ.hasOwnProperty(name)) classes.push("diff");
        body.appendChild(row(name, value, classes, top.ids.get(name), heap !== null));
      });
      differs.forEach(function (name) {
        if (!vars.has(name)) body.appendChild(row(name, null, ["diff"]));
      });
      if (!body.firstChild) {
        var tr = document.createElement("tr");
        tr.appendChild(cell("td", "(no variables yet)", "muted"));
        body.appendChild(tr);
      }
      if (heap) {
        heap.draw(index, state.stack.map(function (f, depth) {
          return { func: f.func, ids: f.ids, number: state.stack.length - depth };
        }), false);
      }
      outputEl.textContent = track.outputAt(index);
      outputEl.scrollTop = outputEl.scrollHeight;
      return step;
    };
  }
  var renderReal = makePanel("cmp-real", real, realIdx, "(the model added this step)");
  var renderEmu = makePanel("cmp-emu", emu, emuIdx, "(the model skipped this step)");

  function summary(pos, differs) {
    var status = statusOf(pos);
    if (status === "match") return "the model agrees";
    if (status === "value") return "a value differs: " + differs.join(", ");
    if (status === "identity") {
      return "the values agree but not the objects (one shared object against a copy): " + differs.join(", ");
    }
    if (status === "output") return "the output so far differs";
    if (status === "exception") return "the model gets an exception wrong here";
    if (realIdx.at[pos] < 0) return "the model added a step the real run does not take";
    if (emuIdx.at[pos] < 0) return "the model skipped a step of the real run";
    return "the model is somewhere else";
  }

  var current = -1;
  var marked = [];
  function mark(el, cls) { el.classList.add(cls); marked.push([el, cls]); }

  function show(pos) {
    pos = Math.max(0, Math.min(n - 1, pos));
    if (pos === current || isNaN(pos)) return;
    if (current >= 0) cells[Math.floor(current / perCell)].classList.remove("here");
    current = pos;
    var differs = differsOf(pos);
    var rs = renderReal(pos, differs);
    var es = renderEmu(pos, differs);

    marked.forEach(function (m) { m[0].classList.remove(m[1]); });
    marked = [];
    var realLine = rs ? lineEl(rs.line) : null;
    var emuLine = es ? lineEl(es.line) : null;
    if (realLine) mark(realLine, "current-line");
    if (emuLine) mark(emuLine, "emu-line");
    if (realLine && realLine === emuLine) mark(realLine, "agree-line");
    var focus = realLine || emuLine;
    if (focus) focus.scrollIntoView({ block: "nearest" });

    cells[Math.floor(pos / perCell)].classList.add("here");
    slider.value = String(pos);
    info.textContent = "Pair " + (pos + 1) + " of " + n + " · " + summary(pos, differs) +
      (pos === divPos ? " · the first divergence" : "");
    if (pos === divPos) {
      banner.textContent = text(firstDiv.message) || "The model departs from the real run here.";
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    if (history.replaceState) history.replaceState(null, "", "#pair-" + (pos + 1));
  }

  window.TraceState.stepper({
    slider: slider, buttons: buttons, attribute: "data-cmp-go", count: n, show: show,
    at: function () { return current; },
    jumps: { divergence: function () { if (divPos >= 0) show(divPos); } },
  });

  var fromHash = /^#pair-(\d+)$/.exec(window.location.hash);
  show(fromHash ? Number(fromHash[1]) - 1 : 0);
})();
