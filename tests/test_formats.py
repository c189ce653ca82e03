"""Format detection on every recorded arXiv file, and clear refusals of everything else."""

from __future__ import annotations

import pytest

from academichub.errors import ParseError
from academichub.ingest.formats import Format, detect_format


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
        (b'[{"id": "x"}]', "unsupported format"),
        (b'{"hello": "world"}', "unsupported JSON"),
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
