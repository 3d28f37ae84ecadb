/* housespool report: the sweep page's spread across seeds (report/charts/spread.py), drawn as SVG
   from the JSON the page carries, with static/chartkit.js's helpers: one row per configuration,
   best at the top; a box for the quartiles, a line for the range, a tick at the median, the runs
   as dots and the mean ± standard deviation in red. Hover a row for its figures, a dot for its run;
   click a dot: its job page. No dependencies, no network; text from the spool is only ever set
   as textContent. */
(function () {
  "use strict";

  var K = window.HouseCharts, svg = K.svg;
  var W = 950, R = 24, T = 40, ROW = 26, BOX = 14;

  function sameCounts(d) { return Math.min.apply(null, d.counts) === Math.max.apply(null, d.counts); }

  function rowLabels(d) {
    var same = sameCounts(d);
    return d.labels.map(function (t, k) { return same ? t : t + "  (n=" + d.counts[k] + ")"; });
  }

  function title(d, same) {
    var k = d.labels.length, most = Math.max.apply(null, d.counts), least = Math.min.apply(null, d.counts);
    var what = d.total > k ? "best " + k + " of " + d.total + " configurations" : d.total + " configuration(s)";
    return "Variance across seeds: " + what + ", " + (same ? most + " run(s) per box" : least + "-" + most + " runs per box");
  }

  function xAxis(root, sx, lo, hi, y, label) {
    K.ticks(lo, hi, 6).forEach(function (t) {
      root.appendChild(svg("line", { x1: sx(t), x2: sx(t), y1: T, y2: y, "class": "grid" }));
      root.appendChild(svg("text", { x: sx(t), y: y + 15, "class": "xl" }, K.fmtNum(t)));
    });
    root.appendChild(svg("text", { x: (sx(lo) + sx(hi)) / 2, y: y + 32, "class": "xlab" }, label));
  }

  function row(root, d, k, sx, cy) {
    var q = d.q[k], g = svg("g", { "class": "sp-row", "data-row": k });
    g.appendChild(svg("rect", { x: sx.left, y: cy - ROW / 2, width: sx.width, height: ROW, "class": "sp-band" }));
    g.appendChild(svg("line", { x1: sx(q[0]), x2: sx(q[4]), y1: cy, y2: cy, "class": "whisker" }));
    g.appendChild(svg("rect", { x: sx(q[1]), y: cy - BOX / 2, width: Math.max(1, sx(q[3]) - sx(q[1])), height: BOX, "class": "box" }));
    g.appendChild(svg("line", { x1: sx(q[2]), x2: sx(q[2]), y1: cy - BOX / 2, y2: cy + BOX / 2, "class": "median" }));
    var m = d.means[k], s = d.stds[k];
    g.appendChild(svg("line", { x1: sx(m - s), x2: sx(m + s), y1: cy, y2: cy, "class": "sp-std" }));
    g.appendChild(svg("path", { d: "M" + sx(m) + " " + (cy - 4) + "l4 4l-4 4l-4 -4z", "class": "sp-mean" }));
    root.appendChild(g);
  }

  function spread(box, d) {
    var labels = rowLabels(d), same = sameCounts(d);
    var longest = labels.reduce(function (a, t) { return Math.max(a, t.length); }, 4);
    var L = Math.min(420, 16 + 6.2 * longest), n = d.labels.length, H = T + ROW * n + 70;
    var vals = d.x.concat(d.means.map(function (m, k) { return m - d.stds[k]; }), d.means.map(function (m, k) { return m + d.stds[k]; }));
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals), pad = (hi - lo) * 0.06 || Math.abs(hi) * 0.05 || 0.5;
    var sx = K.scale(lo - pad, hi + pad, L, W - R);
    sx.left = L;
    sx.width = W - R - L;
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "client-svg spread", role: "img", "aria-label": "Spread across seeds" });
    root.appendChild(svg("text", { x: W / 2, y: 18, "class": "title" }, title(d, same)));
    xAxis(root, sx, lo - pad, hi + pad, T + ROW * n, d.xlabel);
    labels.forEach(function (t, k) {
      var cy = T + ROW * k + ROW / 2;
      row(root, d, k, sx, cy);
      root.appendChild(svg("text", { x: L - 8, y: cy + 4, "class": "yl" }, t));
    });
    var dots = svg("g", { "class": "runs" }), r = d.x.length > 500 ? 2 : 3;
    d.x.forEach(function (v, i) {
      var cy = T + ROW * d.row[i] + ROW / 2 + K.jitter(i) * ROW * 0.5;
      dots.appendChild(svg("circle", { cx: sx(v).toFixed(1), cy: cy.toFixed(1), r: r, "class": "run sp-dot", "data-i": i }));
    });
    root.appendChild(dots);
    var ly = T + ROW * n + 52;
    root.appendChild(svg("rect", { x: L, y: ly - 9, width: 16, height: 10, "class": "box" }));
    root.appendChild(svg("text", { x: L + 22, y: ly, "class": "leg" }, "quartiles, median, range"));
    root.appendChild(svg("circle", { cx: L + 208, cy: ly - 4, r: 3, "class": "sp-dot" }));
    root.appendChild(svg("text", { x: L + 216, y: ly, "class": "leg" }, "runs"));
    root.appendChild(svg("path", { d: "M" + (L + 268) + " " + (ly - 8) + "l4 4l-4 4l-4 -4z", "class": "sp-mean" }));
    root.appendChild(svg("text", { x: L + 278, y: ly, "class": "leg" }, "mean ± std"));
    box.appendChild(root);

    root.addEventListener("mousemove", function (ev) {
      var t = ev.target, i = t.getAttribute && t.getAttribute("data-i");
      if (i !== null && i !== undefined) {
        var k = d.row[+i], id = d.ids[+i];
        K.showTip(ev, [id, d.labels[k], d.xlabel + " = " + K.fmtNum(d.x[+i])].concat(K.paramLines(id)));
        return;
      }
      var g = t.closest ? t.closest(".sp-row") : null;
      if (g === null) { K.hideTip(); return; }
      var k2 = +g.getAttribute("data-row"), q = d.q[k2];
      K.showTip(ev, [d.labels[k2], d.counts[k2] + " run(s)", "mean " + K.fmtNum(d.means[k2]) + " ± " + K.fmtNum(d.stds[k2]),
        "median " + K.fmtNum(q[2]) + ", quartiles " + K.fmtNum(q[1]) + " to " + K.fmtNum(q[3]), "range " + K.fmtNum(q[0]) + " to " + K.fmtNum(q[4])]);
    });
    root.addEventListener("mouseleave", K.hideTip);
    root.addEventListener("click", function (ev) {
      var i = ev.target.getAttribute && ev.target.getAttribute("data-i");
      if (i !== null && i !== undefined) { K.openJob(d.ids[+i]); }
    });
  }

  K.register({ spread: spread });
})();
