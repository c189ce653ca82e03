"""arXiv identifiers in all their spellings: new (2411.17700, 0704.0001), old (hep-th/9901001),
with or without version, bare or inside URLs, `arXiv:` prefixes and OAI identifiers."""

from __future__ import annotations

import re

from ..errors import ParseError

# ASCII digits only (\d would take any script's), and a version of at most four digits: arXiv's
# highest are in the tens, and a longer one would overflow the store's integer column.
_NEW = r"[0-9]{4}\.[0-9]{4,5}"
_OLD = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/[0-9]{7}"
_ID = re.compile(rf"(?P<id>{_NEW}|{_OLD})(?:v(?P<version>[0-9]{{1,4}}))?$")
_PREFIXES = (
    "oai:arxiv.org:",
    "arxiv:",
    "https://arxiv.org/abs/",
    "http://arxiv.org/abs/",
    "https://arxiv.org/pdf/",
    "http://arxiv.org/pdf/",
    "https://export.arxiv.org/abs/",
    "http://export.arxiv.org/abs/",
)


def parse_arxiv_id(text: str) -> tuple[str, int | None]:
    """Split any spelling into (versionless id, version or None); ParseError if it is not one."""
    value = text.strip()
    lowered = value.lower()
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            value = value[len(prefix) :]
            break
    if value.endswith(".pdf"):
        value = value[:-4]
    match = _ID.match(value)
    if not match:
        raise ParseError(f"not an arXiv identifier: {text!r}")
    version = match.group("version")
    return match.group("id"), int(version) if version else None


def version_number(label: str | None) -> int | None:
    """"v3" -> 3, as arXiv's OAI records and the snapshot label versions; anything else -> None."""
    if not isinstance(label, str) or label[:1] != "v":
        return None
    digits = label[1:]
    return int(digits) if 0 < len(digits) <= 4 and digits.isascii() and digits.isdigit() else None


def is_arxiv_id(text: str) -> bool:
    try:
        parse_arxiv_id(text)
    except ParseError:
        return False
    return True


def arxiv_doi(arxiv_id: str) -> str:
    """The DataCite DOI arXiv assigns to every paper (10.48550/arXiv.<id>)."""
    return f"10.48550/arXiv.{arxiv_id}"


def abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def pdf_url(arxiv_id: str, version: int | None = None) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}" + (f"v{version}" if version else "")
