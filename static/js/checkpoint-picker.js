// The item editor's checkpoint picker: the program with line numbers beside the checkpoint
// table; clicking a line (or Enter on it) fills a checkpoint row with that line and moves to its
// variables. Without this script the table works as before (type the line numbers).
// No innerHTML: program text only ever reaches the page through textContent.
(function () {
  "use strict";
  var form = document.getElementById("item-form");
  var box = document.getElementById("checkpoint-code");
  var table = form && form.querySelector("table.checkpoints tbody");
  if (!form || !box || !table) return;
  var lastRow = null;
  var hint = document.getElementById("checkpoint-hint");
  if (hint) hint.hidden = false;  // clicking works only with this script

  function currentSource() {
    var origin = form.querySelector("input[name=origin]:checked");
    if (origin && origin.value === "new") {
      var area = form.querySelector("textarea[name=source]");
      return area ? area.value.replace(/\r\n?/g, "\n") : "";
    }
    var listing = document.querySelector("#picked .listing");
    if (!listing) return "";
    var lines = [];
    listing.querySelectorAll(":scope > div").forEach(function (div) {
      var copy = div.cloneNode(true);
      var number = copy.querySelector(".ln");
      if (number) number.remove();
      lines.push(copy.textContent);
    });
    return lines.join("\n");
  }

  function rows() { return Array.prototype.slice.call(table.querySelectorAll("tr")); }
  function lineInput(row) { return row.querySelector("input[name=cp_line]"); }

  // Which lines hold a checkpoint, and the checkpoints' numbers there (1-based, as the errors
  // and the students' page count them).
  function used() {
    var map = {};
    var number = 0;
    rows().forEach(function (row) {
      var filled = Array.prototype.some.call(row.querySelectorAll("input"), function (i) { return i.value.trim(); });
      if (!filled) return;
      number += 1;
      var line = lineInput(row).value.trim();
      if (line) (map[line] = map[line] || []).push(number);
    });
    return map;
  }

  function render() {
    var source = currentSource();
    box.textContent = "";
    if (!source.trim()) {
      var empty = document.createElement("p");
      empty.className = "muted small";
      empty.textContent = box.getAttribute("data-empty") || "";
      box.appendChild(empty);
      return;
    }
    var lines = source.split("\n");
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    var marks = used();
    lines.forEach(function (text, index) {
      var number = String(index + 1);
      var code = text.trim();
      var button = document.createElement("button");
      button.type = "button";
      button.className = "cp-line";
      button.setAttribute("data-line", number);
      var ln = document.createElement("span");
      ln.className = "ln";
      ln.textContent = number;
      var src = document.createElement("span");
      src.className = "src";
      src.textContent = text || " ";
      button.appendChild(ln);
      button.appendChild(src);
      if (!code || code.charAt(0) === "#") {
        button.disabled = true;
        button.title = "Blank or a comment: execution never stops here";
      } else {
        button.title = "Put a checkpoint on line " + number;
      }
      if (marks[number]) {
        button.classList.add("cp-on");
        var tag = document.createElement("span");
        tag.className = "cp-tag";
        tag.textContent = "checkpoint " + marks[number].join(", ");
        button.appendChild(tag);
      }
      box.appendChild(button);
    });
  }

  function newRow() {
    var all = rows();
    var copy = all[all.length - 1].cloneNode(true);
    var n = all.length + 1;
    copy.querySelectorAll("input").forEach(function (input) {
      input.value = "";
      var label = input.getAttribute("aria-label") || "";
      input.setAttribute("aria-label", label.replace(/\d+$/, String(n)));
    });
    table.appendChild(copy);
    return copy;
  }

  function targetRow() {
    if (lastRow && table.contains(lastRow) && !lineInput(lastRow).value.trim()) return lastRow;
    var free = rows().filter(function (row) { return !lineInput(row).value.trim(); });
    return free.length ? free[0] : newRow();
  }

  box.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.cp-line");
    if (!button || button.disabled) return;
    var row = targetRow();
    lineInput(row).value = button.getAttribute("data-line");
    lastRow = null;
    render();
    var variables = row.querySelector("input[name=cp_variables]");
    if (variables) variables.focus();
  });

  table.addEventListener("focusin", function (event) {
    var row = event.target.closest && event.target.closest("tr");
    if (row) lastRow = row;
  });
  table.addEventListener("input", render);
  form.addEventListener("change", function (event) {
    var name = event.target && event.target.name;
    if (name === "origin" || name === "mode") render();
  });
  var area = form.querySelector("textarea[name=source]");
  if (area) area.addEventListener("input", render);
  // A library pick swaps #picked in (htmx): its listing is the program now.
  document.body.addEventListener("htmx:afterSettle", render);
  render();
})();
