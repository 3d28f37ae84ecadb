/* housespool report: sortable and filterable tables, live pages, the compare view. No dependencies, no network. */
(function () {
  "use strict";

  function cellValue(row, idx, numeric) {
    var td = row.cells[idx];
    if (!td) { return null; }
    var raw = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
    if (numeric) {
      if (raw === "") { return null; }
      var f = parseFloat(raw);
      return isNaN(f) ? null : f;
    }
    return raw === "" ? null : raw.toLowerCase();
  }

  function sortTable(table, th) {
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row, pos) {
      return { v: cellValue(row, idx, numeric), pos: pos, row: row };
    });
    keyed.sort(function (a, b) {
      if (a.v === null && b.v === null) { return a.pos - b.pos; }
      if (a.v === null) { return 1; }   // empty cells last, whichever the direction
      if (b.v === null) { return -1; }
      var c = numeric ? a.v - b.v : (a.v < b.v ? -1 : (a.v > b.v ? 1 : 0));
      if (c === 0) { return a.pos - b.pos; }
      return ascending ? c : -c;
    });
    var frag = document.createDocumentFragment();
    keyed.forEach(function (k) { frag.appendChild(k.row); });
    body.appendChild(frag);
  }

  function setUpSorting(table) {
    if (!table.tHead) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortTable(table, th); });
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortTable(table, th); }
      });
    });
  }

  function setUpFilter(input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    if (!table) { return; }
    var counter = document.querySelector('.rowcount[data-table="' + input.getAttribute("data-table") + '"]');
    var texts = null;
    var timer = null;
    function apply() {
      var rows = table.tBodies[0].rows;
      if (texts === null) {
        texts = new WeakMap();
      }
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      for (var i = 0; i < rows.length; i++) {
        var row = rows[i];
        var text = texts.get(row);
        if (text === undefined) { text = row.textContent.toLowerCase(); texts.set(row, text); }
        var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
        row.hidden = !ok;
        if (ok) { shown++; }
      }
      if (counter) {
        counter.textContent = words.length ? shown + " of " + rows.length + " rows" : rows.length + " rows";
      }
    }
    input.addEventListener("input", function () {
      if (timer !== null) { clearTimeout(timer); }
      timer = setTimeout(apply, table.tBodies[0].rows.length > 2000 ? 120 : 0);
    });
  }

  /* Live pages: load live.js (written by every build) every few seconds; reload when it says
     this page was rewritten. Only pages that show unfinished work carry data-live. */
  function setUpLive() {
    var body = document.body;
    var key = body.getAttribute("data-live");
    if (!key) { return; }
    var mine = body.getAttribute("data-live-sig");
    var src = body.getAttribute("data-live-src");
    var ms = parseInt(body.getAttribute("data-live-ms"), 10) || 2000;
    var reloading = false;
    window.spoolLive = function (state) {
      var now = state && state.pages ? state.pages[key] : undefined;
      if (!reloading && typeof now === "string" && now !== mine) {
        reloading = true;
        window.location.reload();
      }
    };
    function poll() {
      if (reloading) { return; }
      var s = document.createElement("script");
      s.src = src + "?t=" + Date.now();
      s.onload = s.onerror = function () { s.remove(); };
      document.head.appendChild(s);
    }
    window.setInterval(poll, ms);
  }

  /* Compare: tick 2-5 runs in the results table; their parameters side by side and their
     metrics lines overlaid, from the JSON already in the page. */
  var COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"];
  var SVGNS = "http://www.w3.org/2000/svg";
  var MAX_COMPARE = 5;

  function el(tag, attrs, text) {
    var e = tag.indexOf("svg:") === 0 ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function fmtNum(v) {
    return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(4));
  }

  function paramsTable(table, runs) {
    table.textContent = "";
    var head = el("tr");
    head.appendChild(el("th", {}, ""));
    runs.forEach(function (r, i) {
      var th = el("th");
      th.style.color = COLORS[i];  // CSSOM, not a style attribute: the page's CSP forbids those
      th.appendChild(el("a", { href: "../jobs/" + encodeURIComponent(r.id) + ".html" }, r.id));
      head.appendChild(th);
    });
    table.appendChild(head);
    function section(title, field) {
      var names = [];
      runs.forEach(function (r) { Object.keys(r[field] || {}).forEach(function (k) { if (names.indexOf(k) < 0) { names.push(k); } }); });
      if (!names.length) { return; }
      var tr = el("tr", { "class": "sec" });
      tr.appendChild(el("th", { colspan: String(runs.length + 1) }, title));
      table.appendChild(tr);
      names.forEach(function (k) {
        var row = el("tr");
        var vals = runs.map(function (r) { return (r[field] || {})[k]; });
        var differ = vals.some(function (v) { return v !== vals[0]; });
        if (differ) { row.className = "differ"; }
        row.appendChild(el("th", {}, k));
        vals.forEach(function (v) { row.appendChild(el("td", {}, v === undefined ? "" : v)); });
        table.appendChild(row);
      });
    }
    section("parameters", "params");
    section("result", "result");
  }

  function plot(box, runs, key) {
    box.textContent = "";
    var W = 560, H = 300, L = 62, R = 12, T = 12, B = 36;
    var series = runs.map(function (r, i) { return { c: COLORS[i], id: r.id, xy: r.curves && r.curves[key] }; })
      .filter(function (s) { return s.xy; });
    if (!series.length) { box.appendChild(el("p", { "class": "muted" }, "No selected run logged " + key + " on more than one line.")); return; }
    var xs = [], ys = [];
    series.forEach(function (s) { xs = xs.concat(s.xy[0]); ys = ys.concat(s.xy[1]); });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    function sx(x) { return L + (x - x0) / (x1 - x0) * (W - L - R); }
    function sy(y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); }
    var svg = el("svg:svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "compare-svg", role: "img" });
    svg.appendChild(el("svg:line", { x1: L, y1: H - B, x2: W - R, y2: H - B, "class": "ax" }));
    svg.appendChild(el("svg:line", { x1: L, y1: T, x2: L, y2: H - B, "class": "ax" }));
    [[y0, H - B], [y1, T + 8]].forEach(function (t) { svg.appendChild(el("svg:text", { x: L - 5, y: t[1], "class": "yl" }, fmtNum(t[0]))); });
    svg.appendChild(el("svg:text", { x: L, y: H - B + 14, "class": "xl0" }, fmtNum(x0)));
    svg.appendChild(el("svg:text", { x: W - R, y: H - B + 14, "class": "xl1" }, fmtNum(x1)));
    svg.appendChild(el("svg:text", { x: (L + W - R) / 2, y: H - 6, "class": "xl" }, (runs[0].x || "step") + " — " + key));
    series.forEach(function (s) {
      var pts = s.xy[0].map(function (x, j) { return sx(x).toFixed(1) + "," + sy(s.xy[1][j]).toFixed(1); }).join(" ");
      var line = el("svg:polyline", { points: pts, fill: "none", stroke: s.c, "stroke-width": "2", "data-run": s.id });
      line.appendChild(el("svg:title", {}, s.id));
      svg.appendChild(line);
    });
    box.appendChild(svg);
  }

  function setUpCompare() {
    var data = document.getElementById("runs-data");
    var table = document.getElementById("results");
    var panel = document.getElementById("compare");
    if (!data || !table || !panel) { return; }
    var byId = {};
    JSON.parse(data.textContent).runs.forEach(function (r) { byId[r.id] = r; });
    var picked = [];
    var select = document.getElementById("compare-key");
    var th = el("th", { "data-type": "text", title: "tick 2 to 5 runs to compare them" }, "compare");
    table.tHead.rows[0].insertBefore(th, table.tHead.rows[0].cells[0]);
    var boxes = [];
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var link = row.querySelector('a[href*="jobs/"]');
      var td = el("td", { "class": "pick" });
      if (link && byId[link.textContent]) {
        var box = el("input", { type: "checkbox", "class": "compare-pick", "data-id": link.textContent, "aria-label": "compare " + link.textContent });
        td.appendChild(box);
        boxes.push(box);
      }
      row.insertBefore(td, row.cells[0]);
    });
    function update() {
      boxes.forEach(function (b) { b.disabled = !b.checked && picked.length >= MAX_COMPARE; });
      document.getElementById("compare-count").textContent = picked.length + " of at most " + MAX_COMPARE + " runs";
      if (picked.length < 2) { panel.hidden = true; return; }
      panel.hidden = false;
      var runs = picked.map(function (id) { return byId[id]; });
      paramsTable(document.getElementById("compare-params"), runs);
      var keys = [];
      runs.forEach(function (r) { Object.keys(r.curves || {}).forEach(function (k) { if (keys.indexOf(k) < 0) { keys.push(k); } }); });
      var keep = select.value;
      select.textContent = "";
      keys.forEach(function (k) { select.appendChild(el("option", { value: k }, k)); });
      if (keys.indexOf(keep) >= 0) { select.value = keep; }
      document.getElementById("compare-curves").hidden = !keys.length;
      if (keys.length) { plot(document.getElementById("compare-plot"), runs, select.value); }
    }
    boxes.forEach(function (b) {
      b.addEventListener("change", function () {
        var id = b.getAttribute("data-id");
        var at = picked.indexOf(id);
        if (b.checked && at < 0) { picked.push(id); }
        if (!b.checked && at >= 0) { picked.splice(at, 1); }
        update();
      });
    });
    select.addEventListener("change", update);
    document.getElementById("compare-clear").addEventListener("click", function () {
      boxes.forEach(function (b) { b.checked = false; });
      picked = [];
      update();
    });
  }

  function init() {
    setUpCompare();  // first: it adds a column the sorting then counts
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), setUpSorting);
    Array.prototype.forEach.call(document.querySelectorAll("input.filter"), setUpFilter);
    setUpLive();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
