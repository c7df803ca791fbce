// The state of a trace (schema v3) at any step, shared by the trace viewer and the side-by-side
// viewer: frames rebuilt from each step's changed variables, from checkpoints every
// CHECKPOINT_EVERY steps, so stepping through 10,000 steps stays instant; the objects (the
// steps' `heap` deltas) looked up by version, never copied. Also what both viewers share: the
// stepping controls (slider, buttons, keys) and the objects pane with its linked badges.
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

  // The objects pane of one trace: the objects reachable from the given frames' names, each
  // drawn once, in the order first reached (so a cycle or an object shared by two containers is
  // drawn once, with badges pointing at it), at most MAX_DRAWN. `o.container` receives them,
  // `o.track` is the trace's track, `o.prefix` starts each object's element id (each trace on a
  // page numbers its own objects). Every string from the trace is set with textContent.
  var MAX_DRAWN = 80;
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function kindOf(entry) { return entry.type || entry.kind; }
  function unquote(key) { return /^'[A-Za-z_][A-Za-z0-9_]*'$/.test(key) ? key.slice(1, -1) : key; }
  function heapView(o) {
    var track = o.track;
    function refBadge(id, index) {
      var found = track.objectAt(id, index);
      return badge(id, found ? kindOf(found.entry) : "object", true);
    }
    function itemCell(tag, value, index) {
      var cell = el(tag);
      if (typeof value === "number") cell.appendChild(refBadge(value, index));
      else cell.appendChild(el("code", null, value));
      return cell;
    }
    function drawObject(id, index, names, held) {
      var found = track.objectAt(id, index);
      var box = el("div", "obj");
      box.id = o.prefix + id;
      box.setAttribute("data-obj", String(id));
      box.style.setProperty("--hue", hue(id));
      var head = el("div", "obj-head");
      head.appendChild(refBadge(id, index));
      if (!found) {
        head.appendChild(el("span", "muted", " not recorded"));
        box.appendChild(head);
        return box;
      }
      var entry = found.entry;
      head.appendChild(el("strong", null, " " + kindOf(entry)));
      if (entry.type && entry.kind !== "object") head.appendChild(el("span", "muted", " (a " + entry.kind + ")"));
      if (names && names.length) head.appendChild(el("span", "obj-names", " · " + names.join(", ")));
      if (found.since === index && !held) {
        box.classList.add(found.first === index ? "new" : "changed");
        head.appendChild(el("span", "tag", found.first === index ? "new" : "changed in place"));
      }
      box.appendChild(head);
      var paired = entry.kind === "dict" || entry.kind === "object";
      var items = el(paired ? "table" : "ol", paired ? "obj-pairs" : "obj-items");
      if (entry.kind === "list" || entry.kind === "deque") items.setAttribute("start", "0");
      if (entry.kind === "set") items.classList.add("unordered");
      entry.items.forEach(function (item) {
        if (paired) {
          var tr = el("tr");
          tr.appendChild(el("th", null, entry.kind === "object" ? unquote(item[0]) : item[0]));
          tr.appendChild(itemCell("td", item[1], index));
          items.appendChild(tr);
        } else {
          items.appendChild(itemCell("li", item, index));
        }
      });
      if (!entry.items.length) box.appendChild(el("p", "muted small obj-empty", entry.kind === "object" ? "(no attributes)" : "(empty)"));
      else box.appendChild(items);
      if (entry.cut) {
        var more = entry.len !== undefined ? entry.len - entry.items.length : 0;
        box.appendChild(el("p", "muted small", more > 0 ? "… and " + more + " more not recorded" : "… cut here (too deep or too many)"));
      }
      return box;
    }
    // frames: [{func, ids (name -> id), number (its place in a Frames list, or none)}];
    // held: predict mode's state from before the step (nothing is marked new or changed).
    function draw(index, frames, held) {
      var container = o.container;
      container.textContent = "";
      var order = [], seen = new Set(), names = new Map();
      function reach(id, label) {
        if (label) {
          if (!names.has(id)) names.set(id, []);
          names.get(id).push(label);
        }
        if (!seen.has(id)) { seen.add(id); order.push(id); }
      }
      // A name of a function's frame says which frame (its number: a recursion's frames differ).
      frames.forEach(function (f) {
        var where = f.func === "<module>" ? "" : " (" + f.func + "()" + (f.number ? ", frame " + f.number : "") + ")";
        f.ids.forEach(function (id, name) { reach(id, name + where); });
      });
      for (var k = 0; k < order.length && k < MAX_DRAWN; k++) {
        var found = track.objectAt(order[k], index);
        if (!found) continue;
        found.entry.items.forEach(function (item) {
          if (Array.isArray(item)) { if (typeof item[1] === "number") reach(item[1]); }
          else if (typeof item === "number") reach(item);
        });
      }
      if (!order.length) {
        container.appendChild(el("p", "muted small", track.hasObjects ?
          "(no names hold a mutable object now)" :
          "(none: no name holds a list, dict, set or instance here)"));
        return;
      }
      order.slice(0, MAX_DRAWN).forEach(function (id) { container.appendChild(drawObject(id, index, names.get(id), held)); });
      if (order.length > MAX_DRAWN) {
        container.appendChild(el("p", "muted small", (order.length - MAX_DRAWN) + " more objects not drawn"));
      }
    }
    return { draw: draw };
  }
  // Within `root`: hovering or focusing a badge or an object lights up the object and every
  // reference to it; choosing a badge scrolls to its object (element id prefix + id).
  function linkObjects(root, prefix) {
    function light(id, on) {
      root.querySelectorAll('[data-ref="' + id + '"], [data-obj="' + id + '"]').forEach(function (n) {
        n.classList.toggle("linked", on);
      });
    }
    function refOf(target) {
      var node = target instanceof Element && target.closest("[data-ref], [data-obj]");
      return node ? node.getAttribute("data-ref") || node.getAttribute("data-obj") : null;
    }
    ["mouseover", "focusin"].forEach(function (type) {
      root.addEventListener(type, function (event) { var id = refOf(event.target); if (id) light(id, true); });
    });
    ["mouseout", "focusout"].forEach(function (type) {
      root.addEventListener(type, function (event) { var id = refOf(event.target); if (id) light(id, false); });
    });
    root.addEventListener("click", function (event) {
      var ref = event.target instanceof Element && event.target.closest("button[data-ref]");
      if (!ref) return;
      var box = document.getElementById(prefix + ref.getAttribute("data-ref"));
      if (box && !box.contains(ref)) {
        box.scrollIntoView({ block: "nearest" });
        box.classList.remove("flash");
        void box.offsetWidth; // restart the animation
        box.classList.add("flash");
      }
    });
  }

  window.TraceState = {
    track: track, exceptionWords: exceptionWords, stepper: stepper, frameName: frameName,
    badge: badge, hue: hue, heapView: heapView, linkObjects: linkObjects,
  };
})();
