"""Format detection on every recorded arXiv file, and clear refusals of everything else; XML in
UTF-16 (a real recorded file re-encoded) is detected, parsed and stored exactly as its UTF-8 original."""

from __future__ import annotations

import io

import pytest

from academichub.errors import ParseError
from academichub.ingest.formats import Format, detect_format
from academichub.ingest.pipeline import ingest_file
from academichub.sources.arxiv_oai import iter_oai
from academichub.sources.arxiv_rss import parse_rss
from academichub.sources.pubmed import parse_efetch


def test_every_other_shared_upstream_file_is_detected(shared_data):
    expected = {
        "pubmed/pubmed1.xml": Format.PUBMED, "pubmed/pubmed7.xml": Format.PUBMED, "pubmed/efetch_pmc.xml": Format.PMC,
        "crossref/cr_works-10.json": Format.CROSSREF, "crossref/cr_works_with_cursor_and_progress_bar-0.json": Format.CROSSREF,
        "openalex/W2741809807.json": Format.OPENALEX,
        "semanticscholar/test_search_paper_next_page-1.json": Format.SEMANTICSCHOLAR,
    }
    for name, fmt in expected.items():
        assert detect_format((shared_data / name).read_bytes()[:4096], name) is fmt, name


def test_every_shared_arxiv_file_is_detected(shared_data):
    expected = {"rss": Format.ARXIV_RSS, "api": Format.ARXIV_API, "oai-quant-ph": Format.ARXIV_OAI, "snapshot": Format.ARXIV_SNAPSHOT}
    seen = 0
    for folder, fmt in expected.items():
        for path in (shared_data / "arxiv" / folder).iterdir():
            if path.suffix in (".xml", ".jsonl"):
                assert detect_format(path.read_bytes()[:4096], str(path)) is fmt, path
                seen += 1
    assert seen == 3 + 20 + 5 + 1


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"%PDF-1.7\n", "PDF document"),
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"", "empty input"),
        (b"   \n", "empty input"),
        (b"hello, world", "unsupported format"),
        (b"<?xml version='1.0'?><html><body/></html>", "root <html>"),
        (b'[{"id": "x"}]', "unknown JSON format: a JSON list"),
        (b'{"hello": "world"}', "unknown JSON format: a JSON object"),
        # one object per line with an "id" used to pass for snapshot lines, and failed later as such
        (b'{"id": 1, "name": "a CSL item or any export"}\n{"id": 2}\n', "unknown JSON format"),
        (b'{"id": "W1", "display_name": "x"}', "unknown JSON format"),
        (b"\xff\xfe" + '{"message-type": "work"}'.encode("utf-16-le"), "JSON in UTF-16-LE: JSON must be UTF-8"),
    ],
)
def test_wrong_inputs_are_named(head, message):
    with pytest.raises(ParseError) as info:
        detect_format(head, "some/file.bin")
    assert message in str(info.value)
    assert str(info.value).startswith("some/file.bin:1:")


def test_prolog_and_comments_before_the_root():
    head = b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- recorded -->\n<!DOCTYPE rss>\n<rss xmlns:arxiv='http://arxiv.org/schemas/atom' version='2.0'>"
    assert detect_format(head, "x") is Format.ARXIV_RSS
    # RSS, Atom and RDF without arXiv's namespace are journal feeds
    assert detect_format(b"<rss version='2.0'><channel>", "x") is Format.PUBLISHER_FEED
    assert detect_format(b"<feed xmlns='http://www.w3.org/2005/Atom'>", "x") is Format.PUBLISHER_FEED
    assert detect_format(b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>", "x") is Format.PUBLISHER_FEED
    assert detect_format(b"<OAI-PMH xmlns='http://www.openarchives.org/OAI/2.0/'>", "x") is Format.ARXIV_OAI


def test_json_is_told_by_its_keys_not_by_words_inside_its_strings(shared_data):
    line = (shared_data / "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl").read_bytes().split(b"\n", 1)[0]
    # a snapshot abstract that quotes other upstreams' keys and URLs is still a snapshot line
    quoting = line.replace(b'"abstract":"', b'"abstract":"see \\"message-type\\": \\"https://openalex.org/W1 ', 1)
    assert quoting != line and detect_format(quoting, "x") is Format.ARXIV_SNAPSHOT
    assert detect_format(b'{"id": "https://openalex.org/W2741809807"}', "x") is Format.OPENALEX


def _utf16(data: bytes, order: str) -> bytes:
    """The same text in UTF-16 with its byte order mark (the XML declaration still says UTF-8, as a
    re-encoding tool leaves it; the mark wins, as the XML spec says)."""
    bom = b"\xff\xfe" if order == "le" else b"\xfe\xff"
    return bom + data.decode("utf-8").encode(f"utf-16-{order}")


@pytest.mark.parametrize("order", ["le", "be"])
def test_utf16_xml_with_a_bom_is_detected_and_parsed_like_the_original(shared_data, order):
    rss = (shared_data / "arxiv/rss/2024-11-28-all-archives.xml").read_bytes()
    oai = (shared_data / "arxiv/oai-quant-ph/arXiv-meta-1995.xml").read_bytes()
    pubmed = (shared_data / "pubmed/pubmed2.xml").read_bytes()
    for original, fmt in ((rss, Format.ARXIV_RSS), (oai, Format.ARXIV_OAI), (pubmed, Format.PUBMED)):
        assert detect_format(_utf16(original, order)[:4096], "utf16.xml") is fmt

    day = parse_rss(_utf16(rss, order), "utf16.xml")
    assert len(day.papers) == 1504 and day.papers == parse_rss(rss, "utf8.xml").papers
    records = list(iter_oai(io.BytesIO(_utf16(oai, order)), "utf16.xml"))
    assert len(records) == 436 and records == list(iter_oai(io.BytesIO(oai), "utf8.xml"))
    articles = parse_efetch(_utf16(pubmed, order), "utf16.xml").papers
    assert articles == parse_efetch(pubmed, "utf8.xml").papers and len(articles) == len(pubmed.split(b"<PubmedArticle>")) - 1


def test_utf16_file_is_stored_as_its_utf8_original(engine, shared_data, tmp_path):
    original = shared_data / "arxiv/oai-quant-ph/arXiv-meta-1995.xml"
    reencoded = tmp_path / "arXiv-meta-1995-utf16.xml"
    reencoded.write_bytes(_utf16(original.read_bytes(), "be"))
    first = ingest_file(engine, reencoded)
    again = ingest_file(engine, original)  # the same records: stored once, nothing changes
    assert (first.added, first.failed, again.added, again.updated, again.unchanged) == (436, 0, 0, 0, 436)
