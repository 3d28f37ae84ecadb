"""The `--where` language: parsing by hand (never eval) and what each comparison means."""

from __future__ import annotations

import math

import pytest

from spool.errors import UsageError
from spool.where import Filter, parse_where

COLS = ["id", "state", "host", "started", "param.lr", "param.model", "label.group", "label.seed", "result.acc"]
ROWS = [
    {"id": "a", "state": "done", "param.lr": 0.001, "param.model": "rf", "label.group": "a",
     "label.seed": "3", "result.acc": 0.95, "started": "2026-11-30T10:00:00+00:00", "host": "imac"},
    {"id": "b", "state": "done", "param.lr": 0.1, "param.model": "svm", "label.group": "b",
     "result.acc": 0.7, "started": "2026-11-29T10:00:00+00:00", "host": "gtx"},
    {"id": "c", "state": "failed", "param.lr": 0.01, "param.model": "logreg", "result.acc": math.nan,
     "host": "imac"},
]


def ids(*exprs: str) -> list[str]:
    return [ROWS[i]["id"] for i in Filter(list(exprs)).rows(ROWS, COLS)]


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("param.lr < 0.01", ["a"]),
        ("param.lr <= 0.01", ["a", "c"]),
        ("lr >= 0.01", ["b", "c"]),  # a short name, as --sort takes it
        ("result.acc >= 0.9", ["a"]),
        ("acc < 0.9", ["b"]),  # NaN is missing: it matches no ordering
        ("label.group == a", ["a"]),
        ("label.group = 'a'", ["a"]),
        ("label.group != a", ["b", "c"]),  # a missing label is not 'a'
        ("label.group == null", ["c"]),
        ("param.model in [rf, svm]", ["a", "b"]),
        ("param.model not in (rf, svm)", ["c"]),
        ("label.seed == 3", ["a"]),  # a label is text; a number compares with a text that reads as one
        ("state == done and host == imac", ["a"]),
        ("state == failed or lr > 0.05", ["b", "c"]),
        ("not (state == failed or lr > 0.05)", ["a"]),
        ("NOT state == done", ["c"]),
        ("started >= 2026-11-30", ["a"]),
        (r"host == 'it\'s'", []),
        ("param.model > 3", []),  # a word and a number: never an ordering, never an error
        ('param.model == "rf" and (acc > 0.5 or lr == 1e-3)', ["a"]),
    ],
)
def test_comparisons(expr, want):
    assert ids(expr) == want


def test_every_expression_must_hold():
    assert ids("state == done", "lr > 0.01") == ["b"]
    assert ids() == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("param.lr <", "expected a value"),
        ("param.lr 0.1", "expected a comparison"),
        ("(state == done", "expected ')'"),
        ("state == done and", "expected a column"),
        ("state in rf", "expected '['"),
        ("state == done extra", "expected 'and', 'or'"),
        ("__import__('os').system('x')", "expected a comparison"),
        ("", "empty"),
        ("0.1 < lr", "expected a column"),
    ],
)
def test_errors_name_the_spot(expr, words):
    with pytest.raises(UsageError) as e:
        parse_where(expr)
    assert words in str(e.value)


def test_unknown_column_is_refused_with_the_choices():
    with pytest.raises(UsageError) as e:
        Filter("param.lrr < 1").bind(COLS)
    assert "unknown column 'param.lrr'" in str(e.value) and "param.lr" in str(e.value)


def test_no_eval_anywhere():
    import inspect

    import spool.where as w

    src = inspect.getsource(w)
    assert "eval(" not in src.replace("_eval(", "") and "exec(" not in src


def test_long_expressions_are_refused():
    with pytest.raises(UsageError):
        parse_where("lr < 1 and " * 300 + "lr < 1")
