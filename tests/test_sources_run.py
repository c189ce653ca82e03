"""`academichub sources run` against a local server that replays upstream answers: all six source
kinds fill one store, the cards carry the right labels, no work appears twice, and a failing
source is recorded on its own row without stopping the others.

Recorded answers are used where they exist (the arXiv day, a Crossref journal page, PubMed
efetch). Upstreams with nothing recorded in ../shared/data are replayed from the fixtures the
source tests already wrote from each API's documentation (bioRxiv details, PubMed ESearch, a
Nature RDF feed; OpenAlex's list page is built around its recorded work) — each says so there."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from academichub.cli import app
from academichub.ingest.runner import fetch_window, is_due, run_sources
from academichub.settings import load_settings
from academichub.store.feed import FeedFilters, feed_notices, feed_page
from academichub.store.schema import papers, source_records
from academichub.store.sources import add_source, list_sources

NOW = datetime(2024, 11, 28, 18, 0)
JSON = {"Content-Type": "application/json"}
CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"  # FEMS Microbiology Ecology, 20 works


@pytest.fixture
def upstream(local_server, shared_data):
    from test_biorxiv import item, page  # documented-shape fixtures (no recorded bioRxiv answer)
    from test_publisher_feed import NATURE_RDF  # an RDF feed in Nature's shape (none recorded)
    from test_pubmed import esearch_answer  # ESearch JSON from NCBI's documentation (none recorded)

    crossref = json.loads((shared_data / CROSSREF_PAGE).read_bytes())
    journal_doi = crossref["message"]["items"][0]["DOI"].lower()
    openalex_work = json.loads((shared_data / "openalex/W2741809807.json").read_bytes())

    local_server.route("/rss/cs", body=(shared_data / "arxiv/rss/2024-11-28-all-archives.xml").read_bytes())
    local_server.route("/journals/1574-6941/works", body=(shared_data / CROSSREF_PAGE).read_bytes(), headers=JSON)
    local_server.route("/esearch.fcgi", body=esearch_answer(1, "1"), headers=JSON)
    local_server.route("/efetch.fcgi", body=(shared_data / "pubmed/pubmed1.xml").read_bytes())
    biorxiv_page = dict(
        body=page(
            [
                item(doi="10.1101/2024.11.01.000001", title="A neuroscience preprint", category="neuroscience"),
                # the preprint of the first Crossref work: it must merge into that paper, not stand beside it
                item(doi="10.1101/2024.11.02.000002", title=crossref["message"]["items"][0]["title"][0],
                     category="microbiology", published=journal_doi),
            ],
            cursor=0, total=2,
        ),
        headers=JSON,
    )
    local_server.route("/details/biorxiv/2024-11-20/2024-11-28/0", **biorxiv_page)  # first run: the lookback
    local_server.route("/details/biorxiv/2024-11-27/2024-11-28/0", **biorxiv_page)  # later: from the last success
    no_links = dict(body=b'{"messages":[{"status":"no posts found"}],"collection":[]}', headers=JSON)
    local_server.route("/pubs/biorxiv/2024-11-20/2024-11-28/0", **no_links)
    local_server.route("/pubs/biorxiv/2024-11-27/2024-11-28/0", **no_links)
    local_server.route(
        "/works",
        body=json.dumps({"meta": {"count": 1, "per_page": 200, "next_cursor": None}, "results": [openalex_work]}).encode(),
        headers=JSON,
    )
    local_server.route("/nature.rss", body=NATURE_RDF, headers={"Content-Type": "application/rdf+xml"})
    local_server.route("/broken.rss", status=500, body=b"upstream exploded")
    return {"journal_doi": journal_doi}


@pytest.fixture
def settings(local_server, database_url, monkeypatch):
    base = local_server.url("")
    for name, value in {
        "DATABASE_URL": database_url, "ARXIV_RSS_URL": base + "/rss/", "CROSSREF_URL": base, "PUBMED_URL": base,
        "BIORXIV_URL": base, "OPENALEX_URL": base, "ARXIV_MIN_INTERVAL": "0", "HTTP_RETRIES": "0",
        "ALLOW_PRIVATE_URLS": "true", "SOURCE_LOOKBACK_DAYS": "8",
    }.items():
        monkeypatch.setenv(f"ACADEMICHUB_{name}", value)
    return load_settings()


SOURCES = [
    ("arxiv-cs", "arxiv", {"archives": "cs"}, None),
    ("crossref:fems", "crossref", {"issn": "1574-6941"}, "FEMS Microbiology Ecology"),
    ("pubmed:soc-justice", "pubmed", {"journal": "Soc Justice"}, None),
    ("biorxiv", "biorxiv", {}, None),
    ("openalex:peerj", "openalex", {"source_id": "S1983995261"}, None),
]


def _add_all(engine, local_server, extra=()):
    with engine.begin() as conn:
        for name, kind, params, label in [*SOURCES, ("nature", "feed", {"url": local_server.url("/nature.rss"), "venue": "Nature"}, "Nature"), *extra]:
            add_source(conn, name=name, kind=kind, params=params, label=label, now=NOW)


def _labels(engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        result = feed_page(conn, FeedFilters(), seed=1, batch=0, size=5000)
    labels: dict[str, list[str]] = {}
    for item in result.items:
        labels.setdefault(item["source_label"], []).append(item["title"])
    return labels


def test_all_six_kinds_fill_one_store_with_labels_and_no_duplicates(engine, settings, upstream, local_server):
    _add_all(engine, local_server)
    results = run_sources(engine, settings, now=NOW)
    assert [(r.name, r.ok, r.error) for r in results] == [
        ("arxiv-cs", True, None), ("biorxiv", True, None), ("crossref:fems", True, None),
        ("nature", True, None), ("openalex:peerj", True, None), ("pubmed:soc-justice", True, None),
    ]
    counts = {r.name: (r.summary.added, r.summary.updated, r.summary.failed) for r in results}
    # Sources run in name order. 1504 arXiv papers; 2 bioRxiv preprints; 20 Crossref records, of
    # which 2 are issue DOIs without a title (failed) and 1 is the journal version of a bioRxiv
    # preprint (merged into it: updated, not added); 2 PubMed records; 1 OpenAlex work; 2 Nature items.
    assert counts == {"arxiv-cs": (1504, 0, 0), "biorxiv": (2, 0, 0), "crossref:fems": (17, 1, 2),
                      "nature": (2, 0, 0), "openalex:peerj": (1, 0, 0), "pubmed:soc-justice": (2, 0, 0)}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 1504 + 2 + 17 + 2 + 1 + 2

    labels = _labels(engine)
    assert "arXiv (CS.CY)" in labels  # e.g. 2411.17700, primary cs.CY
    assert labels["FEMS Microbiology Ecology"][0]  # Crossref works carry their journal
    assert labels["PubMed (Soc Justice)"] == ["The treatment of AIDS behind the walls of correctional facilities."]
    assert len(labels["PubMed (Biochim Biophys Acta)"]) == 1
    assert labels["bioRxiv (Neuroscience)"] == ["A neuroscience preprint"]
    assert "Nature" in labels and len(labels["Nature"]) == 2
    assert labels["PeerJ"] == ["The state of OA: a large-scale analysis of the prevalence and impact of Open Access articles"]

    # the merged preprint/journal pair shows both sides on its card
    with engine.connect() as conn:
        merged_id = conn.execute(select(papers.c.id).where(papers.c.doi == upstream["journal_doi"])).scalar_one()
        item = next(i for i in feed_page(conn, FeedFilters(), seed=1, batch=0, size=5000).items if i["id"] == merged_id)
        assert item["versions_of_work"]["preprints"] == ["doi:10.1101/2024.11.02.000002"]
        assert item["versions_of_work"]["published"] == [upstream["journal_doi"]]
        assert item["source_label"] == "FEMS Microbiology Ecology"
        assert conn.execute(
            select(func.count()).select_from(source_records).where(source_records.c.paper_id == merged_id)
        ).scalar_one() == 2

    # a second run changes nothing and adds nothing
    again = run_sources(engine, settings, now=NOW)
    assert [(r.name, r.error) for r in again if not r.ok] == []
    assert sum(r.summary.added for r in again) == 0
    assert sum(r.summary.updated for r in again) == 0


def test_a_failing_source_is_recorded_and_the_others_run(engine, settings, upstream, local_server):
    _add_all(engine, local_server, extra=[("broken", "feed", {"url": local_server.url("/broken.rss")}, "Broken Journal")])
    results = {r.name: r for r in run_sources(engine, settings, now=NOW)}
    assert not results["broken"].ok and "HTTP 500" in results["broken"].error
    assert all(r.ok for name, r in results.items() if name != "broken")
    run_sources(engine, settings, names=["broken"], now=NOW.replace(hour=19))
    with engine.connect() as conn:
        broken = next(s for s in list_sources(conn) if s["name"] == "broken")
        assert (broken["consecutive_failures"], broken["failing_since"]) == (2, NOW)
        notices = feed_notices(conn, None)
    assert [(n["kind"], n["name"], n["failures"]) for n in notices] == [("failing", "Broken Journal", 2)]


def test_window_and_due_rules():
    source = {"enabled": True, "last_run_at": None, "last_success_at": None, "interval_minutes": 60}
    assert is_due(source, NOW)
    assert fetch_window(source, NOW.date(), 7) == (datetime(2024, 11, 21).date(), NOW.date())
    source.update(last_run_at=NOW, last_success_at=datetime(2024, 11, 27, 6))
    assert not is_due(source, NOW.replace(minute=30))
    assert is_due(source, NOW.replace(hour=19))
    assert fetch_window(source, NOW.date(), 7)[0] == datetime(2024, 11, 26).date()
    assert not is_due({**source, "enabled": False}, NOW.replace(hour=23))


def test_sources_cli_add_list_run_remove(settings, upstream, local_server, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(app, ["sources", "add", "crossref", "fems", "--param", "issn=1574-6941"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["sources", "add", "crossref", "nothing"])
    assert bad.exit_code == 1 and "exactly one of issn" in bad.output
    follow = runner.invoke(app, ["sources", "add", "venue", "Nature"])
    assert follow.exit_code == 0, follow.output
    assert "added crossref:nature" in follow.output
    listed = runner.invoke(app, ["sources", "list", "--format", "json"])
    assert {s["name"] for s in json.loads(listed.output)} >= {"fems", "crossref:nature"}
    run = runner.invoke(app, ["sources", "run", "fems"])
    assert run.exit_code == 0, run.output
    assert "fems: 20 records: 18 added, 0 updated, 0 unchanged, 2 failed" in run.output
    removed = runner.invoke(app, ["sources", "remove", "fems"])
    assert removed.exit_code == 0
    assert runner.invoke(app, ["sources", "run", "fems"]).exit_code == 1


def test_semantic_scholar_enriches_stored_papers(engine, settings, local_server, shared_data, monkeypatch):
    """Enrichment is a source like the others, off until added. Its batch answer is built from the
    recorded search page's papers (no batch answer was recorded), given the arXiv ids we look up."""
    from academichub.ingest.pipeline import ingest_file

    ingest_file(engine, shared_data / "arxiv/rss/2024-11-28-all-archives.xml")
    recorded = json.loads((shared_data / "semanticscholar/test_search_paper_next_page-0.json").read_bytes())["data"]

    def batch(raw_path, headers):
        from localserver import Reply

        return Reply(200, json.dumps(answer).encode(), JSON)

    with engine.connect() as conn:
        newest = conn.execute(select(papers.c.arxiv_id).order_by(papers.c.id.desc()).limit(2)).scalars().all()
    answer = [
        {**recorded[0], "externalIds": {"ArXiv": newest[0]}, "tldr": {"model": "tldr@v2.0.0", "text": "A short summary."},
         "citationCount": 7},
        None,  # Semantic Scholar answers null for an id it does not know
    ]
    local_server.route("/graph/v1/paper/batch", handler=batch)
    monkeypatch.setenv("ACADEMICHUB_SEMANTICSCHOLAR_URL", local_server.url(""))
    with engine.begin() as conn:
        add_source(conn, name="s2", kind="semanticscholar", params={"limit": "2"}, label=None, now=NOW)
    [result] = run_sources(engine, load_settings(), now=NOW)
    assert (result.ok, result.error, result.summary.added, result.summary.updated) == (True, None, 0, 1)
    with engine.connect() as conn:
        row = conn.execute(select(papers.c.s2_id, papers.c.tldr, papers.c.citation_count).where(papers.c.arxiv_id == newest[0])).one()
    assert tuple(row) == (recorded[0]["paperId"], "A short summary.", 7)
    assert json.loads(local_server.bodies[0])["ids"] == [f"ARXIV:{newest[0]}", f"ARXIV:{newest[1]}"]


def test_opml_import_adds_feed_sources_once(settings, tmp_path):
    # A small OPML file as feed readers export it (synthetic: OPML lists are the user's own files).
    opml = tmp_path / "journals.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>Journals</title></head><body>'
        '<outline text="Biology"><outline type="rss" text="Nature" xmlUrl="https://www.nature.com/nature.rss"/>'
        '<outline type="rss" text="Cell" xmlUrl="https://www.cell.com/cell/current.rss"/></outline>'
        "</body></opml>"
    )
    runner = CliRunner()
    first = runner.invoke(app, ["sources", "import-opml", str(opml)])
    assert first.exit_code == 0, first.output
    assert "2 feeds added, 0 already present" in first.output
    again = runner.invoke(app, ["sources", "import-opml", str(opml)])
    assert "0 feeds added, 2 already present" in again.output
    listed = json.loads(runner.invoke(app, ["sources", "list", "--format", "json"]).output)
    assert {(s["name"], s["params"]["url"]) for s in listed} == {
        ("feed:nature", "https://www.nature.com/nature.rss"), ("feed:cell", "https://www.cell.com/cell/current.rss"),
    }


def test_a_feed_url_inside_the_network_is_refused_when_added(database_url, monkeypatch, local_server):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["sources", "add", "feed", "lan", "--param", f"url={local_server.url('/nature.rss')}"])
    assert result.exit_code == 1
    assert "refused" in result.output and "127.0.0.1" in result.output


def test_biorxiv_pubs_links_join_a_stored_preprint_and_its_journal_article(engine, settings, local_server, shared_data):
    """/pubs states preprint -> journal links apart from the records (fixture from the documented
    shape: nothing recorded). A stored preprint and a stored journal article become one paper."""
    from test_biorxiv import item, page

    from academichub.ingest.pipeline import ingest_file

    ingest_file(engine, shared_data / "crossref/cr_works-10.json")  # real: 10.1038/nnano.2014.279
    local_server.route(
        "/details/biorxiv/2024-11-20/2024-11-28/0",
        body=page([item(doi="10.1101/2014.01.01.000001", title="A nanotube preprint")], cursor=0, total=1), headers=JSON,
    )
    local_server.route(
        "/pubs/biorxiv/2024-11-20/2024-11-28/0", headers=JSON,
        body=json.dumps({"messages": [{"status": "ok", "cursor": 0, "count": 1, "total": 1}], "collection": [
            {"preprint_doi": "10.1101/2014.01.01.000001", "published_doi": "10.1038/NNANO.2014.279",
             "published_journal": "Nature Nanotechnology", "published_date": "2014-11-30"}]}).encode(),
    )
    with engine.begin() as conn:
        add_source(conn, name="biorxiv", kind="biorxiv", params={}, label=None, now=NOW)
    [result] = run_sources(engine, settings, now=NOW)
    assert (result.ok, result.error, result.summary.added, result.summary.updated) == (True, None, 1, 1)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 1
        item_ = feed_page(conn, FeedFilters(), seed=1, batch=0, size=10).items[0]
    assert item_["versions_of_work"]["preprints"] == ["doi:10.1101/2014.01.01.000001"]
    assert item_["versions_of_work"]["published"] == ["10.1038/nnano.2014.279"]


def test_opml_import_runs_the_add_time_url_check(database_url, monkeypatch, tmp_path, local_server):
    # Literal addresses only: the check needs no DNS. The file is synthetic (OPML lists are the user's own).
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    opml = tmp_path / "shared.opml"
    opml.write_text(
        '<?xml version="1.0"?>\n<opml version="2.0"><head/><body>\n'
        '<outline text="Public" xmlUrl="http://93.184.215.14/feed.xml"/>\n'
        '<outline text="Passwords" xmlUrl="file:///etc/passwd"/>\n'
        '<outline text="Script" xmlUrl="javascript:alert(1)"/>\n'
        f'<outline text="Here" xmlUrl="{local_server.url("/nature.rss")}"/>\n'
        "</body></opml>\n"
    )
    runner = CliRunner()
    refused = runner.invoke(app, ["sources", "import-opml", str(opml)])
    assert refused.exit_code == 1
    text = " ".join(refused.output.split())
    assert "3 of 4 feeds refused, nothing imported" in text
    assert f"{opml}:4: file:///etc/passwd: refused: scheme 'file' is not http or https" in text
    assert f"{opml}:5: javascript:alert(1): refused: scheme 'javascript' is not http or https" in text
    assert f"{opml}:6: {local_server.url('/nature.rss')}: refused: 127.0.0.1 is loopback" in text
    assert json.loads(runner.invoke(app, ["sources", "list", "--format", "json"]).output) == []

    monkeypatch.setenv("ACADEMICHUB_ALLOW_PRIVATE_URLS", "true")  # a mirror on your own network: still no file:
    again = runner.invoke(app, ["sources", "import-opml", str(opml)])
    assert again.exit_code == 1 and "2 of 4 feeds refused" in again.output
    assert json.loads(runner.invoke(app, ["sources", "list", "--format", "json"]).output) == []


def test_a_feed_url_that_is_not_http_is_refused_even_with_private_urls_allowed(database_url, monkeypatch):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("ACADEMICHUB_ALLOW_PRIVATE_URLS", "true")
    runner = CliRunner()
    for url in ("file:///etc/passwd", "javascript:alert(1)"):
        result = runner.invoke(app, ["sources", "add", "feed", "bad", "--param", f"url={url}"])
        assert result.exit_code == 1 and "is not http or https" in result.output, result.output
    assert json.loads(runner.invoke(app, ["sources", "list", "--format", "json"]).output) == []
