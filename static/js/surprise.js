// The model's surprise in the viewers' state panels (templates/runs/_surprise.html): beside each
// value the step shown changed, its surprise in nats, coloured as in the heat map and written
// out. It reads what the viewers show (their step line, their variable rows) and only adds to
// it, so a viewer it does not know is left as it is. Every string is set with textContent.
(function () {
  "use strict";

  function start() {
    var data = document.getElementById("surprise-data");
    if (!data) return;
    var byStep = {};
    JSON.parse(data.textContent).forEach(function (entry) { byStep[entry[0]] = entry[1]; });
    // The step each viewer shows, counted from 1, and the table of its variables.
    var panels = [
      { step: "cmp-real-step", vars: "cmp-real-vars", pattern: /^Step (\d+) ·/ },
      { step: "step-info", vars: "vars", pattern: /^Step (\d+) of / },
    ];

    function decorate(panel) {
      var stepEl = document.getElementById(panel.step);
      var body = document.querySelector("#" + panel.vars + " tbody");
      if (!stepEl || !body) return;
      var found = panel.pattern.exec(stepEl.textContent || "");
      var values = found ? byStep[found[1]] : null;
      var rows = body.querySelectorAll("tr");
      for (var r = 0; r < rows.length; r++) {
        var row = rows[r];
        var th = row.querySelector("th");
        var cell = row.querySelector("td:last-child");
        var old = row.querySelector(".surprise-badge");
        if (old) old.parentNode.removeChild(old);
        if (!th || !cell || !values) continue;
        var name = th.textContent === "return value" ? "__return__" : th.textContent;
        if (!Object.prototype.hasOwnProperty.call(values, name)) continue;
        var badge = document.createElement("span");
        badge.className = "surprise-badge heat-" + values[name][1];
        badge.textContent = values[name][0].toFixed(2) + " nats";
        badge.title = "How surprised the model is by this value at this step";
        cell.appendChild(badge);
      }
    }

    panels.forEach(function (panel) {
      var stepEl = document.getElementById(panel.step);
      var body = document.querySelector("#" + panel.vars + " tbody");
      if (!stepEl || !body) return;
      var pending = false;
      var again = function () {
        if (pending) return;
        pending = true;
        window.requestAnimationFrame(function () { pending = false; decorate(panel); });
      };
      // Rows are replaced at each step (childList of the body); a badge goes inside a cell, which
      // is below what is watched, so adding one does not call this again.
      new MutationObserver(again).observe(body, { childList: true });
      new MutationObserver(again).observe(stepEl, { childList: true, characterData: true, subtree: true });
      decorate(panel);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
