/* housespool report: the sweep page's parallel coordinates (report/charts/parallel.py), drawn as SVG
   from the JSON the page carries, with static/chartkit.js's helpers. One line per run through the
   parameter axes and the metric's, coloured by the metric (viridis, bright = best). Hover near a
   line: its run, parameters and metric; click: its job page. Drag along an axis to select a range
   of it: lines outside every selected range are dimmed and counted; double-click the axis (or a
   click on it without dragging, or the clear button) drops its range (pointer events: a finger
   drags too). No dependencies, no network; text from the spool is only ever set as textContent. */
(function () {
  "use strict";

  var K = window.HouseCharts, svg = K.svg;
  var T = 64, PH = 300, B = 34, L = 24, CB = 120, NEAR = 7, MISSING = -0.05;

  /* a run's place on an axis, 0 (bottom) to 1 (top); a missing value just below the axis */
  function position(a, i) {
    if (a.kind === "cat") { return a.x[i] / Math.max(a.cats.length - 1, 1); }
    var v = a.v[i];
    if (v === null || (a.log && !(v > 0))) { return MISSING; }
    return ((a.log ? Math.log10(v) : v) - a.lo) / ((a.hi - a.lo) || 1);
  }

  function valueText(a, i) {
    if (a.kind === "cat") { return a.cats[a.x[i]]; }
    return a.v[i] === null ? "(none)" : K.fmtNum(a.v[i]);
  }

  function colours(d) {
    var m = d.axes[d.axes.length - 1].v, lo = Math.min.apply(null, m), hi = Math.max.apply(null, m);
    return m.map(function (v) { var t = (v - lo) / ((hi - lo) || 1); return K.viridis(d.mode === "min" ? 1 - t : t); });
  }

  function colourBar(root, d, x, defs) {
    var grad = svg("linearGradient", { id: "pc-viridis", x1: 0, x2: 0, y1: 1, y2: 0 });
    [0, 0.25, 0.5, 0.75, 1].forEach(function (t) { grad.appendChild(svg("stop", { offset: t, "stop-color": K.viridis(t) })); });
    defs.appendChild(grad);
    var m = d.axes[d.axes.length - 1].v, lo = Math.min.apply(null, m), hi = Math.max.apply(null, m);
    var best = d.mode === "min" ? lo : hi, worst = d.mode === "min" ? hi : lo;
    root.appendChild(svg("rect", { x: x, y: T, width: 12, height: PH, fill: "url(#pc-viridis)", "class": "pc-bar" }));
    root.appendChild(svg("text", { x: x + 16, y: T + 4, "class": "pc-tick" }, K.fmtNum(best) + " (best)"));
    root.appendChild(svg("text", { x: x + 16, y: T + PH + 4, "class": "pc-tick" }, K.fmtNum(worst)));
    root.appendChild(svg("text", { x: x + 6, y: T + PH + 22, "class": "xl" }, K.short(d.label, 22)));
  }

  function axis(a, j, x, sy) {
    var g = svg("g", { "class": "pc-axis", "data-axis": j, "data-name": a.name });
    g.appendChild(svg("line", { x1: x, x2: x, y1: T, y2: T + PH, "class": "pc-line" }));
    a.ticks.forEach(function (tk) {
      g.appendChild(svg("line", { x1: x - 3, x2: x + 3, y1: sy(tk[0]), y2: sy(tk[0]), "class": "tk" }));
      g.appendChild(svg("text", { x: x + 6, y: sy(tk[0]) + 3.5, "class": "pc-tick" }, tk[1]));
    });
    if (a.kind === "num" && a.v.some(function (v) { return v === null; })) {
      g.appendChild(svg("text", { x: x + 6, y: sy(MISSING) + 3.5, "class": "pc-tick" }, "(none)"));
    }
    g.appendChild(svg("text", { x: x, y: T - 14, "class": "pc-label" }, a.label));
    var brush = svg("rect", { x: x - 9, y: T, width: 18, height: 0, "class": "pc-brush" });
    brush.setAttribute("visibility", "hidden");
    g.appendChild(brush);
    g.appendChild(svg("rect", { x: x - 12, y: T - 6, width: 24, height: PH + 12, "class": "pc-hit" }));
    return g;
  }

  function parallel(box, d) {
    var na = d.axes.length, n = d.ids.length, W = Math.max(720, 170 * (na - 1) + L + CB + 60), H = T + PH + B + 18;
    var step = (W - L - CB - 40) / Math.max(na - 1, 1), xs = d.axes.map(function (a, j) { return L + 20 + j * step; });
    var sy = function (p) { return T + PH - p * PH; };
    var pos = d.axes.map(function (a) { return d.ids.map(function (id, i) { return position(a, i); }); });
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "client-svg parallel", role: "img", "aria-label": "Parallel coordinates: " + d.label });
    var defs = svg("defs", {});
    root.appendChild(defs);
    var shown = n + (d.sampled ? " of " + d.total + " runs (the best and others picked by id)" : " runs");
    root.appendChild(svg("text", { x: W / 2, y: 16, "class": "title" }, "Parallel coordinates: " + shown + ", coloured by " + K.short(d.label, 30) + " (bright = best)"));
    var colour = colours(d), alpha = Math.min(0.9, Math.max(0.15, 9 / Math.sqrt(Math.max(n, 1))));
    var lines = svg("g", { "class": "pc-lines" }), els = [];
    d.ids.forEach(function (id, i) {
      var pts = xs.map(function (x, j) { return x.toFixed(1) + "," + sy(pos[j][i]).toFixed(1); }).join(" ");
      var el = svg("polyline", { points: pts, stroke: colour[i], "stroke-opacity": alpha, "stroke-width": n < 300 ? 1.2 : 0.8, "class": "pc-run", "data-i": i });
      els.push(el);
      lines.appendChild(el);
    });
    root.appendChild(lines);
    var hot = svg("polyline", { points: "", "class": "pc-hot" });
    hot.setAttribute("visibility", "hidden");
    root.appendChild(hot);
    var axes = d.axes.map(function (a, j) { var g = axis(a, j, xs[j], sy); root.appendChild(g); return g; });
    colourBar(root, d, W - CB + 20, defs);

    var bar = document.createElement("div"), count = document.createElement("span"), clear = document.createElement("button");
    bar.className = "pc-controls";
    count.className = "pc-count";
    clear.type = "button";
    clear.className = "pc-clear";
    clear.textContent = "clear selection";
    bar.appendChild(count);
    bar.appendChild(document.createTextNode(" "));
    bar.appendChild(clear);
    box.appendChild(bar);
    box.appendChild(root);

    // -- brushing: a range per axis, in positions (0 bottom, 1 top), kept on the axis as data-lo/hi
    var brushes = d.axes.map(function () { return null; }), active = d.ids.map(function () { return true; });

    function apply() {
      var kept = 0;
      d.ids.forEach(function (id, i) {
        var on = brushes.every(function (b, j) { return b === null || (pos[j][i] >= b[0] && pos[j][i] <= b[1]); });
        active[i] = on;
        if (on) { kept += 1; }
        els[i].classList.toggle("dim", !on);
      });
      brushes.forEach(function (b, j) {
        var rect = axes[j].querySelector(".pc-brush");
        if (b === null) {
          rect.setAttribute("visibility", "hidden");
          axes[j].removeAttribute("data-lo");
          axes[j].removeAttribute("data-hi");
          return;
        }
        rect.setAttribute("visibility", "visible");
        rect.setAttribute("y", sy(b[1]).toFixed(1));
        rect.setAttribute("height", Math.max(1, sy(b[0]) - sy(b[1])).toFixed(1));
        axes[j].setAttribute("data-lo", b[0]);
        axes[j].setAttribute("data-hi", b[1]);
      });
      count.textContent = kept + " of " + n + " runs selected";
      clear.disabled = brushes.every(function (b) { return b === null; });
    }

    function svgY(ev) {
      var pt = root.createSVGPoint();
      pt.x = ev.clientX;
      pt.y = ev.clientY;
      return pt.matrixTransform(root.getScreenCTM().inverse());
    }

    function at(ev) { var p = (T + PH - svgY(ev).y) / PH; return Math.round(Math.min(1, Math.max(0, p)) * 1e4) / 1e4; }

    var drag = null, dragged = false;
    axes.forEach(function (g, j) {
      var hit = g.querySelector(".pc-hit");
      hit.addEventListener("mousedown", function (ev) { ev.preventDefault(); });  // no text selection while dragging
      hit.addEventListener("pointerdown", function (ev) {
        drag = { axis: j, from: at(ev), y: ev.clientY };
        K.hideTip();
      });
      hit.addEventListener("dblclick", function () { brushes[j] = null; apply(); });
    });
    window.addEventListener("pointermove", function (ev) {
      if (drag === null) { return; }
      if (Math.abs(ev.clientY - drag.y) < 3 && brushes[drag.axis] === null) { return; }
      var to = at(ev);
      brushes[drag.axis] = [Math.min(drag.from, to), Math.max(drag.from, to)];
      apply();
    });
    window.addEventListener("pointerup", function (ev) {
      if (drag === null) { return; }
      var moved = Math.abs(ev.clientY - drag.y) >= 3;
      if (moved) {
        var to = at(ev);
        brushes[drag.axis] = [Math.min(drag.from, to), Math.max(drag.from, to)];
      } else {
        brushes[drag.axis] = null;  // a click on an axis without dragging drops its range
      }
      drag = null;
      dragged = true;
      window.setTimeout(function () { dragged = false; }, 0);
      apply();
    });
    clear.addEventListener("click", function () { brushes = brushes.map(function () { return null; }); apply(); });

    // -- hover and click: the selected line nearest the pointer, between two axes
    var current = null;
    function nearest(ev) {
      var p = svgY(ev), j = Math.floor((p.x - xs[0]) / step);
      if (j < 0 || j >= na - 1 || p.y < T - 8 || p.y > T + PH + 20) { return null; }
      var u = (p.x - xs[j]) / step, best = null, gap = NEAR;
      for (var i = n - 1; i >= 0; i -= 1) {  // the last drawn (on top) first
        if (!active[i]) { continue; }
        var y = sy(pos[j][i] + (pos[j + 1][i] - pos[j][i]) * u), dy = Math.abs(y - p.y);
        if (dy < gap) { gap = dy; best = i; }
      }
      return best;
    }
    root.addEventListener("mousemove", function (ev) {
      if (drag !== null) { return; }
      var onAxis = ev.target.getAttribute && ev.target.getAttribute("class") === "pc-hit";
      var i = onAxis ? null : nearest(ev);
      current = i;
      root.classList.toggle("pc-pointing", i !== null);
      if (i === null) { hot.setAttribute("visibility", "hidden"); K.hideTip(); return; }
      hot.setAttribute("points", els[i].getAttribute("points"));
      hot.setAttribute("stroke", colour[i]);
      hot.setAttribute("data-run", d.ids[i]);
      hot.setAttribute("visibility", "visible");
      var lines = [d.ids[i], d.label + " = " + valueText(d.axes[na - 1], i)];
      d.axes.slice(0, na - 1).forEach(function (a) { lines.push(a.name + " = " + valueText(a, i)); });
      K.showTip(ev, lines);
    });
    root.addEventListener("mouseleave", function () { current = null; hot.setAttribute("visibility", "hidden"); K.hideTip(); });
    root.addEventListener("click", function () { if (current !== null && !dragged) { K.openJob(d.ids[current]); } });
    apply();
  }

  K.register({ parallel: parallel });
})();
