"""`--where`: a small filter language over result and job columns, parsed by hand (never `eval`).

    param.lr < 0.01                     result.accuracy >= 0.9 and host != imac
    label.group == a                    param.model in [rf, svm]
    not (state == failed or error.kind == timeout)

Grammar (keywords are case-insensitive):

    expr  := term ("or" term)*          term := factor ("and" factor)*
    factor:= "not" factor | "(" expr ")" | COLUMN OP VALUE | COLUMN ["not"] "in" LIST
    OP    := == | = | != | < | <= | > | >=          LIST := "[" VALUE ("," VALUE)* "]"  (or round brackets)
    VALUE := a number, true, false, null, a 'quoted' or "quoted" string, or a bare word (a string)

The left side is always a column (full name, or short: `lr` for `param.lr`, as `--sort`); the
right side is always a value. A missing value (no such key in that row, NaN) matches `!=`,
`not in` and `== null` only. Numbers compare as numbers (a text cell that reads as a number, such
as a label `seed=3`, too); times (`started`, `ended`) compare with ISO dates (`started >= 2026-11-30`);
an ordering between a number and a word is false, never an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from spool.errors import UsageError

__all__ = ["Filter", "parse_where", "compile_where", "resolve_column", "MAX_WHERE"]

MAX_WHERE = 2000  # characters in one expression; a filter is a line, not a program

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<=|>=|=|<|>)
    | (?P<punct>[()\[\],])
    | (?P<word>[^\s()\[\],'"<>=!]+)
    )""",
    re.VERBOSE,
)
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_KEYWORDS = {"and", "or", "not", "in"}
_CONSTANTS = {"true": True, "false": False, "null": None, "none": None}
_MISSING = object()


def resolve_column(name: str, columns: Sequence[str], flag: str) -> str:
    """A column by its full name, or by its short one (`val_acc` for `result.val_acc`, then `param.`...)."""
    if name in columns:
        return name
    for prefix in ("result.", "param.", "label.", "usage.", "git.", "error."):
        if prefix + name in columns:
            return prefix + name
    raise UsageError(f"unknown column {name!r} for {flag}; available: {', '.join(columns)}")


@dataclass(frozen=True)
class _Tok:
    kind: str  # str, op, punct, word, end
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise UsageError(f"--where: cannot read {text[pos:].strip()[:20]!r} (at character {pos + 1})")
        kind = m.lastgroup or "word"
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


# -- the tree: tuples, evaluated by `_eval` ------------------------------------------------------
# ("or", a, b) ("and", a, b) ("not", a) ("cmp", column, op, value) ("in", column, values, negated)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def _peek(self) -> _Tok:
        return self.toks[self.i]

    def _take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _is_kw(self, tok: _Tok, kw: str) -> bool:
        return tok.kind == "word" and tok.text.lower() == kw

    def _fail(self, what: str, tok: _Tok) -> UsageError:
        got = "the end" if tok.kind == "end" else repr(tok.text)
        return UsageError(f"--where {self.text!r}: expected {what}, got {got} (at character {tok.pos + 1})")

    def parse(self) -> tuple[Any, ...]:
        tree = self._or()
        if self._peek().kind != "end":
            raise self._fail("'and', 'or' or the end", self._peek())
        return tree

    def _or(self) -> tuple[Any, ...]:
        left = self._and()
        while self._is_kw(self._peek(), "or"):
            self._take()
            left = ("or", left, self._and())
        return left

    def _and(self) -> tuple[Any, ...]:
        left = self._factor()
        while self._is_kw(self._peek(), "and"):
            self._take()
            left = ("and", left, self._factor())
        return left

    def _factor(self) -> tuple[Any, ...]:
        tok = self._peek()
        if self._is_kw(tok, "not"):
            self._take()
            return ("not", self._factor())
        if tok.kind == "punct" and tok.text == "(":
            self._take()
            inner = self._or()
            close = self._take()
            if close.text != ")":
                raise self._fail("')'", close)
            return inner
        return self._comparison()

    def _comparison(self) -> tuple[Any, ...]:
        col = self._take()
        if col.kind != "word" or col.text.lower() in _KEYWORDS or _NUMBER.fullmatch(col.text):
            raise self._fail("a column name", col)
        tok = self._take()
        if tok.kind == "op":
            return ("cmp", col.text, "==" if tok.text == "=" else tok.text, self._value())
        negated = self._is_kw(tok, "not")
        if negated:
            tok = self._take()
        if self._is_kw(tok, "in"):
            return ("in", col.text, self._list(), negated)
        raise self._fail("a comparison (==, !=, <, <=, >, >=, in, not in)", tok)

    def _value(self) -> Any:
        tok = self._take()
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            raise self._fail("a value", tok)
        low = tok.text.lower()
        if low in _CONSTANTS:
            return _CONSTANTS[low]
        if _NUMBER.fullmatch(tok.text):
            num = float(tok.text)
            return int(num) if num.is_integer() and re.fullmatch(r"[-+]?\d+", tok.text) else num
        return tok.text

    def _list(self) -> tuple[Any, ...]:
        open_ = self._take()
        if open_.text not in ("[", "("):
            raise self._fail("'[' after 'in'", open_)
        close = "]" if open_.text == "[" else ")"
        values = [self._value()]
        while self._peek().text == ",":
            self._take()
            values.append(self._value())
        end = self._take()
        if end.text != close:
            raise self._fail(f"',' or '{close}'", end)
        return tuple(values)


def parse_where(text: str) -> tuple[Any, ...]:
    """The expression's tree; `UsageError` naming the spot that does not read."""
    if len(text) > MAX_WHERE:
        raise UsageError(f"--where: an expression is at most {MAX_WHERE} characters")
    if not text.strip():
        raise UsageError("--where: an empty expression")
    return _Parser(text).parse()


# -- evaluation --------------------------------------------------------------------------------
def _missing(v: Any) -> bool:
    if v is None or v is _MISSING:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    try:
        return bool(v != v)  # NaT, pd.NA
    except (TypeError, ValueError):
        return False


def _as_time(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _align(cell: Any, value: Any) -> tuple[Any, Any] | None:
    """The two sides as comparable values of one kind, or None when they are of different kinds."""
    if isinstance(value, bool) or isinstance(cell, bool):
        return (cell, value) if isinstance(value, bool) and isinstance(cell, bool) else None
    if isinstance(value, (int, float)):
        if isinstance(cell, (int, float)):
            return cell, value
        if hasattr(cell, "item") and not isinstance(cell, str):  # numpy scalars
            return _align(cell.item(), value)
        if isinstance(cell, str) and _NUMBER.fullmatch(cell.strip()):
            return float(cell), value
        return None
    if isinstance(value, str):
        if isinstance(cell, str):
            return cell, value
        if hasattr(cell, "isoformat") and not isinstance(cell, str):  # a datetime or Timestamp
            when = _as_time(value)
            return (cell, when) if when is not None else None
        if isinstance(cell, (int, float)):
            return None
    return None


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _equal(cell: Any, value: Any) -> bool:
    if value is None:
        return _missing(cell)
    if _missing(cell):
        return False
    pair = _align(cell, value)
    return pair is not None and pair[0] == pair[1]


def _compare(cell: Any, op: str, value: Any) -> bool:
    if op == "==":
        return _equal(cell, value)
    if op == "!=":
        return not _equal(cell, value)
    if value is None or _missing(cell):
        return False
    pair = _align(cell, value)
    if pair is None:
        return False
    try:
        return _ORDER[op](*pair)
    except TypeError:
        return False


def _eval(node: tuple[Any, ...], row: Mapping[str, Any]) -> bool:
    kind = node[0]
    if kind == "or":
        return _eval(node[1], row) or _eval(node[2], row)
    if kind == "and":
        return _eval(node[1], row) and _eval(node[2], row)
    if kind == "not":
        return not _eval(node[1], row)
    if kind == "cmp":
        return _compare(row.get(node[1], _MISSING), node[2], node[3])
    cell = row.get(node[1], _MISSING)
    found = any(_equal(cell, v) for v in node[2])
    return not found if node[3] else found


def _columns_of(node: tuple[Any, ...], out: list[str]) -> list[str]:
    if node[0] in ("or", "and"):
        _columns_of(node[1], out)
        _columns_of(node[2], out)
    elif node[0] == "not":
        _columns_of(node[1], out)
    elif node[1] not in out:
        out.append(node[1])
    return out


def _rename(node: tuple[Any, ...], names: Mapping[str, str]) -> tuple[Any, ...]:
    if node[0] in ("or", "and"):
        return (node[0], _rename(node[1], names), _rename(node[2], names))
    if node[0] == "not":
        return ("not", _rename(node[1], names))
    return (node[0], names[node[1]], *node[2:])


class Filter:
    """Every expression of a list, all of which must hold: `Filter(["lr < 0.1"]).match(row)`."""

    def __init__(self, exprs: str | Iterable[str] | None):
        items = [exprs] if isinstance(exprs, str) else list(exprs or [])
        self.texts = items
        self.trees = [parse_where(t) for t in items]

    def __bool__(self) -> bool:
        return bool(self.trees)

    def columns(self) -> list[str]:
        out: list[str] = []
        for tree in self.trees:
            _columns_of(tree, out)
        return out

    def bind(self, columns: Sequence[str]) -> Callable[[Mapping[str, Any]], bool]:
        """A predicate over rows with these columns (short names resolved; unknown ones refused)."""
        names = {c: resolve_column(c, columns, "--where") for c in self.columns()}
        trees = [_rename(t, names) for t in self.trees]
        return lambda row: all(_eval(t, row) for t in trees)

    def rows(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[int]:
        """Indexes of the rows that match."""
        if not self.trees or not rows:
            return list(range(len(rows)))
        pred = self.bind(columns)
        return [i for i, r in enumerate(rows) if pred(r)]


def compile_where(exprs: str | Iterable[str] | None) -> Filter:
    return Filter(exprs)
