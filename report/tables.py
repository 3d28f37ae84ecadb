"""The results tables' bodies: one row per job, cells cached in `.cache/rows-<name>.json` by job key."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pandas as pd
from markupsafe import Markup, escape

from report.data import Column, cell
from report.incremental import FORMAT, JobKey, sig_hash
from report.jsoncache import keep_entries, read_json
from report.render import Renderer, records

__all__ = ["table_rows"]


def table_rows(
    renderer: Renderer,
    name: str,
    df: pd.DataFrame,
    columns: list[Column],
    job_key: dict[str, JobKey | None],
    root: str,
) -> Markup:
    """The table body: one row per job, in `df`'s order, rank first.

    Each row's cells are rendered by the autoescaping `row_cells` macro and kept in
    `.cache/rows-<name>.json` under the job's key (and a hash of the columns), so a rebuild
    renders only the rows of new or changed jobs; the file is rewritten when that pays
    (`jsoncache.worth_rewriting`). The rank cell is added here (it moves).
    """
    path = renderer.out / ".cache" / f"rows-{name}.json"
    ranked = bool(columns) and columns[0].key == "#"
    cols = columns[1:] if ranked else columns
    col_sig = sig_hash([(c.key, c.kind, c.title) for c in cols], root, FORMAT)
    cached: dict[str, Any] = {}
    try:
        doc = read_json(path)
        if doc.get("cols") == col_sig:
            cached = doc["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        cached = {}
    ids = df["id"].astype(str).tolist() if "id" in df.columns else []
    states = df["state"].astype(str).tolist() if "state" in df.columns else [""] * len(ids)
    html: list[str | None] = [None] * len(ids)
    missing: list[int] = []
    for i, jid in enumerate(ids):
        k = job_key.get(jid)
        hit = cached.get(jid)
        if k is not None and isinstance(hit, list) and len(hit) == 2 and hit[0] == list(k):
            html[i] = hit[1]
        else:
            missing.append(i)
    if missing:
        module: Any = renderer.env.get_template("_macros.html.j2").make_module()
        row_cells = module.row_cells
        keys = [c.key for c in cols if c.key not in ("id", "state")]
        recs = records(df.iloc[missing], keys)
        for i, rec in zip(missing, recs, strict=True):
            cells = []
            for c in cols:
                if c.key == "id":
                    cells.append((ids[i], quote(ids[i]), "id"))
                elif c.key == "state":
                    cells.append((states[i], "", "s"))
                else:
                    cells.append(cell(c, rec.get(c.key)))
            html[i] = str(row_cells(cells, root))
    classes = {st: f'<tr class="r-{escape(st)}">' for st in set(states)}  # a few states, escaped once
    if ranked:
        out = [
            f'{classes[state]}<td class="n" data-v="{n}">{n}</td>{h}</tr>\n'
            for n, (state, h) in enumerate(zip(states, html, strict=True), start=1)
        ]
    else:
        out = [f"{classes[state]}{h}</tr>\n" for state, h in zip(states, html, strict=True)]

    def entries() -> dict[str, Any]:  # only when the file is rewritten
        keyed = zip(ids, html, strict=True)
        return {jid: [list(k), h] for jid, h in keyed if (k := job_key.get(jid)) is not None}

    keep_entries(path, col_sig, "rows", entries, len(missing), bool(cached) or not ids)
    # the cells were escaped by the macro; the tags and rank around them are ours
    return Markup("".join(out))
