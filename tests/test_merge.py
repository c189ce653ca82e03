"""One record per work. The rules live in the pure decider (ingest/merge.py); these tests drive it
with records parsed from the shared arXiv day. Where a test needs an older version or a listing
from another archive, it derives it from the real record with dataclasses.replace (stated there);
no upstream response is hand-written."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from academichub.ingest import merge
from academichub.ingest.pipeline import store_records
from academichub.model import VersionData
from academichub.sources.arxiv_rss import parse_rss
from academichub.store.schema import paper_subjects, papers, source_records

NOW = datetime(2024, 11, 28, 12, 0)


@pytest.fixture(scope="module")
def day(shared_data):
    path = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    return {p.arxiv_id: p for p in parse_rss(path.read_bytes(), str(path)).papers}


def test_replace_entry_updates_the_version_of_the_stored_paper(day):
    replaced = day["1401.3665"]  # real: "arXiv:1401.3665v4 Announce Type: replace"
    assert (replaced.announce_type, replaced.arxiv_version) == ("replace", 4)
    # Derived: the same paper as its v3 would have been listed earlier.
    older = dataclasses.replace(replaced, source_id="1401.3665v3", arxiv_version=3, title="The existence of designs (v3)",
                                announced=date(2014, 1, 16), updated=None, versions=[VersionData(3)])
    stored = merge.new_row(older, NOW)
    merged = merge.merge_into(stored, replaced, NOW)
    assert merged.values["arxiv_version"] == 4
    assert merged.values["title"] == "The existence of designs"
    assert merged.values["announced_on"] == date(2014, 1, 16)  # first announcement stays
    assert merged.values["updated_at"] == datetime(2024, 11, 28)
    assert [v["version"] for v in merged.values["versions"]] == [3, 4]
    assert merged.values["content_hash"] != stored.values["content_hash"]
    # and an older version arriving late changes no field the newer one set
    again = merge.merge_into(merged, older, NOW)
    assert again.values["title"] == "The existence of designs"
    assert again.values["arxiv_version"] == 4


def test_same_record_twice_is_unchanged(day):
    record = day["2411.17700"]
    row = merge.new_row(record, NOW)
    assert merge.merge_into(row, record, NOW).values["content_hash"] == row.values["content_hash"]


def test_cross_listing_adds_the_category_without_a_duplicate(engine, day):
    cross = next(p for p in day.values() if p.announce_type == "cross" and len(p.categories) >= 2)
    primary, *others = cross.categories
    # Derived: the paper's own 'new' listing as seen in its primary archive's feed only.
    first_listing = dataclasses.replace(cross, announce_type="new", categories=[primary], source_id=cross.source_id + "-primary-feed")
    store_records(engine, [first_listing])
    summary = store_records(engine, [cross])
    assert (summary.added, summary.updated) == (0, 1)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 1
        codes = conn.execute(select(paper_subjects.c.code, paper_subjects.c.is_primary).order_by(paper_subjects.c.code)).all()
        assert {c for c, _ in codes} == set(cross.categories)
        assert [c for c, is_primary in codes if is_primary] == [primary]
        assert conn.execute(select(func.count()).select_from(source_records)).scalar_one() == 2


def test_replace_then_same_day_again_in_one_batch_is_one_paper(engine, day):
    replaced = day["1401.3665"]
    summary = store_records(engine, [replaced, replaced])
    assert (summary.records, summary.added) == (2, 1)
    with engine.connect() as conn:
        row = conn.execute(select(papers.c.arxiv_version, papers.c.primary_category)).one()
    assert tuple(row) == (4, "math.CO")


def test_record_without_identifier_is_counted_failed_not_stored(engine, day):
    nameless = dataclasses.replace(day["2411.17700"], arxiv_id=None, doi=None, url_abs=None)  # derived: stripped of ids
    summary = store_records(engine, [nameless, day["2411.17701"]])
    assert (summary.added, summary.failed) == (1, 1)
    assert "no identifier" in summary.errors[0]


def test_dois_are_normalised(day):
    with_doi = next(p for p in day.values() if p.doi)
    variant = dataclasses.replace(with_doi, doi="https://doi.org/" + with_doi.doi.upper())
    assert merge.new_row(variant, NOW).values["doi"] == with_doi.doi.lower()
