"""Bad input gets a clear error naming the file (and line) and loses nothing stored before; a
failing batch writes nothing; the same input twice gives the same rows."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from academichub.errors import FeedError, ParseError
from academichub.ingest.pipeline import ingest_bytes, ingest_file
from academichub.store.papers import table_counts
from academichub.store.schema import announcements


def _counts(engine):
    with engine.connect() as conn:
        return table_counts(conn)


def test_truncated_rss_fails_with_line_and_keeps_what_was_stored(engine, shared_data, tmp_path):
    day = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    ingest_file(engine, day)
    before = _counts(engine)
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(day.read_bytes()[:100_000])
    with pytest.raises(ParseError) as info:
        ingest_file(engine, truncated)
    assert str(info.value).startswith(f"{truncated}:")
    assert info.value.line is not None and info.value.line > 700
    assert _counts(engine) == before


def test_truncated_oai_file_writes_nothing(engine, shared_data, tmp_path):
    source = shared_data / "arxiv/oai-quant-ph/arXiv-meta-2000.xml"
    truncated = tmp_path / "oai-truncated.xml"
    truncated.write_bytes(source.read_bytes()[: len(source.read_bytes()) // 2])
    with pytest.raises(ParseError) as info:
        ingest_file(engine, truncated, batch_size=100)  # several batches parsed before the break
    assert str(truncated) in str(info.value)
    assert _counts(engine)["papers"] == 0


def test_wrong_file_types_are_refused_by_name(engine, tmp_path):
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    with pytest.raises(ParseError, match=r"paper\.pdf:1: unsupported file type: this is a PDF document"):
        ingest_file(engine, pdf)
    with pytest.raises(ParseError, match="is a directory"):
        ingest_file(engine, tmp_path)
    with pytest.raises(ParseError, match="cannot read"):
        ingest_file(engine, tmp_path / "missing.xml")


def test_error_feed_names_the_bad_archive(engine, shared_data):
    path = shared_data / "arxiv/rss/error-bad-archive.xml"
    with pytest.raises(FeedError, match="bad archive 'astroph'"):
        ingest_file(engine, path)
    assert _counts(engine)["papers"] == 0


def test_empty_feed_is_a_day_without_announcement(engine, shared_data):
    summary = ingest_file(engine, shared_data / "arxiv/rss/empty.xml")
    assert (summary.records, summary.failed) == (0, 0)
    assert summary.notes == ["no announcement on 2024-11-28 (empty feed)"]
    with engine.connect() as conn:
        row = conn.execute(select(announcements)).mappings().one()
    assert (row["feed"], row["status"], row["items"], row["announced_on"]) == ("test", "empty", 0, date(2024, 11, 28))


def test_malformed_xml_bytes_name_the_url(engine):
    with pytest.raises(ParseError, match=r"^https://rss\.arxiv\.org/rss/cs:1: malformed XML"):
        ingest_bytes(engine, b"<rss xmlns:arxiv='http://arxiv.org/schemas/atom'><channel><item></channel>", "https://rss.arxiv.org/rss/cs")


def test_xml_entities_are_never_expanded(engine, tmp_path):
    # Synthetic hostile document (an XXE attempt); no upstream sends this.
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    hostile = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0" xmlns:arxiv="http://arxiv.org/schemas/atom"><channel><title>t</title>'
        "<pubDate>Thu, 28 Nov 2024 00:00:00 -0500</pubDate><item><title>Title &x; here</title>"
        "<description>arXiv:2411.00001v1 Announce Type: new Abstract: a</description>"
        "<category>cs.LG</category></item></channel></rss>"
    ).encode()
    assert ingest_bytes(engine, hostile, "hostile.xml").added == 1
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.exec_driver_sql("SELECT p.title, p.abstract, s.raw FROM papers p JOIN source_records s ON s.paper_id = p.id")]
    assert stored and stored[0][0].startswith("Title")
    assert "TOP-SECRET" not in repr(stored)


@pytest.mark.parametrize("name", ["arXiv-meta-1995.xml"])
def test_oai_file_twice_is_idempotent(engine, shared_data, name):
    path = shared_data / "arxiv/oai-quant-ph" / name
    first = ingest_file(engine, path)
    counts = _counts(engine)
    second = ingest_file(engine, path)
    assert (first.added, second.added, second.updated, second.unchanged) == (436, 0, 0, 436)
    assert _counts(engine) == counts
