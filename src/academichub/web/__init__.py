"""The web UI and JSON API: `create_app(settings, engine=...)` returns the FastAPI application."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str):
    # Lazy, so importing academichub.web.i18n does not pull in FastAPI.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
