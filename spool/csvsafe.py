"""A DataFrame as CSV text a spreadsheet opens safely: text from the folder (a job's name, a
script's result) must not become a formula when someone double-clicks the file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["to_csv"]

#: a spreadsheet takes a cell starting with one of these as a formula (OWASP's list)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _defused(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(df: pd.DataFrame) -> str:
    """`df` as CSV text, safe to open in a spreadsheet: a text cell (or a column name) that
    starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, as
    spreadsheet users expect (`=HYPERLINK(...)` from a job's name stays text). Numbers are
    written as numbers: `-0.5` is not text and is left alone."""
    import pandas as pd

    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_datetime64_any_dtype(out[col])):
            out[col] = out[col].map(_defused).astype(object)
    out.columns = [_defused(str(c)) for c in out.columns]
    return str(out.to_csv(index=False))
