/* housespool report: what the sweep page's client charts share (static/charts.js, parallel.js):
   SVG elements, numbers and ticks, viridis, the tooltip, opening a run's job page, and drawing
   every chart of the page once the scripts are loaded. No dependencies, no network; text from
   the spool is only ever set as textContent. */
(function () {
  "use strict";

  var SVGNS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function fmtNum(v) {
    if (v === 0) { return "0"; }
    return Math.abs(v) >= 1e5 || Math.abs(v) < 1e-4 ? v.toExponential(2) : String(+v.toPrecision(4));
  }

  function short(text, n) { text = String(text); return text.length <= n ? text : text.slice(0, n - 1) + "…"; }

  /* about n round ticks between lo and hi (steps of 1, 2 or 5 times a power of ten) */
  function ticks(lo, hi, n) {
    var raw = (hi - lo) / Math.max(n, 1), mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; }).filter(function (s) { return s >= raw; })[0] || mag * 10;
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) { out.push(+t.toPrecision(12)); }
    return out;
  }

  /* a fixed jitter per run (the same dot in the same place at every build) */
  function jitter(i) { return ((i * 2654435761) % 1000) / 1000 - 0.5; }

  function scale(d0, d1, r0, r1) {
    if (d1 === d0) { d0 -= 0.5; d1 += 0.5; }
    return function (v) { return r0 + (v - d0) / (d1 - d0) * (r1 - r0); };
  }

  /* viridis, from dark (0) to yellow (1), as matplotlib's colour map */
  var VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function viridis(t) {
    var f = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1), k = Math.min(Math.floor(f), VIRIDIS.length - 2), u = f - k;
    var c = VIRIDIS[k].map(function (v, j) { return Math.round(v + (VIRIDIS[k + 1][j] - v) * u); });
    return "rgb(" + c.join(",") + ")";
  }

  // -- the tooltip and the job pages ----------------------------------------------------------
  var tip = null;
  var runsById = null;

  function runInfo(id) {
    if (runsById === null) {
      runsById = {};
      var node = document.getElementById("runs-data");
      if (node) {
        try { JSON.parse(node.textContent).runs.forEach(function (r) { runsById[r.id] = r; }); } catch (e) { /* no details */ }
      }
    }
    return runsById[id];
  }

  /* the run's parameters as "name = value" lines (from the compare view's data) */
  function paramLines(id) {
    var run = runInfo(id), out = [];
    if (run && run.params) { Object.keys(run.params).forEach(function (k) { out.push(k + " = " + run.params[k]); }); }
    return out;
  }

  function showTip(ev, lines) {
    if (tip === null) {
      tip = document.createElement("div");
      tip.className = "chart-tip";
      tip.setAttribute("role", "tooltip");
      document.body.appendChild(tip);
    }
    tip.textContent = "";
    lines.forEach(function (line, i) {
      var div = document.createElement("div");
      if (i === 0) { div.className = "tip-id"; }
      div.textContent = line;
      tip.appendChild(div);
    });
    tip.hidden = false;
    var x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    var y = ev.clientY + 14 + tip.offsetHeight > window.innerHeight ? ev.clientY - tip.offsetHeight - 10 : ev.clientY + 14;
    tip.style.left = Math.max(4, x) + "px";  // CSSOM: the page's CSP forbids style attributes
    tip.style.top = Math.max(4, y) + "px";
  }

  function hideTip() { if (tip !== null) { tip.hidden = true; } }

  function openJob(id) { window.location.href = "../jobs/" + encodeURIComponent(id) + ".html"; }

  // -- drawing the page's charts --------------------------------------------------------------
  var DRAW = {};

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (box) {
      var draw = DRAW[box.getAttribute("data-chart")], node = document.getElementById(box.getAttribute("data-source"));
      if (!draw || !node) { return; }
      try {
        draw(box, JSON.parse(node.textContent));
        box.setAttribute("data-drawn", "1");
      } catch (e) {
        var p = document.createElement("p");
        p.className = "muted";
        p.textContent = "This chart could not be drawn: " + e;
        box.appendChild(p);
      }
    });
  }

  /* the charts' scripts (loaded after this one, all deferred) name their drawings here; the page's
     charts are drawn once the document is parsed, when every deferred script has run */
  function register(drawings) { Object.keys(drawings).forEach(function (k) { DRAW[k] = drawings[k]; }); }

  /* once, when every deferred script has registered: this file runs first of them, while the
     document is "interactive", so a timer set now could fire before curves.js or parallel.js
     has run (seen: a chart left undrawn on a loaded machine); DOMContentLoaded waits for them */
  var started = false;
  function start() { if (!started) { started = true; init(); } }
  if (document.readyState === "complete") {
    window.setTimeout(start, 0);
  } else {
    document.addEventListener("DOMContentLoaded", start);
    window.addEventListener("load", start);
  }

  window.HouseCharts = {
    svg: svg, fmtNum: fmtNum, short: short, ticks: ticks, scale: scale, jitter: jitter, viridis: viridis,
    paramLines: paramLines, showTip: showTip, hideTip: hideTip, openJob: openJob, register: register
  };
})();
