/* housespool report: the sweep page's learning curves (report/charts/curves.py), drawn as SVG from
   the JSON the page carries, with static/chartkit.js's helpers: every run's curve in grey (a
   sample by id past a few hundred), the best runs in colour with their legend labels, a cross
   where early termination stopped a run. Hover near a curve: its run, its value there and its
   parameters; click: its job page. No dependencies, no network; text from the spool is only
   ever set as textContent. */
(function () {
  "use strict";

  var K = window.HouseCharts, svg = K.svg;
  var HIGHLIGHT = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"];
  var W = 950, L = 70, R = 20, T = 34, PH = 330, NEAR = 8;

  function curves(box, d) {
    var legendRows = 1 + d.best.length + (d.stopped.length ? 1 : 0), H = T + PH + 46 + 16 * legendRows;
    var ly = function (v) { return d.logy ? Math.log10(v) : v; };
    var xr = [d.box[0], d.box[1]], yr = [ly(d.box[2]), ly(d.box[3])];
    var xpad = (xr[1] - xr[0]) * 0.03 || 0.5, ypad = (yr[1] - yr[0]) * 0.05 || 0.5;
    var sx = K.scale(xr[0] - xpad, xr[1] + xpad, L, W - R), syl = K.scale(yr[0] - ypad, yr[1] + ypad, T + PH, T);
    var sy = function (v) { return syl(ly(v)); };
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "client-svg curves", role: "img", "aria-label": "Learning curves: " + d.ykey });
    root.appendChild(svg("text", { x: W / 2, y: 16, "class": "title" }, "Learning curves: " + K.short(d.ykey, 40) + ", the best " + d.best.length + " runs highlighted"));
    root.appendChild(svg("rect", { x: L, y: T, width: W - R - L, height: PH, "class": "frame" }));
    K.ticks(xr[0], xr[1], 8).forEach(function (t) {
      root.appendChild(svg("line", { x1: sx(t), x2: sx(t), y1: T + PH, y2: T + PH + 4, "class": "tk" }));
      root.appendChild(svg("text", { x: sx(t), y: T + PH + 15, "class": "xl" }, K.fmtNum(t)));
    });
    var yt = d.logy ? K.ticks(Math.floor(yr[0]), Math.ceil(yr[1]), 6).filter(function (t) { return t === Math.round(t) && t >= yr[0] - ypad && t <= yr[1] + ypad; }) : K.ticks(yr[0], yr[1], 5);
    yt.forEach(function (t) {
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: syl(t), y2: syl(t), "class": "grid" }));
      root.appendChild(svg("text", { x: L - 6, y: syl(t) + 3, "class": "yl" }, K.fmtNum(d.logy ? Math.pow(10, t) : t)));
    });
    root.appendChild(svg("text", { x: (L + W - R) / 2, y: T + PH + 32, "class": "xlab" }, d.xlabel));
    root.appendChild(svg("text", { x: 14, y: T + PH / 2, "class": "ylab", transform: "rotate(-90 14 " + (T + PH / 2) + ")" }, K.short(d.ykey, 42) + (d.logy ? " (log)" : "")));

    function points(k) {
      var s = d.spans[k], out = [];
      for (var p = s[0]; p < s[1]; p += 1) { out.push(sx(d.x[p]).toFixed(1) + "," + sy(d.y[p]).toFixed(1)); }
      return out.join(" ");
    }
    var alpha = Math.min(0.9, Math.max(0.08, 6 / Math.sqrt(Math.max(d.grey.length, 1))));
    var grey = svg("g", { "class": "cv-grey" });
    d.grey.forEach(function (k) { grey.appendChild(svg("polyline", { points: points(k), "stroke-opacity": alpha, "class": "cv-run", "data-i": k })); });
    root.appendChild(grey);
    var colour = {};
    d.best.forEach(function (b, r) {
      var k = b[0], c = HIGHLIGHT[r % HIGHLIGHT.length], s = d.spans[k];
      colour[k] = c;
      root.appendChild(svg("polyline", { points: points(k), stroke: c, "class": "cv-best", "data-i": k }));
      if (s[1] - s[0] < 30) {
        for (var p = s[0]; p < s[1]; p += 1) { root.appendChild(svg("circle", { cx: sx(d.x[p]).toFixed(1), cy: sy(d.y[p]).toFixed(1), r: 2.2, fill: c, "class": "cv-pt" })); }
      }
    });
    d.stopped.forEach(function (k) {
      var p = d.spans[k][1] - 1, x = sx(d.x[p]), y = sy(d.y[p]);
      root.appendChild(svg("path", { d: "M" + (x - 4) + " " + (y - 4) + "L" + (x + 4) + " " + (y + 4) + "M" + (x - 4) + " " + (y + 4) + "L" + (x + 4) + " " + (y - 4), "class": "cv-stop", "data-i": k }));
    });
    var hot = svg("polyline", { points: "", "class": "cv-hot" });
    hot.setAttribute("visibility", "hidden");
    root.appendChild(hot);

    // the legend, under the plot (labels run to 60 characters)
    var y0 = T + PH + 52, items = [[d.sampled ? d.grey.length + " of " + d.runs + " runs, picked by id" : "all " + d.runs + " runs", "cv-leg-grey", null]];
    d.best.forEach(function (b, r) { items.push([b[1], "cv-leg", HIGHLIGHT[r % HIGHLIGHT.length]]); });
    if (d.stopped.length) { items.push(["stopped early (" + d.stopped.length + ")", "cv-stop", null]); }
    items.forEach(function (it, r) {
      var y = y0 + 16 * r, attrs = { x1: L, x2: L + 22, y1: y - 4, y2: y - 4, "class": it[1] };
      if (it[2]) { attrs.stroke = it[2]; }
      root.appendChild(svg("line", attrs));
      root.appendChild(svg("text", { x: L + 30, y: y, "class": "leg" }, it[0]));
    });
    box.appendChild(root);

    // hover: the nearest point of a drawn run within NEAR px; click: its job page
    var current = null;
    function nearest(ev) {
      var pt = root.createSVGPoint();
      pt.x = ev.clientX;
      pt.y = ev.clientY;
      var q = pt.matrixTransform(root.getScreenCTM().inverse()), best = null, gap = NEAR * NEAR;
      var order = d.best.map(function (b) { return b[0]; }).concat(d.grey);
      order.forEach(function (k) {
        for (var p = d.spans[k][0]; p < d.spans[k][1]; p += 1) {
          var dx = sx(d.x[p]) - q.x, dy = sy(d.y[p]) - q.y, g = dx * dx + dy * dy;
          if (g < gap) { gap = g; best = [k, p]; }
        }
      });
      return best;
    }
    root.addEventListener("mousemove", function (ev) {
      var hit = nearest(ev);
      current = hit === null ? null : hit[0];
      root.classList.toggle("pc-pointing", hit !== null);
      if (hit === null) { hot.setAttribute("visibility", "hidden"); K.hideTip(); return; }
      var k = hit[0], p = hit[1], label = d.best.filter(function (b) { return b[0] === k; })[0];
      hot.setAttribute("points", points(k));
      hot.setAttribute("stroke", colour[k] || "#57606a");
      hot.setAttribute("data-run", d.ids[k]);
      hot.setAttribute("visibility", "visible");
      var lines = [d.ids[k]];
      if (label) { lines.push(label[1]); }
      lines.push(d.ykey + " = " + K.fmtNum(d.y[p]) + " at " + d.xlabel + " " + K.fmtNum(d.x[p]));
      if (d.stopped.indexOf(k) >= 0) { lines.push("stopped early"); }
      K.showTip(ev, lines.concat(K.paramLines(d.ids[k])));
    });
    root.addEventListener("mouseleave", function () { current = null; hot.setAttribute("visibility", "hidden"); K.hideTip(); });
    root.addEventListener("click", function () { if (current !== null) { K.openJob(d.ids[current]); } });
  }

  K.register({ curves: curves });
})();
