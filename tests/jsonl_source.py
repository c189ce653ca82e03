"""A source that is not in the package: an upstream serving JSON lines, one work per line
({"hub_work": …, "doi": …, "title": …, "authors": […]}). This module is all it takes — its
parser, its paging and its SourceKind — and it reaches the registry through the
`academichub.sources` entry point group (test_source_plugin.py installs one), with no edit
anywhere in academichub."""

from __future__ import annotations

from typing import Iterator

import orjson

from academichub.errors import ParseError
from academichub.model import AuthorData, PaperData, ParsedBatch
from academichub.sources.kinds import FileFormat, Fetch, MergeFamily, Page, Param, SourceKind, json_key

SOURCE = "jsonl"
# trusted below every index: it fills gaps and overrides no one
JSONL_FAMILY = MergeFamily("jsonl", default_rank=1)


def parse_lines(content: bytes, location: str) -> ParsedBatch:
    papers = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            work = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"not a JSON line: {exc}", location=location, line=number) from exc
        if not isinstance(work, dict) or not isinstance(work.get("doi"), str):
            raise ParseError("a work needs a doi", location=location, line=number)
        papers.append(PaperData(
            source=SOURCE, source_id=work["doi"], title=str(work.get("title") or ""), doi=work["doi"],
            authors=[AuthorData(name=str(name)) for name in work.get("authors") or []],
        ))
    return ParsedBatch(papers=papers)


def _pages(fetch: Fetch) -> Iterator[Page]:
    fetched = fetch.http.get(fetch.params["url"])
    if fetched.not_modified:
        return
    yield parse_lines(fetched.content, fetched.url)


SOURCE_KINDS = (
    SourceKind(
        name=SOURCE,
        label="JSON lines",
        family=JSONL_FAMILY,
        file=FileFormat(name=SOURCE, syntax="json", sniff=json_key("hub_work"), description="hub JSON lines",
                        parse=parse_lines),
        pages=_pages,
        params=(Param("url", "where the JSON lines are served", required=True),),
        min_interval=0.5,
        conditional=True,
    ),
)
