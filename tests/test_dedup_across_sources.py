"""One record per work across sources, with real records. The recorded files of different
upstreams share no work (checked: no DOI or title in common), so where a test needs the same work
from two upstreams it takes a real record of each and gives the second the identifying fields of
the first with dataclasses.replace — said at each place. Everything else is as recorded."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from academichub.ingest.pipeline import store_records
from academichub.model import AuthorData, RelationData
from academichub.sources.arxiv_rss import parse_rss
from academichub.sources.crossref import parse_works
from academichub.sources.pubmed import parse_efetch
from academichub.store.feed import FeedFilters, feed_page, get_paper
from academichub.store.schema import paper_identifiers, papers, source_records


@pytest.fixture(scope="module")
def arxiv_day(shared_data):
    path = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    return {p.arxiv_id: p for p in parse_rss(path.read_bytes(), str(path)).papers}


@pytest.fixture(scope="module")
def crossref_work(shared_data):
    path = shared_data / "crossref/cr_works-10.json"  # 10.1038/nnano.2014.279, a Nature Nanotechnology article
    return parse_works(path.read_bytes(), str(path)).papers[0]


@pytest.fixture(scope="module")
def pubmed_records(shared_data):
    path = shared_data / "pubmed/pubmed1.xml"
    return parse_efetch(path.read_bytes(), str(path)).papers


def _count(engine, table=papers) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _card(engine, paper_id):
    with engine.connect() as conn:
        return next(i for i in feed_page(conn, FeedFilters(), seed=3, batch=0, size=100).items if i["id"] == paper_id)


def test_arxiv_paper_and_its_journal_record_from_crossref_are_one_paper(engine, arxiv_day, crossref_work):
    preprint = arxiv_day["2411.17758"]  # real: lists DOI 10.1016/j.segan.2024.101477 (its journal version)
    assert preprint.doi == "10.1016/j.segan.2024.101477"
    # Derived: the real Crossref record, given the DOI of that journal version.
    journal = dataclasses.replace(crossref_work, doi=preprint.doi, source_id=preprint.doi, venue="Sustainable Energy, Grids and Networks")
    for order in ([preprint, journal], [journal, preprint]):
        store_records(engine, [order[0]])
        summary = store_records(engine, [order[1]])
        assert (summary.added, summary.updated) == (0, 1)
        assert _count(engine) == 1
        with engine.connect() as conn:
            paper = get_paper(conn, "2411.17758")
        card = _card(engine, paper["id"])
        # the journal's title wins over the preprint's; the card is labelled by the journal and shows both sides
        assert paper["title"] == crossref_work.title
        assert card["source_label"] == "Sustainable Energy, Grids and Networks"
        assert card["versions_of_work"] == {
            "preprints": ["arXiv:2411.17758"], "published": ["10.1016/j.segan.2024.101477"],
            "venue": "Sustainable Energy, Grids and Networks",
        }
        # the preprint's abstract (arXiv ranks above Crossref for abstracts) and both source records stay
        assert paper["abstract"] == preprint.abstract
        assert _count(engine, source_records) == 2
        with engine.begin() as conn:
            conn.execute(papers.delete())
            conn.execute(source_records.delete())


def test_arxiv_doi_names_the_arxiv_paper(engine, arxiv_day, crossref_work):
    preprint = arxiv_day["2411.17700"]
    # Derived: a Crossref record of arXiv's own DataCite DOI for that paper (Crossref lists posted content so).
    as_doi = dataclasses.replace(crossref_work, doi="10.48550/arXiv.2411.17700", source_id="10.48550/arXiv.2411.17700")
    store_records(engine, [preprint, as_doi])
    assert _count(engine) == 1
    with engine.connect() as conn:
        assert conn.execute(select(paper_identifiers.c.scheme, paper_identifiers.c.value)).all() == [("arxiv", "2411.17700")]


def test_pubmed_record_of_the_same_work_merges_by_the_fuzzy_rule(engine, arxiv_day, pubmed_records):
    preprint = arxiv_day["2411.17775"]  # "What is the amount of baryonic dark matter in galaxies?", Václav Vavryčuk
    # Derived: the real PubMed record given that work's title, first author and year, and no DOI in common.
    indexed = dataclasses.replace(
        pubmed_records[0], title=preprint.title.upper(), authors=[AuthorData("Vaclav Vavrycuk")], doi=None,
        published=preprint.announced,
    )
    summary = store_records(engine, [preprint, indexed])
    assert summary.added == 1 and _count(engine) == 1
    with engine.connect() as conn:
        row = conn.execute(select(papers.c.arxiv_id, papers.c.pmid)).one()
    assert tuple(row) == ("2411.17775", pubmed_records[0].pmid)


@pytest.mark.parametrize(
    "change",
    [
        {"authors": [AuthorData("Someone Else")]},  # same title, another first author
        {"doi": "10.9999/another.work"},  # same title and author, but each carries its own DOI
        {"published": None, "title": "What is the amount of baryonic matter in galaxies?"},  # a different title
    ],
)
def test_similar_but_different_works_stay_apart(engine, arxiv_day, pubmed_records, change):
    preprint = dataclasses.replace(arxiv_day["2411.17775"], doi="10.1016/j.dark.2024.101730")
    base = dict(title=preprint.title, authors=[AuthorData("Václav Vavryčuk")], doi=None, published=preprint.announced)
    indexed = dataclasses.replace(pubmed_records[0], **{**base, **change})  # derived, as above
    store_records(engine, [preprint])
    store_records(engine, [indexed])
    assert _count(engine) == 2


def test_two_real_arxiv_papers_with_the_same_title_stay_two(engine, shared_data):
    from academichub.ingest.pipeline import ingest_file

    ingest_file(engine, shared_data / "arxiv/oai-quant-ph/arXiv-meta-2005.xml")
    with engine.connect() as conn:
        rows = conn.execute(
            select(papers.c.arxiv_id).where(papers.c.title == "Realism in the Realized Popper's Experiment").order_by(papers.c.arxiv_id)
        ).scalars().all()
    assert rows == ["quant-ph/0507009", "quant-ph/0507011"]


def test_a_link_arriving_later_joins_two_stored_papers(engine, arxiv_day, crossref_work):
    preprint = dataclasses.replace(arxiv_day["2411.17801"], doi=None)  # derived: without its journal DOI
    journal = crossref_work  # real, stored apart first: nothing links them yet
    store_records(engine, [preprint, journal])
    assert _count(engine) == 2
    # Derived: a record of the journal work that names the arXiv paper as its preprint (Crossref has-preprint).
    linking = dataclasses.replace(crossref_work, relations=[RelationData("has-preprint", "arxiv", "2411.17801")])
    summary = store_records(engine, [linking])
    assert summary.updated == 1
    assert _count(engine) == 1
    assert _count(engine, source_records) == 2  # both source records now point at the one paper
