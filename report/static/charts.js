/* housespool report: the sweep page's client charts (the linearity chart, the timeline, usage, an
   adaptive sweep's trace), drawn as SVG from the JSON the page carries (report/charts/linearity.py,
   machines.py, usage.py, report/adaptive.py) with static/chartkit.js's helpers. Hover a mark for
   its run, click it to open the run's job page. No dependencies, no network; text from the spool
   is only ever set as textContent. */
(function () {
  "use strict";

  var K = window.HouseCharts, svg = K.svg, fmtNum = K.fmtNum, short = K.short, ticks = K.ticks, scale = K.scale;
  var jitter = K.jitter, viridis = K.viridis, paramLines = K.paramLines, showTip = K.showTip, hideTip = K.hideTip;
  var SEED_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"];
  var STATE_COLORS = { done: "#4c72b0", failed: "#c44e52" };
  var HOST_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function padded(vals) {
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals), pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 0.5;
    return [lo - pad, hi + pad];
  }

  function dotRadius(n) { return n > 2000 ? 1.8 : n > 500 ? 2.3 : n > 100 ? 2.8 : 3.5; }
  function dotAlpha(n) { return Math.min(0.9, Math.max(0.15, 6 / Math.sqrt(Math.max(n, 1)))); }

  // -- hover and click ------------------------------------------------------------------------
  /* marks carry data-i (an index into ids); describe(i) gives the tooltip's lines */
  function interactive(root, ids, describe) {
    root.addEventListener("mousemove", function (ev) {
      var i = ev.target.getAttribute && ev.target.getAttribute("data-i");
      if (i === null || i === undefined) { hideTip(); return; }
      showTip(ev, describe(+i));
    });
    root.addEventListener("mouseleave", hideTip);
    root.addEventListener("click", function (ev) {
      var i = ev.target.getAttribute && ev.target.getAttribute("data-i");
      if (i !== null && i !== undefined) { K.openJob(ids[+i]); }
    });
  }

  // -- linearity ------------------------------------------------------------------------------
  var PW = 340, PH = 230, ML = 60, MR = 14, MT = 58, MB = 56, GAPX = 16, GAPY = 14;

  /* the metric's ticks on every panel; their labels and the metric's name only at a row's left */
  function axisY(g, sy, yr, x0, label, labelled) {
    ticks(yr[0], yr[1], 5).forEach(function (t) {
      g.appendChild(svg("line", { x1: x0 - 4, x2: x0, y1: sy(t), y2: sy(t), "class": "tk" }));
      if (labelled) { g.appendChild(svg("text", { x: x0 - 6, y: sy(t) + 3, "class": "yl" }, fmtNum(t))); }
    });
    if (label) { g.appendChild(svg("text", { x: 14, y: MT + PH / 2, "class": "ylab", transform: "rotate(-90 14 " + (MT + PH / 2) + ")" }, short(label, 40))); }
  }

  function numTicks(g, p, sx, y) {
    var xr = [Math.min.apply(null, p.x), Math.max.apply(null, p.x)];
    var ts = p.log ? ticks(Math.floor(xr[0]), Math.ceil(xr[1]), 5).filter(function (t) { return t === Math.round(t); }) : ticks(xr[0], xr[1], 5);
    ts.forEach(function (t) {
      var x = sx(t);
      if (x < sx(xr[0]) - 12 || x > sx(xr[1]) + 12) { return; }
      g.appendChild(svg("line", { x1: x, x2: x, y1: y, y2: y + 4, "class": "tk" }));
      g.appendChild(svg("text", { x: x, y: y + 15, "class": "xl" }, fmtNum(p.log ? Math.pow(10, t) : t)));
    });
  }

  function numPanel(g, p, d, sy, ox) {
    var xr = [Math.min.apply(null, p.x), Math.max.apply(null, p.x)], w = (xr[1] - xr[0]) || 1;
    var sx = scale(xr[0] - w * 0.04, xr[1] + w * 0.04, ox, ox + PW);
    var distinct = {}; p.x.forEach(function (v) { distinct[v] = 1; });
    var few = Object.keys(distinct).length <= 30 && p.x.length > Object.keys(distinct).length;
    var dots = svg("g", { "class": "runs" });
    p.x.forEach(function (xv, j) {
      var i = p.rows ? p.rows[j] : j;
      dots.appendChild(dot(d, i, sx(xv + (few ? jitter(i) * 0.024 * w : 0)), sy(d.y[i])));
    });
    g.appendChild(dots);
    if (p.means.length) {
      var pts = p.means[0].map(function (xv, k) { return sx(xv).toFixed(1) + "," + sy(p.means[1][k]).toFixed(1); });
      g.appendChild(svg("polyline", { points: pts.join(" "), "class": "mean" }));
      p.means[0].forEach(function (xv, k) { g.appendChild(svg("circle", { cx: sx(xv), cy: sy(p.means[1][k]), r: 2.6, "class": "mean-pt" })); });
    }
    if (p.fit) {
      g.appendChild(svg("line", { x1: sx(xr[0]), x2: sx(xr[1]), y1: sy(p.fit[0] * xr[0] + p.fit[1]), y2: sy(p.fit[0] * xr[1] + p.fit[1]), "class": "fit" }));
      var unit = p.log ? "per decade" : "per unit of " + short(p.param, 20);
      g.appendChild(svg("text", { x: ox + 6, y: MT + 14, "class": "r2" }, "R² = " + p.fit[2].toFixed(3)));
      g.appendChild(svg("text", { x: ox + 6, y: MT + 27, "class": "r2" }, "slope = " + fmtNum(p.fit[0]) + " " + unit));
    }
    numTicks(g, p, sx, MT + PH);
    return short(p.param, 42) + (p.log ? " (log scale)" : "");
  }

  function catPanel(g, p, d, sy, ox) {
    var sx = scale(-0.6, p.cats.length - 0.4, ox, ox + PW), bw = Math.min(40, PW / p.cats.length * 0.55);
    p.boxes.forEach(function (b, k) {  // whisker, quartile, median, quartile, whisker
      var cx = sx(k);
      g.appendChild(svg("line", { x1: cx, x2: cx, y1: sy(b[0]), y2: sy(b[4]), "class": "whisker" }));
      [b[0], b[4]].forEach(function (v) { g.appendChild(svg("line", { x1: cx - bw / 4, x2: cx + bw / 4, y1: sy(v), y2: sy(v), "class": "whisker" })); });
      g.appendChild(svg("rect", { x: cx - bw / 2, y: sy(b[3]), width: bw, height: Math.max(1, sy(b[1]) - sy(b[3])), "class": "box" }));
      g.appendChild(svg("line", { x1: cx - bw / 2, x2: cx + bw / 2, y1: sy(b[2]), y2: sy(b[2]), "class": "median" }));
    });
    p.cats.forEach(function (cat, k) {
      var cx = sx(k), rot = p.cats.length > 4;
      g.appendChild(svg("text", rot ? { x: cx, y: MT + PH + 14, "class": "xl rot", transform: "rotate(-30 " + cx + " " + (MT + PH + 14) + ")" } : { x: cx, y: MT + PH + 15, "class": "xl" }, short(cat, 14)));
    });
    var dots = svg("g", { "class": "runs" });
    p.x.forEach(function (k, i) { dots.appendChild(dot(d, i, sx(k + jitter(i) * 0.36), sy(d.y[i]))); });
    g.appendChild(dots);
    return short(p.param, 42) + " (categories)";
  }

  function dot(d, i, cx, cy) {
    var c = d.order ? viridis(d.span ? (d.order[i] - d.first) / d.span : 1)
      : d.seed.length && d.seed[i] >= 0 ? SEED_COLORS[d.seed[i] % SEED_COLORS.length] : SEED_COLORS[0];
    return svg("circle", { cx: cx.toFixed(1), cy: cy.toFixed(1), r: d.r, fill: c, "fill-opacity": d.alpha, "class": "run", "data-i": i });
  }

  function legend(root, items, y) {
    var x = 70;
    items.forEach(function (it) {
      root.appendChild(it[1] === "line" ? svg("line", { x1: x, x2: x + 16, y1: y - 4, y2: y - 4, "class": it[2] }) : svg("circle", { cx: x + 8, cy: y - 4, r: 4, fill: it[2] }));
      var t = svg("text", { x: x + 20, y: y, "class": "leg" }, it[0]);
      root.appendChild(t);
      x += 30 + 6.5 * it[0].length;
    });
  }

  function legendItems(d) {
    var items = d.order ? [["early run", "dot", viridis(0)], ["middle", "dot", viridis(0.5)], ["late run", "dot", viridis(1)]]
      : d.seeds.length ? d.seeds.map(function (s, k) { return ["seed " + s, "dot", SEED_COLORS[k % SEED_COLORS.length]]; })
        : [["runs", "dot", SEED_COLORS[0]]];
    if (d.panels.some(function (p) { return p.means && p.means.length; })) { items.push(["mean", "line", "mean"]); }
    if (d.panels.some(function (p) { return p.fit; })) { items.push(["linear fit", "line", "fit"]); }
    return items;
  }

  function linearity(box, d) {
    var n = d.panels.length, ncols = n === 4 ? 2 : Math.min(3, n), nrows = Math.ceil(n / ncols);
    var W = ML + ncols * PW + (ncols - 1) * GAPX + MR, H = MT + nrows * (PH + MB) + (nrows - 1) * GAPY;
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "client-svg linearity", role: "img", "aria-label": "Linearity: " + d.label + " against each parameter" });
    d.r = dotRadius(d.n);
    d.alpha = d.order ? 0.85 : dotAlpha(d.n);
    if (d.order) {  // an adaptive sweep's runs: coloured by when each was proposed
      d.first = Math.min.apply(null, d.order);
      d.span = Math.max.apply(null, d.order) - d.first;
    }
    var yr = padded(d.y);
    root.appendChild(svg("text", { x: W / 2, y: 16, "class": "title" }, d.title || "Linearity: " + short(d.label, 42) + " (" + d.better + ") against each parameter"));
    legend(root, legendItems(d), 36);
    d.panels.forEach(function (p, k) {
      var col = k % ncols, row = Math.floor(k / ncols), ox = ML + col * (PW + GAPX), oy = row * (PH + MB + GAPY);
      var g = svg("g", { transform: "translate(0 " + oy + ")", "class": "panel", "data-param": p.param });
      var sy = scale(yr[0], yr[1], MT + PH, MT);
      g.appendChild(svg("rect", { x: ox, y: MT, width: PW, height: PH, "class": "frame" }));
      var xlabel = (p.kind === "num" ? numPanel : catPanel)(g, p, d, sy, ox);
      g.appendChild(svg("text", { x: ox + PW / 2, y: MT + PH + (p.kind === "cat" && p.cats.length > 4 ? 50 : 34), "class": "xlab" }, xlabel));
      axisY(g, sy, yr, ox, col === 0 ? d.label : null, col === 0);
      root.appendChild(g);
    });
    box.appendChild(root);
    interactive(root, d.ids, function (i) {
      var lines = [d.ids[i], d.label + " = " + fmtNum(d.y[i])];
      if (d.seed.length && d.seed[i] >= 0) { lines.push("seed " + d.seeds[d.seed[i]]); }
      if (d.order) { lines.push("run " + (d.order[i] + 1) + " of the sweep"); }
      return lines.concat(paramLines(d.ids[i]));
    });
  }

  // -- timeline -------------------------------------------------------------------------------
  var STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

  function pad2(v) { return (v < 10 ? "0" : "") + v; }

  function utc(sec, step) {
    var t = new Date(sec * 1000), hm = pad2(t.getUTCHours()) + ":" + pad2(t.getUTCMinutes());
    var day = t.getUTCFullYear() + "-" + pad2(t.getUTCMonth() + 1) + "-" + pad2(t.getUTCDate());
    if (step === undefined) { return day + " " + hm + ":" + pad2(t.getUTCSeconds()); }
    if (step >= 86400) { return day; }
    return step < 60 ? hm + ":" + pad2(t.getUTCSeconds()) : hm;
  }

  function timeAxis(g, sx, span, origin, y, labels) {
    var step = STEPS.filter(function (s) { return span / s <= 8; })[0] || 604800 * Math.ceil(span / 604800 / 8);
    var first = Math.ceil(origin / step) * step, day = null;
    for (var t = first; t <= origin + span; t += step) {
      var x = sx(t - origin), today = utc(t, 86400);
      g.appendChild(svg("line", { x1: x, x2: x, y1: y, y2: y + 4, "class": "tk" }));
      if (labels) {  // the date under the first tick and under the first of each new day
        g.appendChild(svg("text", { x: x, y: y + 15, "class": "xl" }, utc(t, step)));
        if (step < 86400 && today !== day) { g.appendChild(svg("text", { x: x, y: y + 27, "class": "xl" }, today)); }
      }
      day = today;
    }
  }

  function duration(s) { return s < 120 ? s.toFixed(1) + " s" : s < 7200 ? (s / 60).toFixed(1) + " min" : (s / 3600).toFixed(1) + " h"; }

  function timeline(box, d) {
    var lanes = d.hosts.reduce(function (a, h) { return a + h.lanes; }, 0);
    var longest = d.hosts.reduce(function (a, h) { return Math.max(a, short(h.host, 24).length); }, 4);
    var L = 24 + 6.6 * longest, W = Math.max(720, L + 900), R = 16, T = 30;
    var GH = Math.min(520, 14 * lanes + 16 * d.hosts.length + 10), TH = 220, gap = 52;
    var H = T + GH + gap + TH + 52;
    var span = Math.max.apply(null, d.hosts.map(function (h) { return Math.max.apply(null, h.e); })) || 1;
    var sx = scale(0, span * 1.01, L, W - R);
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "client-svg timeline", role: "img", "aria-label": "Timeline of the jobs per host" });
    root.appendChild(svg("text", { x: L, y: 16, "class": "title left" }, "Timeline: which machine ran what, when (each bar a job, start → end)"));
    root.appendChild(svg("rect", { x: L, y: T, width: W - R - L, height: GH, "class": "frame" }));
    var ids = [], info = [], rowH = GH / d.hosts.length, bars = svg("g", { "class": "bars" });
    d.hosts.forEach(function (h, k) {
      var y0 = T + k * rowH, lh = rowH * 0.8 / h.lanes;
      root.appendChild(svg("text", { x: L - 6, y: y0 + rowH / 2 + 4, "class": "yl" }, short(h.host, 24)));
      if (k) { root.appendChild(svg("line", { x1: L, x2: W - R, y1: y0, y2: y0, "class": "sep" })); }
      h.ids.forEach(function (id, j) {
        var state = d.states[h.state[j]] || "done", i = ids.length;
        ids.push(id);
        info.push([h.host, state, h.s[j], h.e[j]]);
        bars.appendChild(svg("rect", { x: sx(h.s[j]).toFixed(1), y: (y0 + rowH * 0.1 + h.lane[j] * lh).toFixed(1), width: Math.max(1, sx(h.e[j]) - sx(h.s[j])).toFixed(1), height: Math.max(1, lh * 0.9).toFixed(1), fill: STATE_COLORS[state] || "#888", "class": "bar", "data-i": i }));
      });
    });
    root.appendChild(bars);
    timeAxis(root, sx, span * 1.01, d.origin, T + GH, false);
    throughput(root, d, sx, span, L, W - R, T + GH + gap, TH);
    box.appendChild(root);
    interactive(root, ids, function (i) {
      var r = info[i];
      return [ids[i], r[1] + " on " + r[0], utc(d.origin + r[2]) + " → " + utc(d.origin + r[3]) + " UTC", "ran " + duration(r[3] - r[2])];
    });
  }

  function throughput(root, d, sx, span, x0, x1, top, h) {
    var most = Math.max.apply(null, d.hosts.map(function (hh) { return hh.ids.length; }));
    var sy = scale(0, most * 1.05, top + h, top);
    root.appendChild(svg("text", { x: x0, y: top - 8, "class": "title left" }, "Throughput per host (jobs finished, cumulative)"));
    root.appendChild(svg("rect", { x: x0, y: top, width: x1 - x0, height: h, "class": "frame" }));
    ticks(0, most, 5).forEach(function (t) {
      root.appendChild(svg("text", { x: x0 - 6, y: sy(t) + 3, "class": "yl" }, fmtNum(t)));
      root.appendChild(svg("line", { x1: x0, x2: x1, y1: sy(t), y2: sy(t), "class": "grid" }));
    });
    d.hosts.forEach(function (hh, k) {
      var ends = hh.e.slice().sort(function (a, b) { return a - b; }), path = "M" + sx(ends[0]).toFixed(1) + " " + sy(0).toFixed(1);
      ends.forEach(function (e, j) { path += "V" + sy(j + 1).toFixed(1) + "H" + sx(j + 1 < ends.length ? ends[j + 1] : e).toFixed(1); });
      var color = HOST_COLORS[k % HOST_COLORS.length];
      root.appendChild(svg("path", { d: path, stroke: color, "class": "step" }));
      root.appendChild(svg("line", { x1: x0 + 10, x2: x0 + 28, y1: top + 14 + k * 15, y2: top + 14 + k * 15, stroke: color, "class": "step" }));
      root.appendChild(svg("text", { x: x0 + 32, y: top + 18 + k * 15, "class": "leg" }, short(hh.host, 24) + ": " + hh.ids.length + " jobs, " + fmtNum(hh.per_hour) + "/h"));
    });
    timeAxis(root, sx, span * 1.01, d.origin, top + h, true);
    root.appendChild(svg("text", { x: (x0 + x1) / 2, y: top + h + 42, "class": "xlab" }, "time (UTC)"));
  }

  // -- usage: a row of dots per host, the host's median as a bar ------------------------------
  function usagePanel(root, p, hosts, ox, w, T, rowH, add) {
    var all = [].concat.apply([], p.values), top = all.length ? Math.max.apply(null, all) : 1;
    var sx = scale(0, top * 1.05 || 1, ox, ox + w);
    root.appendChild(svg("rect", { x: ox, y: T, width: w, height: rowH * hosts.length, "class": "frame" }));
    ticks(0, top * 1.05 || 1, 5).forEach(function (t) {
      root.appendChild(svg("line", { x1: sx(t), x2: sx(t), y1: T + rowH * hosts.length, y2: T + rowH * hosts.length + 4, "class": "tk" }));
      root.appendChild(svg("text", { x: sx(t), y: T + rowH * hosts.length + 15, "class": "xl" }, fmtNum(t)));
    });
    root.appendChild(svg("text", { x: ox + w / 2, y: T + rowH * hosts.length + 32, "class": "xlab" }, p.label));
    var dots = svg("g", { "class": "runs" });
    hosts.forEach(function (h, k) {
      var cy = T + rowH * (k + 0.5);
      if (p.medians[k] !== null) { root.appendChild(svg("rect", { x: ox, y: cy - rowH * 0.3, width: Math.max(0, sx(p.medians[k]) - ox), height: rowH * 0.6, "class": "median-bar" })); }
      p.values[k].forEach(function (v, j) { dots.appendChild(add(p.ids[k][j], v, sx(v), cy + jitter(j) * rowH * 0.36)); });
    });
    root.appendChild(dots);
  }

  function usage(box, d) {
    var longest = d.hosts.reduce(function (a, h) { return Math.max(a, short(h, 24).length); }, 4);
    var L = 24 + 6.6 * longest, w = 380, gap = 24, T = 30, rowH = 34, W = L + 2 * w + gap + 16, H = T + rowH * d.hosts.length + 44;
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "client-svg usage", role: "img", "aria-label": "Time and memory per machine" });
    root.appendChild(svg("text", { x: L, y: 16, "class": "title left" }, "Time and memory per machine (dot: a job; bar: median)"));
    d.hosts.forEach(function (h, k) { root.appendChild(svg("text", { x: L - 6, y: T + rowH * (k + 0.5) + 4, "class": "yl" }, short(h, 24))); });
    var ids = [], info = [];
    d.panels.forEach(function (p, n) {
      usagePanel(root, p, d.hosts, L + n * (w + gap), w, T, rowH, function (id, v, cx, cy) {
        ids.push(id);
        info.push(p.label + ": " + fmtNum(v));
        return svg("circle", { cx: cx.toFixed(1), cy: cy.toFixed(1), r: 3, fill: SEED_COLORS[0], "fill-opacity": 0.8, "class": "run", "data-i": ids.length - 1 });
      });
    });
    box.appendChild(root);
    interactive(root, ids, function (i) { return [ids[i], info[i]]; });
  }

  // -- an adaptive sweep's trace: each run's value in proposal order, the best so far ----------
  function trace(box, d) {
    var W = 760, H = 330, L = 70, R = 16, T = 40, B = 46;
    var sx = scale(0.5, Math.max.apply(null, d.slot) + 1.5, L, W - R), yr = padded(d.y), sy = scale(yr[0], yr[1], H - B, T);
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "client-svg trace", role: "img", "aria-label": "Optimisation trace" });
    root.appendChild(svg("text", { x: W / 2, y: 16, "class": "title" }, "Optimisation trace: " + short(d.metric, 40)));
    root.appendChild(svg("rect", { x: L, y: T, width: W - R - L, height: H - B - T, "class": "frame" }));
    axisY(root, sy, yr, L, null, true);
    root.appendChild(svg("text", { x: 14, y: (T + H - B) / 2, "class": "ylab", transform: "rotate(-90 14 " + (T + H - B) / 2 + ")" }, short(d.metric, 30) + (d.goal === "minimize" ? " (lower is better)" : " (higher is better)")));
    ticks(1, Math.max.apply(null, d.slot) + 1, 8).filter(function (t) { return t === Math.round(t); }).forEach(function (t) {
      root.appendChild(svg("line", { x1: sx(t), x2: sx(t), y1: H - B, y2: H - B + 4, "class": "tk" }));
      root.appendChild(svg("text", { x: sx(t), y: H - B + 15, "class": "xl" }, String(t)));
    });
    root.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 8, "class": "xlab" }, "run (slot + 1)"));
    var best = null, path = "", pick = d.goal === "minimize" ? Math.min : Math.max;
    d.y.forEach(function (v, i) {
      best = best === null ? v : pick(best, v);
      path += (i ? "H" + sx(d.slot[i] + 1).toFixed(1) + "V" : "M" + sx(d.slot[i] + 1).toFixed(1) + " ") + sy(best).toFixed(1);
    });
    root.appendChild(svg("path", { d: path, "class": "best-step" }));
    var dots = svg("g", { "class": "runs" });
    d.y.forEach(function (v, i) {
      dots.appendChild(svg("circle", { cx: sx(d.slot[i] + 1).toFixed(1), cy: sy(v).toFixed(1), r: 4, fill: d.method[i] === "gp" ? "#4c72b0" : "#8c8c8c", "fill-opacity": 0.85, "class": "run", "data-i": i }));
    });
    root.appendChild(dots);
    legend(root, [["random point", "dot", "#8c8c8c"], ["model's point", "dot", "#4c72b0"], ["best so far", "line", "best-step"]], 32);
    box.appendChild(root);
    interactive(root, d.ids, function (i) {
      return [d.ids[i], d.metric + " = " + fmtNum(d.y[i]), "run " + (d.slot[i] + 1) + ", " + (d.method[i] === "gp" ? "the model's point" : "a random point")].concat(paramLines(d.ids[i]));
    });
  }

  // -- start ----------------------------------------------------------------------------------
  K.register({ linearity: linearity, timeline: timeline, usage: usage, trace: trace });
})();
