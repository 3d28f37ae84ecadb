"""`spool serve`: a thin, stateless HTTP layer over a spool folder (the folder stays the truth).

`service` imports `spool`; `spool` never imports `service` (the `serve` verb plugs in through
the `housespool.verbs` entry point). Importing this package is cheap: FastAPI is imported only
by `service.app`, when a server is actually built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """`service.app.create_app`, imported on first use."""
    from service.app import create_app as _create_app

    return _create_app(*args, **kwargs)
