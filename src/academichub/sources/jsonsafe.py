"""JSON that we parse ourselves goes through one loader, as XML goes through xmlsafe. It is orjson:
it caps nesting at 1024 levels (the standard library recurses until RecursionError on "[[[[…"),
reads an integer beyond 64 bits as a float, and refuses invalid UTF-8 and lone surrogates. On top,
a document nested deeper than MAX_DEPTH is refused: the store writes each raw record back with
orjson, whose writer stops at 255 levels, so a deeper record would be parsed and then fail half-way
through a batch. Errors name the location and line."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import ParseError

MAX_DEPTH = 100  # real upstream documents nest fewer than 10 levels


def load_json(payload: bytes | str, location: str, *, malformed: str = "malformed JSON", line: int = 1) -> Any:
    """The document, or a ParseError "<location>:<line>: <malformed>: <why>" ("empty response" when
    blank). `line` is the payload's first line in its file, for one line of JSON lines."""
    if not payload.strip():
        raise ParseError("empty response", location=location, line=line)
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"{malformed}: {exc.msg}", location=location, line=line + exc.lineno - 1) from exc
    # Only a payload with that many brackets can be that deep; counting them is cheap, a walk is not.
    opening = (b"[", b"{") if isinstance(payload, bytes) else ("[", "{")
    if payload.count(opening[0]) + payload.count(opening[1]) > MAX_DEPTH and _too_deep(document):
        raise ParseError(f"{malformed}: nested deeper than {MAX_DEPTH} levels", location=location, line=line)
    return document


def json_or_none(payload: bytes | str) -> Any:
    """An error body's JSON, or None when it is not JSON (the caller then keeps the HTTP error)."""
    try:
        return load_json(payload, "<response>")
    except ParseError:
        return None


def _too_deep(document: Any) -> bool:
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


# Typed reads of upstream JSON. A field of the wrong type (a number where a list belongs, a list
# where a string does) reads as absent, as Crossref's parser always did: the record loses that
# field, never the batch, and no TypeError escapes from deep inside a parser.


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """An integer (not a bool, not a float) that fits the store's INTEGER columns; a numeric string
    counts, as some APIs quote numbers."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) < 11:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -(2**31) <= value < 2**31 else None
