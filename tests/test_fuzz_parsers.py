"""Every parser under hostile bytes (issue 16): Hypothesis properties over mutations of the real
recorded files (benchmarks/fuzz_parsers.py makes them) and arbitrary bytes, then one regression test
per crash the fuzzing found, each with its minimal input as bytes.

The contract (fuzz_parsers.check): records that the store can write (fields of their declared
types, naive UTC datetimes, integers that fit the INTEGER columns, raw that orjson writes), or a
ParseError / FeedError naming the location; never another exception. The properties are bounded
and derandomized, so CI runs the same examples every time; `python -m benchmarks.fuzz_parsers
--examples 20000` is the long run."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings

from benchmarks.fuzz_parsers import LOCATION, TARGETS, check, hostile_input

# Examples per target: about 40 s for the module on the 2-core machine under load. feedparser,
# the JATS converter and the BibTeX reader are the slow ones.
EXAMPLES = {name: 200 for name in TARGETS} | {"feed": 60, "jats": 100, "library": 80, "detect": 400, "detect+parse": 120}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_hostile_bytes_give_records_or_a_parse_error(name):
    @settings(max_examples=EXAMPLES[name], deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(hostile_input(name, large=False))
    def holds(data: bytes) -> None:
        check(name, data)

    holds()


# ----------------------------------------------------------------------------- what the fuzzing found
# Each input below crashed (or gave a record the store could not write) before its fix.

SNAPSHOT_LINE = b'{"id": "0704.0001", "submitter": "x", "title": "A title", %s}\n'


@pytest.mark.parametrize(
    ("name", "data"),
    [
        # the standard library's json recursed until RecursionError
        ("biorxiv", b"[" * 100_000),
        ("semanticscholar", b"[" * 100_000),
        ("openalex", b"[" * 100_000),
        ("library", b"[" * 100_000),
        ("library", b'{"title": "x"}\n' + b"[" * 100_000 + b"\n"),
        # ... and refused an integer of more than 4300 digits with a bare ValueError
        ("biorxiv", b"9" * 5000),
        ("semanticscholar", b"9" * 5000),
        ("openalex", b"9" * 5000),
        ("library", b"[" + b"9" * 5000 + b"]"),
        # parsed, but 300 levels deep: orjson, the store's writer, stops at 255
        ("arxiv-snapshot", SNAPSHOT_LINE % (b'"x": ' + b"[" * 300 + b"]" * 300)),
        # a field of the wrong type went on into str methods and the store
        ("arxiv-snapshot", SNAPSHOT_LINE % b'"versions": "v1", "license": 2, "doi": 3, "categories": ["x"], '
                                           b'"authors_parsed": [1, [2, "A"]], "abstract": {}'),
        ("arxiv-snapshot", SNAPSHOT_LINE % (b'"versions": [{"version": "v' + b"9" * 5000 + b'"}]')),
        ("arxiv-snapshot", SNAPSHOT_LINE % b'"versions": [{"version": "v1", "created": "Mon, 2 Apr 99999999999 1:1:1 GMT"}]'),
        ("arxiv-snapshot", SNAPSHOT_LINE % b'"update_date": "9999-12-31T23:59:59-01:00"'),  # aware, past year 9999 in UTC
        ("arxiv-api", b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/abs/0704.0001v99999999999</id>'
                      b"<title>t</title></entry></feed>"),  # a version beyond the store's INTEGER
        ("openalex", b'{"id": 1.0}'),
        ("openalex", b'{"id": "https://openalex.org/W1", "title": ["x"], "authorships": [1, {"author": "x"}], "ids": [], '
                     b'"primary_location": "x", "keywords": [1], "topics": [null], "cited_by_count": "5", '
                     b'"abstract_inverted_index": {"a": "b", "c": [1, "x"]}, "locations": [{"pdf_url": 1}]}'),
        ("semanticscholar", b'{"recommendedPapers": [{"paperId": "x", "title": [null], "authors": [1, {"name": 2}], '
                            b'"externalIds": {"PubMed": 123, "DOI": []}, "tldr": "x", "publicationDate": 2024}]}'),
        ("pmc", b"<pmc-articleset><article><front><journal-meta><journal-id>J</journal-id></journal-meta><article-meta>"
                b'<article-id pub-id-type="pmc">1</article-id></article-meta></front></article></pmc-articleset>'),
        ("pubmed", "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article><ArticleTitle>t</ArticleTitle>"
                   "<Journal><JournalIssue><PubDate><Year>²⁰²⁴</Year></PubDate></JournalIssue></Journal></Article>"
                   "</MedlineCitation></PubmedArticle></PubmedArticleSet>".encode()),
        ("arxiv-oai", b'<ListRecords><record><header><identifier>oai:arXiv.org:0704.0001</identifier></header><metadata>'
                      b'<arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/"><title>t</title><version version="v1">'
                      b"<date>Mon, 2 Apr 99999999999999999999 19:18:42 GMT</date></version></arXivRaw></metadata></record>"
                      b"</ListRecords>"),
        ("arxiv-api", b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/abs/0704.0001v1</id>'
                      b"<title>t</title><published>9999-12-31T23:59:59-01:00</published></entry></feed>"),
        ("arxiv-rss", b"<rss><channel><title>t</title><pubDate>Mon, 2 Apr 99999999999999 19:18:42 GMT</pubDate></channel></rss>"),
        ("crossref", b'{"status": "ok", "message-type": "work", "message": {"DOI": "10.1/x", "issued": {"date-parts": [[100000000000000000000]]}}}'),
        ("biorxiv", b'{"messages": [{"status": "ok"}], "collection": [{"doi": [1], "version": 1}]}'),
        ("biorxiv", b'{"messages": [{"status": "ok"}], "collection": [{"doi": "10.1101/x", "version": "1", "authors": 1.0, '
                    b'"published": true, "category": [], "server": ["x"], "date": 5}]}'),
        ("biorxiv", b'{"messages": [{"status": "ok"}], "collection": [{"doi": "10.1101/x", "version": 100000000000000000000}]}'),
        ("biorxiv-pubs", b'{"messages": [{"status": "ok"}], "collection": [{"preprint_doi": true, "published_doi": "10.1/x"}]}'),
        ("library", b'[{"title": "t", "author": 5}]'),
        ("library", b'[{"title": "t", "issued": {"raw": 2020}}]'),
        ("library", b'{"title": "t", "keywords": {"a": 1}}\n'),
        ("library", b'{"title": "t", "authors": [{"name": "A", "affiliation": 1, "orcid": []}]}\n'),
        ("library", "@article{a, title={t}, year={2020}, month={²}}\n".encode()),
        ("crossref", b'{"status": "ok", "message-type": "work", "message": {"DOI": "10.1/x", "is-referenced-by-count": false}}'),
        ("crossref", b'{"status": "ok", "message-type": "work", "message": {"DOI": "10.1/x", "is-referenced-by-count": 4294967296}}'),
        ("feed", b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>J</title><item><title>t</title>'
                 b"<link>https://example.org/a</link><dc:date>2024-13</dc:date></item></channel></rss>"),
    ],
)
def test_what_the_fuzzing_found(name, data):
    check(name, data)


def test_wrong_types_read_as_absent_fields_not_as_garbage():
    from academichub.sources.arxiv_snapshot import iter_snapshot
    from academichub.sources.openalex import parse_works
    import io

    [paper] = iter_snapshot(io.BytesIO(SNAPSHOT_LINE % b'"versions": "v1", "license": 2, "doi": 3, "update_date": '
                                                     b'"2007-04-02T10:00:00+02:00"'), LOCATION)
    assert (paper.arxiv_id, paper.title, paper.versions, paper.license, paper.doi) == ("0704.0001", "A title", [], None, None)
    assert paper.updated.isoformat() == "2007-04-02T08:00:00"  # naive UTC, as the store keeps it
    [work] = parse_works(b'{"id": "https://openalex.org/W1", "title": ["x"], "display_name": "Shown", '
                         b'"cited_by_count": "5", "authorships": [1, {"author": {"display_name": "A B"}}]}', LOCATION).papers
    assert (work.title, work.citation_count, [a.name for a in work.authors]) == ("Shown", 5, ["A B"])


def test_a_snapshot_line_without_id_is_named_by_its_own_line():
    """The typed version reading must not touch the line number that names an unidentified record."""
    import io

    from academichub.sources.arxiv_snapshot import iter_snapshot

    lines = b"\n\n\n" + b'{"submitter": "x", "title": "t", "versions": [{"version": "v1"}, {"version": "v2"}]}\n'
    [paper] = iter_snapshot(io.BytesIO(lines), LOCATION)
    assert (paper.arxiv_id, paper.source_id, [v.version for v in paper.versions]) == (None, f"{LOCATION}:4", [1, 2])


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_utf16_library_with_a_bom_is_read_like_its_utf8_original(shared_data, encoding):
    """It used to be refused as binary data (its zero bytes)."""
    from academichub.ingest.library_import import parse_library

    original = (shared_data / "libraries/7brunner--SysRiskWelfare.bib").read_bytes()
    bom = b"\xff\xfe" if encoding.endswith("le") else b"\xfe\xff"
    reencoded = parse_library(bom + original.decode("utf-8").encode(encoding), "lib.bib")
    utf8 = parse_library(original, "lib.bib")
    assert (reencoded.entries, len(reencoded.papers)) == (utf8.entries, len(utf8.papers)) == (106, 88)
    assert reencoded.papers == utf8.papers and reencoded.skipped == utf8.skipped


def test_a_bibtex_field_of_megabytes_skips_its_entry_by_name(shared_data):
    """300,000 characters of TeX line breaks in one abstract took pylatexenc about 10 s (2 MB:
    minutes, a hang to the fuzzing); no real field is that long, so the entry is skipped and named."""
    from academichub.ingest.library_import import parse_library

    library = (shared_data / "libraries/7brunner--SysRiskWelfare.bib").read_bytes()
    damaged = library.replace(b"abstract = {", b"abstract = {" + b"\\\\" * 150_000, 1)
    lib = parse_library(damaged, "lib.bib")
    [skip] = [s for s in lib.skipped if "characters long" in s]
    found = re.fullmatch(r"lib\.bib:\d+: @\w+\{\S+\}: field 'abstract' is ([\d,]+) characters long \(at most 100,000\), skipped", skip)
    assert found and int(found.group(1).replace(",", "")) > 300_000, skip
    assert lib.entries == 106 and len(lib.papers) == 87  # the one entry less than the whole library gives
