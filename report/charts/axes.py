"""What every sweep chart shares: a figure on Agg, the style, ticks, margins, saving, label and point sizes.

No pyplot: a `Figure` with its own Agg canvas needs no figure manager, no `close`, no global
state, and can be drawn in any process of the build's pool.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "significant",
    "DPI",
    "RC",
    "SEED_COLORS",
    "CHAR_IN",
    "figure",
    "style",
    "save",
    "log_axis",
    "margins",
    "short",
    "finite_rows",
    "id_sample",
    "rounded",
]

DPI = 100
#: user strings are drawn as text, never parsed as mathtext ("$" in a param value stays a "$")
RC: dict[str, Any] = {
    "text.parse_math": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "path.simplify": True,
    "agg.path.chunksize": 10000,
}
SEED_COLORS = [
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
]


def figure(width: float, height: float) -> Any:
    """A figure of that size (inches) on its own Agg canvas; call inside `style()`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def style() -> Any:
    """The charts' rcParams for the duration of a `with` (figures read them when made and saved)."""
    import matplotlib

    rc: Any = {**RC, "svg.fonttype": "none", "svg.hashsalt": "housespool"}
    return matplotlib.rc_context(rc)


def save(fig: Any, path: Path) -> Path:
    """Write the figure by its file's suffix: `.png` (many points) or `.svg` (text-heavy charts).

    PNG uses zlib level 1 (a third of the default's encoding time, files ~20% larger). SVG keeps
    text as text (`svg.fonttype: none`): smaller and faster to write than glyph outlines, crisp
    at any zoom; matplotlib escapes it as XML, and an <img> never runs what is inside. The bytes
    go through the spool's one atomic write (a unique temp name, so two builds never collide);
    no fsync: a report is rebuilt from the spool, and its manifest is written last.
    """
    from spool.protocol import publish_bytes

    buf = io.BytesIO()
    if path.suffix == ".svg":
        fig.savefig(buf, format="svg", dpi=DPI, metadata={"Date": None, "Creator": None})
    else:
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    path.parent.mkdir(parents=True, exist_ok=True)
    publish_bytes(path, buf.getvalue(), fsync=False)
    return path


def log_axis(axis: Any) -> None:
    """Log scale with plain tick labels (0.001, 0.01, ...): mathtext is off, so no 10^x labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(base=10, numticks=6))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_locator(NullLocator())  # minor ticks are artists too (8 a decade): none


CHAR_IN = 0.068  # width of one character at the tick-label size, in inches (generous for DejaVu Sans 8-9 pt)


def margins(
    fig: Any, left: float, right: float, top: float, bottom: float, wspace: float = 0.0, hspace: float = 0.0
) -> None:
    """Fixed margins in inches (tight_layout measures every text: a third of a chart's cost)."""
    w, h = fig.get_size_inches()
    kw: dict[str, float] = {
        "left": left / w,
        "right": 1 - right / w,
        "top": 1 - top / h,
        "bottom": bottom / h,
    }
    if wspace:
        kw["wspace"] = wspace
    if hspace:
        kw["hspace"] = hspace
    fig.subplots_adjust(**kw)


def short(text: str, n: int = 42) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def finite_rows(df: pd.DataFrame, column: str) -> pd.DataFrame:
    vals = pd.to_numeric(df[column], errors="coerce")
    ok = vals.notna() & np.isfinite(vals.astype(float))
    if "state" in df.columns:
        ok &= df["state"] == "done"
    return df[ok].assign(**{column: vals[ok].astype(float)})


def id_sample(ids: list[str], budget: int) -> np.ndarray:
    """Which of `ids` a chart draws when it has more runs than `budget` (a boolean mask): the ids
    whose hash falls below 2**-k, k the least with len(ids) * 2**-k <= budget (so about half to
    all of the budget). Fixed by each id alone, not by the others: a new run changes the sample
    only when it falls in it itself (or the runs double), so a sampled chart keeps its digest,
    and is not redrawn, when a run outside its sample arrives."""
    n = len(ids)
    if n <= budget:
        return np.ones(n, dtype=bool)
    k = math.ceil(math.log2(n / budget))
    cut = (1 << 32) >> k
    return np.array([_id_hash(i) for i in ids]) < cut


_HASHES: dict[str, int] = {}  #: each id's `_id_hash` (a pure function of the id), in this process


def _id_hash(job_id: str) -> int:
    h = _HASHES.get(job_id)
    if h is None:
        if len(_HASHES) > 1_000_000:
            _HASHES.clear()
        h = _HASHES[job_id] = int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=4).digest(), "big")
    return h


def significant(values: Any) -> list[float | None]:
    """Each value to 6 significant digits of its own (a log axis spans decades, where `rounded`
    would flatten the small ones), None where it is not finite: for a page's JSON."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


def rounded(values: Any, digits: int = 6) -> list[float]:
    """Finite numbers as a list, to `digits` significant digits of the largest (for a page's JSON:
    a third of the text of full floats, the same chart)."""
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return []
    top = float(np.max(np.abs(a)))
    decimals = digits - 1 - math.floor(math.log10(top)) if 0 < top < math.inf else 0
    return list(np.round(a, min(max(decimals, 0), 15)).tolist())
