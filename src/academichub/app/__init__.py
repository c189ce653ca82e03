"""The application layer: the use cases, over the layers below; the front ends (web/, cli, workers)
call it and nothing below imports it."""

from .hub import Hub

__all__ = ["Hub"]
