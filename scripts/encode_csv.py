"""Encode a CSV for machine learning: the original worker's ``argv4`` script layout.

Usage::

    python encode_csv.py <dataFileName> <dataPath> <writePath> <json of execution>

``dataPath`` and ``writePath`` end with a path separator: the file read is
``dataPath + dataFileName`` and the file written is ``writePath + <stem>_encoded.csv``
(plain string concatenation, as the old scripts do).

Each column is renamed with a prefix naming its kind: ``num_`` (numbers), ``bool_``
(true/false, written as 0/1), ``date_`` (ISO dates, written as ISO text) and ``cat_``
(anything else, one-hot encoded into ``cat_<column>_<value>`` 0/1 columns).

``execution`` options (all optional, unknown keys are ignored):

- ``max_columns`` (int, default 100): refuse when the encoded file would have more columns;
- ``drop`` (list of column names): columns removed before encoding;
- ``sep`` (str, default ``","``): the field separator of the input file.

The last stdout line is one JSON object, in the old convention: ``"status": 200`` on success,
``400`` for a refusal or bad input, ``404`` for a missing file; the exit code is 0 either way.
"""

from __future__ import annotations

import json
import os
import re
import sys

USAGE = "usage: encode_csv.py <dataFileName> <dataPath> <writePath> <json of execution>"
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
TRUE_WORDS = {"true", "yes"}
FALSE_WORDS = {"false", "no"}


def reply(status: int, **fields: object) -> int:
    """Print the one result line and return the exit code (always 0, the old convention)."""
    print(json.dumps({"status": status, **fields}), flush=True)
    return 0


def kind_of(series) -> str:
    """``bool``, ``num``, ``date`` or ``cat`` for one column."""
    import pandas as pd

    types = pd.api.types
    if types.is_bool_dtype(series):
        return "bool"
    if types.is_numeric_dtype(series):
        return "num"
    if types.is_datetime64_any_dtype(series):
        return "date"
    values = series.dropna()
    if len(values) == 0:
        return "cat"
    text = values.astype(str).str.strip()
    lowered = set(text.str.lower().unique())
    if lowered <= TRUE_WORDS | FALSE_WORDS:
        return "bool"
    if text.map(lambda s: bool(ISO_DATE.match(s))).all():
        return "date"
    return "cat"


def encode_column(name: str, series, kind: str):
    """The encoded frame for one input column."""
    import pandas as pd

    if kind == "num":
        return series.rename(f"num_{name}").to_frame()
    if kind == "bool":
        if pd.api.types.is_bool_dtype(series):
            out = series.astype(int)
        else:
            lowered = series.astype(str).str.strip().str.lower()
            out = lowered.map(lambda s: 1 if s in TRUE_WORDS else (0 if s in FALSE_WORDS else None))
            out = out.where(series.notna()).astype("Int64")
        return out.rename(f"bool_{name}").to_frame()
    if kind == "date":
        stamps = pd.to_datetime(series, errors="coerce")
        valid = stamps.dropna()
        only_dates = bool(((valid.dt.hour == 0) & (valid.dt.minute == 0) & (valid.dt.second == 0)).all())
        text = stamps.dt.strftime("%Y-%m-%d" if only_dates else "%Y-%m-%dT%H:%M:%S")
        return text.rename(f"date_{name}").to_frame()
    dummies = pd.get_dummies(series.astype(object), prefix=f"cat_{name}", prefix_sep="_", dtype=int)
    return dummies


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        return reply(400, message=f"expected 4 arguments, got {len(argv) - 1}; {USAGE}")
    data_file_name, data_path, write_path, execution_text = argv[1:5]
    try:
        execution = json.loads(execution_text) if execution_text.strip() else {}
    except json.JSONDecodeError as exc:
        return reply(400, message=f"execution is not valid JSON: {exc}")
    if not isinstance(execution, dict):
        return reply(400, message="execution must be a JSON object")

    max_columns = execution.get("max_columns", 100)
    drop = execution.get("drop", [])
    sep = execution.get("sep", ",")
    if isinstance(max_columns, bool) or not isinstance(max_columns, int) or max_columns < 1:
        return reply(400, message=f"max_columns must be a positive integer, got {max_columns!r}")
    if isinstance(drop, str):
        drop = [drop]
    if not isinstance(drop, list) or not all(isinstance(c, str) for c in drop):
        return reply(400, message="drop must be a list of column names")

    source = data_path + data_file_name
    if not os.path.isfile(source):
        return reply(404, message=f"data file not found: {source}")

    import pandas as pd

    try:
        frame = pd.read_csv(source, sep=sep)
    except Exception as exc:  # a file the old worker could not read is a 400, not a crash
        return reply(400, message=f"cannot read {data_file_name} as CSV: {type(exc).__name__}: {exc}")

    columns_in = int(frame.shape[1])
    missing = [c for c in drop if c not in frame.columns]
    if missing:
        return reply(400, message=f"drop names columns not in {data_file_name}: {missing}")
    frame = frame.drop(columns=drop)

    kinds = {str(name): kind_of(frame[name]) for name in frame.columns}
    projected = sum(
        int(frame[name].nunique(dropna=True)) if kinds[str(name)] == "cat" else 1 for name in frame.columns
    )
    if projected > max_columns:
        widest = max(
            (name for name in frame.columns if kinds[str(name)] == "cat"),
            key=lambda name: frame[name].nunique(dropna=True),
        )
        return reply(
            400,
            message=(
                f"one-hot encoding would make {projected} columns, more than max_columns={max_columns} "
                f"(column {widest!r} has {int(frame[widest].nunique(dropna=True))} distinct values)"
            ),
            projected_columns=projected,
            max_columns=max_columns,
        )

    parts = [encode_column(str(name), frame[name], kinds[str(name)]) for name in frame.columns]
    encoded = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)

    stem = os.path.splitext(os.path.basename(data_file_name))[0]
    output = f"{stem}_encoded.csv"
    if write_path and not os.path.isdir(write_path):
        os.makedirs(write_path, exist_ok=True)
    encoded.to_csv(write_path + output, index=False)

    return reply(
        200,
        rows=int(encoded.shape[0]),
        columns_in=columns_in,
        columns_out=int(encoded.shape[1]),
        output=output,
        path=write_path + output,  # as the original workers' scripts report it: the path written
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
