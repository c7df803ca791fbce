// Step-through viewer for a trace (schema v3): the line, every frame on the stack (choose one to
// see its variables), the globals, the objects drawn once each with what they hold (a name or an
// item bound to an object shows its # badge: two names with one badge are one object), and the
// output. Renders one step at a time, so a 10,000-step trace costs no more than a short one.
// Predict mode holds each new state back until the user reveals it.
// Every string from the trace is set with textContent: nothing from a program becomes markup.
(function () {
  "use strict";
  var MAX_DRAWN = 80; // objects drawn for one step (the rest are counted)
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

  // The objects reachable from the frames' names, each drawn once, in the order first reached
  // (so a cycle or an object shared by two containers is drawn once, with badges pointing at it).
  function drawHeap(state, index, frames) {
    heapEl.textContent = "";
    var order = [], seen = new Set(), names = new Map();
    function reach(id, label) {
      if (label) {
        if (!names.has(id)) names.set(id, []);
        names.get(id).push(label);
      }
      if (!seen.has(id)) { seen.add(id); order.push(id); }
    }
    // A name of a function's frame says which frame: its number in the Frames list (1: the
    // innermost), so a recursion's frames are told apart.
    frames.forEach(function (f) {
      var where = f.func === "<module>" ? "" : " (" + f.func + "(), frame " + f.number + ")";
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
      heapEl.appendChild(el("p", "muted small", track.hasObjects ?
        "(no names hold a mutable object now)" :
        "(none: no name holds a list, dict, set or instance here)"));
      return;
    }
    order.slice(0, MAX_DRAWN).forEach(function (id) { heapEl.appendChild(drawObject(id, index, names.get(id))); });
    if (order.length > MAX_DRAWN) {
      heapEl.appendChild(el("p", "muted small", (order.length - MAX_DRAWN) + " more objects not drawn"));
    }
  }
  function drawObject(id, index, names) {
    var found = track.objectAt(id, index);
    var box = el("div", "obj");
    box.id = "obj-" + id;
    box.setAttribute("data-obj", String(id));
    box.style.setProperty("--hue", TS.hue(id));
    var head = el("div", "obj-head");
    head.appendChild(badge(id, index));
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
        var key = entry.kind === "object" ? unquote(item[0]) : item[0];
        tr.appendChild(el("th", null, key));
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
  function itemCell(tag, value, index) {
    var cell = el(tag);
    if (typeof value === "number") cell.appendChild(badge(value, index));
    else cell.appendChild(el("code", null, value));
    return cell;
  }
  function unquote(key) { return /^'[A-Za-z_][A-Za-z0-9_]*'$/.test(key) ? key.slice(1, -1) : key; }

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
    drawHeap(state, index, shown);
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
  // A badge or an object lights up the object and every reference to it; choosing a badge goes
  // to the object.
  function light(id, on) {
    viewer.querySelectorAll('[data-ref="' + id + '"], [data-obj="' + id + '"]').forEach(function (n) {
      n.classList.toggle("linked", on);
    });
  }
  function refOf(target) {
    var node = target instanceof Element && target.closest("[data-ref], [data-obj]");
    return node ? node.getAttribute("data-ref") || node.getAttribute("data-obj") : null;
  }
  ["mouseover", "focusin"].forEach(function (type) {
    viewer.addEventListener(type, function (event) { var id = refOf(event.target); if (id) light(id, true); });
  });
  ["mouseout", "focusout"].forEach(function (type) {
    viewer.addEventListener(type, function (event) { var id = refOf(event.target); if (id) light(id, false); });
  });
  heapEl.parentNode.addEventListener("click", function (event) {
    var ref = event.target instanceof Element && event.target.closest("button[data-ref]");
    if (!ref) return;
    var box = document.getElementById("obj-" + ref.getAttribute("data-ref"));
    if (box && !box.contains(ref)) {
      box.scrollIntoView({ block: "nearest" });
      box.classList.remove("flash");
      void box.offsetWidth; // restart the animation
      box.classList.add("flash");
    }
  });

  TS.stepper({
    slider: slider, buttons: viewer.querySelectorAll("[data-go]"), attribute: "data-go",
    count: steps.length, show: show, at: function () { return current; },
    jumps: { exception: toException },
    keys: { e: toException, E: toException, r: reveal, R: reveal, p: togglePredict, P: togglePredict },
  });

  var fromHash = /^#step-(\d+)$/.exec(window.location.hash);
  show(fromHash ? Number(fromHash[1]) - 1 : raisedAt >= 0 ? raisedAt : 0);
})();
