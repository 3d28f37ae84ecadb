"""Job ids: sortable by submission time, safe as file names."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone

__all__ = ["new_id", "is_valid_id", "ID_PATTERN"]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$"
_ID_RE = re.compile(ID_PATTERN)
_RESERVED_SUFFIXES = (".tmp", ".part", ".swp", "~", ".json")


def new_id(now: datetime | None = None) -> str:
    """A fresh id like ``20261125T034000-123456-ab12``: UTC time, then 16 random bits."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}-{now.microsecond:06d}-{os.urandom(2).hex()}"


def is_valid_id(text: str) -> bool:
    """True if ``text`` can name a job: no separators, no ``@``, no leading dot, ≤120 chars."""
    # fullmatch: with `match`, the pattern's `$` would accept a trailing newline
    return bool(_ID_RE.fullmatch(text)) and not text.endswith(_RESERVED_SUFFIXES)
