"""Fuzzing every parser with hostile bytes: mutations of the real recorded files (truncations, byte
flips, inserted junk, deleted spans, wrong encodings, deep nesting, huge values) and arbitrary bytes.

The contract each parser must keep: records (well-typed PaperData whose raw JSON the store can
write) or a ParseError / FeedError naming the location; never any other exception, never a hang.
tests/test_fuzz_parsers.py runs these properties with a small, derandomized budget in CI; this
module is also the long run, outside CI:

    python -m benchmarks.fuzz_parsers --examples 20000 [--target crossref] [--seed N]

It prints, per target, the examples tried, the seconds taken and every failure with the smallest
failing input Hypothesis found (bytes, ready to paste into a regression test)."""

from __future__ import annotations

import argparse
import functools
import io
import json
import logging
import signal
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable
from xml.sax.saxutils import quoteattr

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from academichub.bench import default_shared_data
from academichub.errors import FeedError, ParseError
from academichub.ingest.formats import detect_format
from academichub.model import AuthorData, FeedInfo, ParsedBatch, PaperData, RelationData, VersionData
from academichub.sources import (
    arxiv_api,
    arxiv_oai,
    arxiv_rss,
    arxiv_snapshot,
    biorxiv,
    crossref,
    jats,
    openalex,
    opml,
    publisher_feed,
    pubmed,
    semanticscholar,
)

LOCATION = "fuzz/input"
SEED_BYTES = 24_000  # seeds are cut to about this size (at a record boundary) so that one parse stays cheap


# ----------------------------------------------------------------------------- seeds: real recorded files


def _cut_xml(data: bytes, closing: bytes, tail: bytes, limit: int = SEED_BYTES) -> bytes:
    """The document up to the last `closing` tag before `limit`, closed with `tail`: still the real file."""
    if len(data) <= limit:
        return data
    end = data.rfind(closing, 0, limit)
    if end < 0:
        end = data.find(closing)
    return data[: end + len(closing)] + tail


def _cut_lines(data: bytes, limit: int = SEED_BYTES) -> bytes:
    if len(data) <= limit:
        return data
    return data[: data.rfind(b"\n", 0, limit) + 1] or data.split(b"\n", 1)[0] + b"\n"


def _cut_bibtex(data: bytes, limit: int = SEED_BYTES) -> bytes:
    if len(data) <= limit:
        return data
    end = data.rfind(b"\n@", 0, limit)
    return data[: end + 1] if end > 0 else data[:limit]


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(root.glob(pattern))


def _crossref_items(root: Path) -> list[dict]:
    items: list[dict] = []
    for path in _files(root, "crossref/cr_works*.json"):
        try:
            message = json.loads(path.read_bytes()).get("message")
        except ValueError:  # a recorded refusal ("Resource not found.") is a seed, not a list of works
            continue
        if isinstance(message, dict):
            items.extend(message.get("items") or ([message] if "DOI" in message else []))
    return items


def _biorxiv_pages(root: Path, pubs: bool = False) -> list[bytes]:
    """No bioRxiv response is recorded: real Crossref works (titles, names, abstracts, dates) put in
    the /details (or /pubs) page shape that api.biorxiv.org documents."""
    items = []
    for work in _crossref_items(root)[:40]:
        parts = [p for p in ((work.get("issued") or {}).get("date-parts") or [[2020]])[0] if p] or [2020]
        day = "-".join(f"{int(p):02d}" for p in (parts + [1, 1])[:3])
        first = (work.get("author") or [{}])[0]
        authors = "; ".join(f"{a.get('family', '')}, {a.get('given', '')}" for a in work.get("author") or [])
        if pubs:
            items.append({"preprint_doi": f"10.1101/{work['DOI'].split('/', 1)[1]}", "published_doi": work["DOI"],
                          "published_journal": (work.get("container-title") or [""])[0], "published_date": day,
                          "preprint_category": "neuroscience", "preprint_platform": "bioRxiv"})
            continue
        items.append({
            "doi": work["DOI"], "title": (work.get("title") or [""])[0], "authors": authors,
            "author_corresponding": f"{first.get('given', '')} {first.get('family', '')}".strip(),
            "author_corresponding_institution": "Institute", "date": day, "version": str(len(items) % 3 + 1),
            "type": "new results", "license": "cc_by", "category": (work.get("subject") or ["biology"])[0].lower(),
            "jatsxml": work.get("URL", ""), "abstract": work.get("abstract", ""),
            "published": "NA" if len(items) % 2 else work["DOI"], "server": "bioRxiv",
        })
    pages = []
    for start in range(0, max(len(items), 1), 5):
        chunk = items[start : start + 5]
        message = {"status": "ok", "interval": "2020-01-01:2020-12-31", "cursor": start, "count": len(chunk),
                   "total": len(items)}
        pages.append(json.dumps({"messages": [message], "collection": chunk}).encode())
    return pages


def _opml_seed() -> bytes:
    """The shipped venue catalog's real feed URLs as a feed reader's OPML export."""
    from academichub import venues

    catalog = tomllib.loads((Path(venues.__file__).parent / "data" / "venues.toml").read_text(encoding="utf-8"))
    outlines = []
    for key, venue in catalog.items():
        for url in venue.get("rss", []):
            field = (venue.get("fields") or ["other"])[0]
            outlines.append((field, f'<outline text={quoteattr(venue["name"])} type="rss" xmlUrl={quoteattr(url)}/>'))
    folders = {}
    for field, line in outlines:
        folders.setdefault(field, []).append(line)
    body = "\n".join(
        f'<outline text={quoteattr(field)}>\n' + "\n".join(lines) + "\n</outline>" for field, lines in folders.items()
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head><title>Journals</title></head>\n'
            f"<body>\n{body}\n</body></opml>\n").encode()


def _ris_seed(root: Path) -> bytes:
    """A real library's first entries written as RIS (no RIS file is recorded)."""
    from academichub.ingest.library_import import read_library

    lib = read_library(root / "libraries" / "7brunner--SysRiskWelfare.bib")
    lines = []
    for paper in lib.papers[:25]:
        lines.append("TY  - JOUR")
        lines.append(f"ID  - {paper.raw.get('library_key', '').split(':', 1)[-1]}")
        lines += [f"AU  - {a.name}" for a in paper.authors]
        lines.append(f"TI  - {paper.title}")
        if paper.abstract:
            lines.append(f"AB  - {paper.abstract}")
        if paper.doi:
            lines.append(f"DO  - {paper.doi}")
        if paper.venue:
            lines.append(f"JO  - {paper.venue}")
        if paper.published:
            lines.append(f"PY  - {paper.published.year}/{paper.published.month:02d}//")
        lines += [f"KW  - {k}" for k in paper.keywords]
        if paper.url_abs:
            lines.append(f"UR  - {paper.url_abs}")
        lines += ["ER  - ", ""]
    return "\n".join(lines).encode()


@functools.lru_cache(maxsize=None)
def seeds(name: str, root: str | None = None) -> tuple[bytes, ...]:
    """The real recorded inputs a target's mutations start from."""
    base = Path(root) if root else default_shared_data()
    read = lambda pattern: [p.read_bytes() for p in _files(base, pattern)]  # noqa: E731
    if name == "arxiv-rss":
        return tuple(_cut_xml(d, b"</item>", b"\n</channel>\n</rss>\n") for d in read("arxiv/rss/*.xml"))
    if name == "arxiv-api":
        return tuple(_cut_xml(d, b"</entry>", b"\n</feed>\n") for d in read("arxiv/api/*.xml"))
    if name == "arxiv-oai":
        return tuple(_cut_xml(d, b"</record>", b"</ListRecords>\n") for d in read("arxiv/oai-quant-ph/*.xml"))
    if name == "arxiv-snapshot":
        return tuple(_cut_lines(d) for d in read("arxiv/snapshot/*.jsonl"))
    if name == "crossref":
        return tuple(read("crossref/cr_*.json"))
    if name == "openalex":
        return tuple(read("openalex/*.json"))
    if name == "pubmed":
        return tuple(read("pubmed/pubmed*.xml"))
    if name == "pmc":
        return tuple(read("pubmed/efetch_pmc.xml"))
    if name == "biorxiv":
        return tuple(_biorxiv_pages(base))
    if name == "biorxiv-pubs":
        return tuple(_biorxiv_pages(base, pubs=True))
    if name == "semanticscholar":
        return tuple(read("semanticscholar/*.json"))
    if name == "feed":  # arXiv's RSS and Atom are real RSS 2.0 / Atom feeds
        return seeds("arxiv-rss", root)[:2] + seeds("arxiv-api", root)[:3]
    if name == "opml":
        return (_opml_seed(),)
    if name == "jats":
        abstracts = [i["abstract"].encode() for i in _crossref_items(base) if i.get("abstract")]
        return tuple(abstracts[:40]) + tuple(read("crossref/cr_abstract-0.xml"))
    if name == "library":
        bib = [_cut_bibtex(d) for d in read("libraries/*.bib")]
        csl = json.dumps(_crossref_items(base)[:20]).encode()
        return (*bib, _ris_seed(base), csl, seeds("arxiv-snapshot", root)[0])
    if name in ("detect", "detect-full"):
        names = {"arxiv-rss", "arxiv-api", "arxiv-oai", "arxiv-snapshot", "crossref", "openalex", "pubmed", "pmc",
                 "biorxiv", "semanticscholar", "feed", "opml"}
        return tuple(s[:4096] if name == "detect" else s for name in sorted(names) for s in seeds(name, root))
    raise KeyError(name)


# ----------------------------------------------------------------------------- targets


def _batch(result: ParsedBatch) -> list[PaperData]:
    assert isinstance(result, ParsedBatch), type(result)
    if result.feed is not None:
        assert isinstance(result.feed, FeedInfo)
        _check_str(result.feed.title, "feed.title")
    return result.papers


def _library(data: bytes) -> list[PaperData]:
    from academichub.ingest.library_import import LibraryImport, parse_library

    result = parse_library(data, LOCATION)
    assert isinstance(result, LibraryImport), type(result)
    assert all(isinstance(s, str) for s in result.skipped)
    return result.papers


def _jats(data: bytes) -> list[PaperData]:
    text = jats.markup_to_text(data.decode("utf-8", errors="replace"))
    assert isinstance(text, str) and "\n" not in text
    return []


def _biorxiv_pubs(data: bytes) -> list[PaperData]:
    links, total = biorxiv.parse_pubs(data, LOCATION)
    assert isinstance(links, list) and (total is None or isinstance(total, int))
    return []


def _opml(data: bytes) -> list[PaperData]:
    for feed in opml.parse_opml(data, LOCATION):
        assert isinstance(feed.xml_url, str) and feed.xml_url and isinstance(feed.title, str)
    return []


def _detected(data: bytes) -> list[PaperData]:
    """What `academichub ingest` does before the store: detect from the head, then that format's parser."""
    return TARGETS[detect_format(data[:4096], LOCATION).value].parse(data)  # each Format names its target


@dataclass(frozen=True)
class Target:
    parse: Callable[[bytes], list[PaperData]]  # bytes -> the records (checked) or a ParseError/FeedError
    seeds: str  # whose recorded files to mutate


TARGETS: dict[str, Target] = {
    "detect": Target(lambda d: (detect_format(d[:4096], LOCATION), [])[1], "detect"),
    "detect+parse": Target(_detected, "detect-full"),
    "arxiv-rss": Target(lambda d: _batch(arxiv_rss.parse_rss(d, LOCATION)), "arxiv-rss"),
    "arxiv-api": Target(lambda d: _batch(arxiv_api.parse_api(d, LOCATION)), "arxiv-api"),
    "arxiv-oai": Target(lambda d: _batch(arxiv_oai.parse_oai_page(d, LOCATION)), "arxiv-oai"),
    "arxiv-snapshot": Target(lambda d: list(arxiv_snapshot.iter_snapshot(io.BytesIO(d), LOCATION)), "arxiv-snapshot"),
    "crossref": Target(lambda d: _batch(crossref.parse_works(d, LOCATION)), "crossref"),
    "openalex": Target(lambda d: _batch(openalex.parse_works(d, LOCATION)), "openalex"),
    "pubmed": Target(lambda d: _batch(pubmed.parse_efetch(d, LOCATION)), "pubmed"),
    "pmc": Target(lambda d: _batch(pubmed.parse_pmc(d, LOCATION)), "pmc"),
    "biorxiv": Target(lambda d: _batch(biorxiv.parse_details(d, LOCATION, "biorxiv")), "biorxiv"),
    "biorxiv-pubs": Target(_biorxiv_pubs, "biorxiv-pubs"),
    "semanticscholar": Target(lambda d: _batch(semanticscholar.parse_response(d, LOCATION)), "semanticscholar"),
    "feed": Target(lambda d: _batch(publisher_feed.parse_feed(d, LOCATION)), "feed"),
    "opml": Target(_opml, "opml"),
    "jats": Target(_jats, "jats"),
    "library": Target(_library, "library"),
}


# ----------------------------------------------------------------------------- the contract


def _check_str(value: Any, what: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    assert isinstance(value, str), f"{what} is {type(value).__name__}, not str"


_OPTIONAL_STR = ("arxiv_id", "doi", "pmid", "pmcid", "openalex_id", "s2_id", "venue", "journal_ref", "license",
                 "comments", "url_abs", "url_pdf", "announce_type", "work_type", "publisher", "server", "tldr")


def check_paper(paper: PaperData) -> None:
    """A record the store can write: every field of its declared type, raw serialisable as the writer does it."""
    assert isinstance(paper, PaperData), type(paper)
    for name in ("source", "source_id", "title", "abstract"):
        _check_str(getattr(paper, name), name)
    for name in _OPTIONAL_STR:
        _check_str(getattr(paper, name), name, optional=True)
    for author in paper.authors:
        assert isinstance(author, AuthorData)
        _check_str(author.name, "author.name")
        _check_str(author.affiliation, "author.affiliation", optional=True)
        _check_str(author.orcid, "author.orcid", optional=True)
    for name in ("categories", "issns", "keywords"):
        assert all(isinstance(v, str) for v in getattr(paper, name)), name
    assert all(isinstance(s, tuple) and len(s) == 2 and all(isinstance(x, str) for x in s) for s in paper.subjects)
    assert all(isinstance(r, RelationData) and isinstance(r.value, str) for r in paper.relations)
    for version in paper.versions:
        assert isinstance(version, VersionData) and type(version.version) is int and 0 <= version.version < 2**31
        assert version.submitted is None or (isinstance(version.submitted, datetime) and version.submitted.tzinfo is None)
    for name in ("arxiv_version", "citation_count"):
        value = getattr(paper, name)
        assert value is None or (type(value) is int and -(2**31) <= value < 2**31), f"{name} is {value!r}"  # the store's INTEGER
    for name in ("submitted", "updated"):
        value = getattr(paper, name)
        assert value is None or (isinstance(value, datetime) and value.tzinfo is None), f"{name} is {value!r}"
    for name in ("announced", "published"):
        value = getattr(paper, name)
        assert value is None or (isinstance(value, date) and not isinstance(value, datetime)), name
    assert isinstance(paper.raw, dict)
    orjson.dumps(paper.raw)  # what the writer does; a huge integer or a non-str key would fail there


def check(name: str, data: bytes) -> None:
    """Run one target on one input: records that pass check_paper, or a ParseError/FeedError naming
    the location. Anything else propagates (the property fails)."""
    try:
        papers = TARGETS[name].parse(data)
    except ParseError as exc:
        assert str(exc).startswith(LOCATION), str(exc)  # the location, maybe with the item: "fuzz/input (item 3)"
        return
    except FeedError:  # the upstream's own error document (arXiv's bad-archive feed, an OAI error)
        return
    assert isinstance(papers, list)
    for paper in papers:
        check_paper(paper)


# ----------------------------------------------------------------------------- mutations

_JUNK = [
    b"\x00", b"\xff", b"\xfe\xff", b"\xef\xbb\xbf", b"\xc3", b"\xed\xa0\x80", b"<", b">", b"&", b"&amp;", b"&#0;",
    b"&#x110000;", b"&nbsp;", b"&undefined;", b"]]>", b"<![CDATA[", b"<!--", b"-->", b"<?xml version='1.0'?>",
    b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", b"&e;", b"</", b"/>", b'"', b"'", b"\\", b"\\u",
    b"\\ud800", b"{", b"}", b"[", b"]", b":", b",", b"null", b"true", b"-0", b"1e999", b"NaN", b"Infinity",
    b"18446744073709551616", b"-9223372036854775809", b"\r", b"\n", b"\r\n", b"\t", b"\x0b", b"\x85", b"\xe2\x80\xa8",
    b"@", b"@article{", b"%", b"#", b"$", b"$$", b"TY  - ", b"ER  - ", b"\\'", b"{\\", b"\\\\", b"0000-00-00",
    b"2024-02-30", b"Mon, 32 Foo 2024 99:99:99 GMT", b"9999-12-31T23:59:59Z", b"0001-01-01", b"v0", b"v99999999999",
    b"arXiv:", b"10.", b"doi:", b"https://openalex.org/", b'"message-type"', b'"paperId"', b'"messages"',
]


def _deep(draw, large: bool) -> bytes:
    depth = draw(st.sampled_from([50, 300, 1100, 5000, 100_000] if large else [50, 300, 1100, 5000]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b"<a>", b"</a>"), (b"<p><i>", b"</i></p>"),
                                           (b"{", b"}")]))
    return opener * depth + (closer * depth if draw(st.booleans()) else b"")


def _huge(draw, large: bool) -> bytes:
    size = draw(st.sampled_from([10_000, 200_000, 2_000_000] if large else [10_000, 100_000]))
    unit = draw(st.sampled_from([b"a", b"9", b" ", b"&amp;", b"\xc3\xa9", b"\\\\", b"{", b"<", b"$"]))
    return unit * (size // len(unit))


@st.composite
def _mutation(draw, data: bytes, large: bool = True) -> bytes:
    size = len(data)
    at = draw(st.integers(0, size))
    kind = draw(st.sampled_from(["truncate", "flip", "junk", "delete", "duplicate", "deep", "huge", "encoding"]))
    if kind == "truncate":
        return data[:at]
    if kind == "flip":
        if not size:
            return data
        at = min(at, size - 1)
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if kind == "junk":
        junk = draw(st.one_of(st.sampled_from(_JUNK), st.binary(min_size=1, max_size=16)))
        return data[:at] + junk + data[at:]
    if kind == "delete":
        return data[:at] + data[at + draw(st.integers(1, 512)) :]
    if kind == "duplicate":
        span = data[at : at + draw(st.integers(1, 2048))]
        return data[:at] + span * draw(st.integers(2, 4)) + data[at:]
    if kind == "deep":
        return data[:at] + _deep(draw, large) + data[at:]
    if kind == "huge":
        return data[:at] + _huge(draw, large) + data[at:]
    return _reencoded(draw, data)


def _reencoded(draw, data: bytes) -> bytes:
    """The right text in the wrong bytes: UTF-16/32 with or without BOM, Latin-1, doubly-encoded UTF-8."""
    text = data.decode("utf-8", errors="replace")
    how = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "double", "bom"]))
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "double":
        return text.encode("utf-8").decode("latin-1").encode("utf-8")
    return text.encode(how, errors="replace")


# Values that a well-formed document may still carry where a parser expects something else.
_ODD_TEXT = st.one_of(
    st.sampled_from([
        "", " ", "0", "-1", "1e400", "NaN", "v", "v0", "vx", "v-1", "0000-00-00", "2024-13-45", "2024-02-30",
        "99999-01-01", "Mon, 32 Foo 2024 99:99:99 GMT", "GMT", "9" * 40, "10.", "doi:", "arXiv:", "abs/",
        "https://openalex.org/", "https://openalex.org/A1", "https://", "javascript:alert(1)", "[b]markup[/b]",
        "&amp;", "<i>x</i>", "\\", "{", "}", "$", "NA", "null", "None", "ok", "\u00e9\u0301", "\u202e", "\ufeff",
    ]),
    st.text(max_size=24),
)
_JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=False, allow_infinity=False), _ODD_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_ODD_TEXT, inner, max_size=3)),
    max_leaves=6,
)


def _json_nodes(value: Any, out: list) -> list:
    """(container, key) of every value in a document, in a fixed order."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append((value, key))
        _json_nodes(child, out)
    return out


def _structural_json(draw, data: bytes) -> bytes | None:
    """A well-formed document with one value swapped for an odd one (a number for a list, a
    dict for a string …): what byte-level mutations rarely reach past the JSON parser."""
    lines = data.split(b"\n") if data.lstrip()[:1] == b"{" and data.count(b"\n") > 1 else [data]
    index = draw(st.integers(0, len(lines) - 1))
    try:
        document = json.loads(lines[index])
    except ValueError:
        return None
    nodes = _json_nodes(document, [])
    if not nodes:
        return None
    container, key = nodes[draw(st.integers(0, len(nodes) - 1))]
    if isinstance(container, dict) and draw(st.booleans()) and draw(st.booleans()):
        del container[key]
    else:
        container[key] = draw(_JSON_VALUE)
    lines[index] = json.dumps(document).encode()
    return b"\n".join(lines)


def _structural_xml(draw, data: bytes) -> bytes | None:
    """A well-formed document with one element's text, attributes or place changed."""
    from lxml import etree

    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return None
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    element = elements[draw(st.integers(0, len(elements) - 1))]
    how = draw(st.sampled_from(["text", "attribute", "remove", "duplicate", "empty", "move"]))
    try:
        if how == "text":
            element.text = draw(_ODD_TEXT)
        elif how == "attribute":
            name = next(iter(element.attrib), None) or draw(st.sampled_from(["term", "version", "href", "code"]))
            element.set(name, draw(_ODD_TEXT))
        elif how == "remove" and element.getparent() is not None:
            element.getparent().remove(element)
        elif how == "duplicate" and element.getparent() is not None:
            element.addnext(etree.fromstring(etree.tostring(element, with_tail=False)))
        elif how == "empty":
            element.clear()
        elif how == "move" and element.getparent() is not None:
            target = elements[draw(st.integers(0, len(elements) - 1))]
            if element not in target.iterancestors() and element is not target:
                target.append(element)
    except (ValueError, TypeError, etree.XMLSyntaxError):  # lxml refuses text that XML cannot hold
        return None
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8")


@st.composite
def hostile_input(draw, name: str, root: str | None = None, large: bool = True) -> bytes:
    """Mostly 1-3 mutations of a real recorded file, byte-level or structural; sometimes
    arbitrary bytes or text. `large=False` keeps inserted values to 100 kB (CI's budget)."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.binary(max_size=2048))
    if choice == 1:
        return draw(st.text(max_size=512)).encode("utf-8", errors="surrogatepass")
    data = draw(st.sampled_from(seeds(TARGETS[name].seeds, root)))
    if choice < 6:
        head = data.lstrip()[:1]
        for _ in range(draw(st.integers(1, 3))):
            changed = _structural_xml(draw, data) if head == b"<" else _structural_json(draw, data) if head in (b"{", b"[") else None
            data = changed if changed is not None else draw(_mutation(data, large))
        if draw(st.booleans()):
            return data
    for _ in range(draw(st.integers(1, 3))):
        data = draw(_mutation(data, large))
    return data


# ----------------------------------------------------------------------------- the long run


class Hang(Exception):
    """One input took longer than the hang limit."""


def _alarm(_signum, _frame):
    raise Hang()


def run(name: str, examples: int, seed: int | None, hang_s: int) -> tuple[int, float, list[str]]:
    """Fuzz one target; (examples tried, seconds, failures with their minimal input)."""
    tried = 0
    failures: list[str] = []
    signal.signal(signal.SIGALRM, _alarm)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=True,
              phases=[Phase.generate, Phase.shrink])
    @given(hostile_input(name))
    def prop(data: bytes) -> None:
        nonlocal tried
        tried += 1
        started = time.perf_counter()
        signal.alarm(4 * hang_s)  # the last resort against an endless loop
        try:
            check(name, data)
        finally:
            signal.alarm(0)
        seconds = time.perf_counter() - started
        if seconds > hang_s:  # slow but finite (the alarm can land where Python ignores it): still a hang
            raise Hang(f"{seconds:.0f} s on {len(data):,} bytes")

    if seed is not None:
        from hypothesis import seed as hypothesis_seed

        prop = hypothesis_seed(seed)(prop)
    started = time.perf_counter()
    try:
        prop()
    except BaseException as exc:  # noqa: BLE001 - every failure is reported, not raised
        if isinstance(exc, KeyboardInterrupt):
            raise
        failures.append(_describe(exc))
    return tried, time.perf_counter() - started, failures


def _describe(exc: BaseException) -> str:
    group = getattr(exc, "exceptions", None)
    if group:
        return "\n".join(_describe(e) for e in group)
    notes = "\n".join(note if len(note) < 600 else note[:300] + f" ... ({len(note)} characters)" + note[-200:]
                      for note in getattr(exc, "__notes__", []))
    return f"{type(exc).__name__}: {str(exc)[:300]}\n{notes}"


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("academichub").setLevel(logging.ERROR)  # a kept-but-malformed feed warns on every example
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per target (default 2000)")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="only these targets")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    parser.add_argument("--hang", type=int, default=30, help="seconds after which one input counts as a hang")
    args = parser.parse_args(argv)
    total_failures = 0
    for name in args.target or list(TARGETS):
        tried, seconds, failures = run(name, args.examples, args.seed, args.hang)
        status = "ok" if not failures else f"{len(failures)} FAILED"
        print(f"{name:16} {tried:7d} examples {seconds:8.1f} s  {status}", flush=True)
        for failure in failures:
            print("    " + failure.replace("\n", "\n    "), flush=True)
        total_failures += len(failures)
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
