"""The arXiv metadata snapshot: the recorded first 200 lines, exactly; bad lines name their line;
and a re-import changes nothing."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from academichub.errors import ParseError
from academichub.ingest.pipeline import ingest_file
from academichub.model import AuthorData, VersionData
from academichub.sources.arxiv_snapshot import iter_snapshot
from academichub.store.papers import table_counts
from academichub.store.schema import paper_authors, papers

SNAPSHOT = "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl"


@pytest.fixture
def snapshot_path(shared_data):
    return shared_data / SNAPSHOT


@pytest.fixture
def snapshot_lines(snapshot_path) -> list[bytes]:
    return snapshot_path.read_bytes().splitlines(keepends=True)


def _parse(path) -> list:
    with open(path, "rb") as handle:
        return list(iter_snapshot(handle, str(path)))


def test_head_parses_every_line(snapshot_path):
    found = _parse(snapshot_path)
    assert len(found) == 200
    assert [p.arxiv_id for p in found[:3]] == ["0704.0001", "0704.0002", "0704.0003"]
    assert found[-1].arxiv_id == "0704.0200"
    assert all(p.source == "arxiv-snapshot" and p.title and p.abstract and p.submitted for p in found)
    assert sum(len(p.authors) for p in found) == 537
    assert sum(len(p.versions) for p in found) == 326


def test_first_record(snapshot_path):
    paper = _parse(snapshot_path)[0]
    assert (paper.source_id, paper.arxiv_id, paper.arxiv_version) == ("0704.0001v2", "0704.0001", 2)
    assert paper.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert paper.abstract.startswith(
        "A fully differential calculation in perturbative quantum chromodynamics is presented for the production"
    )
    assert paper.abstract.endswith("can be obtained with judicious selection of events.")
    assert paper.authors == [
        AuthorData("C. Balázs"),
        AuthorData("E. L. Berger"),
        AuthorData("P. M. Nadolsky"),
        AuthorData("C. -P. Yuan"),
    ]
    assert paper.doi == "10.1103/PhysRevD.76.013009"
    assert paper.journal_ref == "Phys.Rev.D76:013009,2007"
    assert paper.comments == "37 pages, 15 figures; published version"
    assert paper.license is None
    assert paper.categories == ["hep-ph"]
    assert paper.versions == [
        VersionData(1, datetime(2007, 4, 2, 19, 18, 42)),
        VersionData(2, datetime(2007, 7, 24, 20, 10, 27)),
    ]
    assert paper.submitted == datetime(2007, 4, 2, 19, 18, 42)
    assert paper.updated == datetime(2008, 11, 26)  # update_date
    assert paper.url_pdf == "https://arxiv.org/pdf/0704.0001v2"
    assert paper.raw["report-no"] == "ANL-HEP-PR-07-12"
    assert paper.raw["submitter"] == "Pavel Nadolsky"


def test_named_records(snapshot_path):
    by_id = {p.arxiv_id: p for p in _parse(snapshot_path)}
    sparsity = by_id["0704.0002"]
    assert sparsity.categories == ["math.CO", "cs.CG"]
    assert sparsity.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert sparsity.doi is None
    assert [a.name for a in sparsity.authors] == ["Ileana Streinu", "Louis Theran"]
    # suffix after the family name
    assert by_id["0704.0009"].authors[5] == AuthorData("Neal J. Evans II")
    # two DOIs (paper and erratum): the paper's; the raw record keeps both
    dda = by_id["0704.0033"]
    assert dda.doi == "10.1364/JOSAA.23.002578"
    assert dda.raw["doi"] == "10.1364/JOSAA.23.002578 10.1364/JOSAA.32.002407"
    assert dda.categories == ["physics.optics", "physics.comp-ph"]
    assert dda.license == "http://creativecommons.org/licenses/by-nc-nd/4.0/"
    assert [a.name for a in by_id["0704.0062"].authors] == ["Rastislav Šrámek", "Broňa Brejová", "Tomáš Vinař"]
    # an affiliation (4th element of authors_parsed), hard wrap undone
    assert by_id["0704.0066"].authors == [
        AuthorData(
            "Bozhidar Z. Iliev",
            "Institute for Nuclear Research and Nuclear Energy, Bulgarian Academy of Sciences, Sofia, Bulgaria",
        )
    ]
    assert by_id["0704.0066"].source_id == "0704.0066v1"
    assert by_id["0704.0066"].updated == datetime(2007, 5, 23)


def test_tex_in_author_names_becomes_unicode(snapshot_lines, tmp_path):
    # Recorded line 62 (0704.0062), altered on purpose: older dumps keep TeX in authors_parsed, and
    # without authors_parsed the one-line `authors` (TeX as recorded) is split instead.
    record = json.loads(snapshot_lines[61])
    with_tex = dict(record, authors_parsed=[["\\v{S}r\\'amek", "Rastislav", ""], ["Brejov\\'a", "Bro\\v{n}a", ""]])
    without = {k: v for k, v in record.items() if k != "authors_parsed"}
    path = tmp_path / "tex.jsonl"
    path.write_text(json.dumps(with_tex) + "\n" + json.dumps(without) + "\n")
    first, second = _parse(path)
    assert [a.name for a in first.authors] == ["Rastislav Šrámek", "Broňa Brejová"]
    assert record["authors"] == "Rastislav \\v{S}r\\'amek, Bro\\v{n}a Brejov\\'a, Tom\\'a\\v{s} Vina\\v{r}"
    assert [a.name for a in second.authors] == ["Rastislav Šrámek", "Broňa Brejová", "Tomáš Vinař"]


def test_bad_json_line_names_file_and_line(snapshot_lines, tmp_path):
    # the recorded lines 1-3, then line 4 cut in half (as a download cut off mid-file), then line 5
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"".join(snapshot_lines[:3]) + snapshot_lines[3][:150] + b"\n" + snapshot_lines[4])
    seen = []
    with open(path, "rb") as handle, pytest.raises(ParseError) as caught:
        for paper in iter_snapshot(handle, str(path)):
            seen.append(paper.arxiv_id)
    assert (caught.value.location, caught.value.line) == (str(path), 4)
    assert str(caught.value).startswith(f"{path}:4: not a JSON line")
    assert seen == ["0704.0001", "0704.0002", "0704.0003"]


def test_records_without_id_or_title_are_counted_as_failed(engine, snapshot_lines, tmp_path):
    # recorded lines 1-4, with "id" removed from line 2 and "title" from line 3
    second = {k: v for k, v in json.loads(snapshot_lines[1]).items() if k != "id"}
    third = {k: v for k, v in json.loads(snapshot_lines[2]).items() if k != "title"}
    path = tmp_path / "partial.jsonl"
    path.write_bytes(
        snapshot_lines[0]
        + json.dumps(second).encode()
        + b"\n\n"  # a blank line is no record and no error
        + json.dumps(third).encode()
        + b"\n"
        + snapshot_lines[3]
    )
    summary = ingest_file(engine, path)
    assert (summary.records, summary.added, summary.failed) == (4, 2, 2)
    assert summary.errors == [
        f"arxiv-snapshot:{path}:2: no identifier, skipped",
        "arxiv-snapshot:0704.0003v3: no title, skipped",
    ]
    with engine.connect() as conn:
        assert sorted(conn.execute(select(papers.c.arxiv_id)).scalars()) == ["0704.0001", "0704.0004"]


def test_ingest_twice_changes_nothing(engine, snapshot_path):
    first = ingest_file(engine, snapshot_path)
    assert (first.records, first.added, first.updated, first.unchanged, first.failed) == (200, 200, 0, 0, 0)
    with engine.connect() as conn:
        counts = table_counts(conn)
        row = conn.execute(select(papers).where(papers.c.arxiv_id == "0704.0001")).mappings().one()
        names = conn.execute(
            select(paper_authors.c.name).where(paper_authors.c.paper_id == row["id"]).order_by(paper_authors.c.position)
        ).scalars().all()
    assert counts == {
        "papers": 200,
        "paper_authors": 537,
        "paper_subjects": 305,
        "source_records": 200,
        "announcements": 0,
        "paper_identifiers": 200 + 117,  # every arXiv id and the 117 records' DOIs
    }
    assert names == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert (row["arxiv_version"], row["doi"], row["primary_category"]) == (2, "10.1103/physrevd.76.013009", "hep-ph")
    assert row["submitted_at"] == datetime(2007, 4, 2, 19, 18, 42)
    assert [v["version"] for v in row["versions"]] == [1, 2]

    second = ingest_file(engine, snapshot_path)
    assert (second.records, second.added, second.updated, second.unchanged, second.failed) == (200, 0, 0, 200, 0)
    with engine.connect() as conn:
        assert table_counts(conn) == counts
