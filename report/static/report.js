/* housespool report: sortable and filterable tables. No dependencies, no network. */
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

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), setUpSorting);
    Array.prototype.forEach.call(document.querySelectorAll("input.filter"), setUpFilter);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
