"""Every path that stores papers embeds them (`papers import`, `radar seed`, a library uploaded on
the web, `ingest`, `sources run`, the sample day loaded at start-up), the web upload in the
background; and where vectors are missing, `rank` and the radar pages say so. Real recorded data
throughout (a 42-entry Zotero library, ten arXiv API entries, a Crossref journal page), a real
store, the real packaged model. Skipped when the optional `embeddings` extra is not installed."""

from __future__ import annotations

import threading
import warnings
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

pytest.importorskip("sentence_transformers")
pytest.importorskip("onnxruntime")

from academichub.cli import app  # noqa: E402
from academichub.ingest import pipeline  # noqa: E402
from academichub.ingest.pipeline import ingest_file  # noqa: E402
from academichub.rank import embeddings as E  # noqa: E402
from embedder_support import offline_embedder  # noqa: E402
from academichub.rank.embedding_jobs import (  # noqa: E402
    embed_new_papers,
    vector_gap,
    wait_for_background_embedding,
)
from academichub.settings import Settings, load_settings  # noqa: E402
from academichub.store.radars import create_radar, default_user, get_radar  # noqa: E402
from academichub.store.schema import paper_embeddings, papers  # noqa: E402
from academichub.web.app import create_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LIBRARY = "libraries/AhmedThahir--Zotero_Database.bib"  # 42 entries, all stored
TEN_PAPERS = "arxiv/api/q_testing_s0_m10_bc5a6c384fe9.xml"  # ten real arXiv API entries
CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"  # FEMS Microbiology Ecology, 18 stored
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    """The packaged model on the CPU's fast path, at 128 tokens (no per-machine calibration)."""
    with offline_embedder(tmp_path_factory, max_seq_length=128) as loaded:
        yield loaded


@pytest.fixture
def embedding(monkeypatch, embedder, database_url):
    """Embedding after a store is on (conftest turns it off), with the module's loaded model."""
    monkeypatch.setenv("ACADEMICHUB_EMBED_ON_INGEST", "true")
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    monkeypatch.setattr(E, "configured_embedder", lambda settings, engine=None: embedder)
    return embedder


def counts(engine) -> tuple[int, int]:
    """(stored papers, stored vectors)."""
    with engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(papers)).scalar_one(),
                conn.execute(select(func.count()).select_from(paper_embeddings)).scalar_one())


def test_papers_import_embeds_what_it_stored(engine, embedding, shared_data, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("ACADEMICHUB_EMBED_ON_INGEST", "false")  # the setting is obeyed
    off = runner.invoke(app, ["papers", "import", str(shared_data / LIBRARY)])
    assert off.exit_code == 0, off.output
    assert counts(engine) == (42, 0)
    monkeypatch.setenv("ACADEMICHUB_EMBED_ON_INGEST", "true")
    again = runner.invoke(app, ["papers", "import", str(shared_data / LIBRARY)])
    assert again.exit_code == 0, again.output
    assert "42 records: 0 added, 0 updated, 42 unchanged" in again.output
    assert counts(engine) == (42, 42)  # nothing new, yet the papers without a vector got one


def test_radar_seed_embeds_its_seeds(engine, embedding, shared_data):
    runner = CliRunner()
    assert runner.invoke(app, ["radar", "create", "ml"]).exit_code == 0
    seeded = runner.invoke(app, ["radar", "seed", "ml", str(shared_data / LIBRARY)])
    assert seeded.exit_code == 0, seeded.output
    assert "radar 'ml': 42 new seeds, 42 papers" in seeded.output
    with engine.connect() as conn:
        seeds = get_radar(conn, "ml").seeds
        embedded = set(conn.execute(select(paper_embeddings.c.paper_id)).scalars())
    assert len(seeds) == 42 and set(seeds) <= embedded


def test_ingest_embeds(engine, embedding, shared_data):
    result = CliRunner().invoke(app, ["ingest", str(shared_data / TEN_PAPERS), "--no-ingest-worker"])
    assert result.exit_code == 0, result.output
    assert counts(engine) == (10, 10)


def test_sources_run_embeds(engine, embedding, local_server, shared_data, monkeypatch):
    for name, value in {"CROSSREF_URL": local_server.url(""), "HTTP_RETRIES": "0", "ALLOW_PRIVATE_URLS": "true"}.items():
        monkeypatch.setenv(f"ACADEMICHUB_{name}", value)
    local_server.route("/journals/1574-6941/works", body=(shared_data / CROSSREF_PAGE).read_bytes(), headers=JSON)
    runner = CliRunner()
    assert runner.invoke(app, ["sources", "add", "crossref", "fems", "--param", "issn=1574-6941"]).exit_code == 0
    run = runner.invoke(app, ["sources", "run", "fems"])
    assert "fems: 20 records: 18 added" in run.output, run.output
    assert counts(engine) == (18, 18)


def test_the_sample_day_loaded_at_start_up_is_embedded_in_the_background(engine, embedding, shared_data, monkeypatch):
    # ten real arXiv papers stand in for the 1,504 of the bundled day: the same path, a shorter wait
    monkeypatch.setattr(pipeline, "SAMPLE_FILE", shared_data / TEN_PAPERS)
    with TestClient(create_app(load_settings(), engine=engine)) as client:
        assert client.get("/").status_code == 200
        wait_for_background_embedding(engine)
    assert counts(engine) == (10, 10)


def test_a_library_uploaded_on_the_web_is_embedded_after_the_page_answered(engine, embedding, shared_data, monkeypatch):
    """The upload answers while the model is still held back; the seeds' vectors follow."""
    release = threading.Event()
    real_encode = embedding.encode

    class HeldBack:
        name, dim, max_seq_length = embedding.name, embedding.dim, embedding.max_seq_length

        def encode(self, texts, batch_size=32):
            if not release.wait(60):  # a page that waited for this would wait in vain
                raise AssertionError("the upload's answer waited for the embedding")
            return real_encode(texts, batch_size=batch_size)

    monkeypatch.setattr(E, "configured_embedder", lambda settings, engine=None: HeldBack())
    monkeypatch.setenv("ACADEMICHUB_LOAD_SAMPLE", "false")
    with engine.begin() as conn:
        create_radar(conn, user_id=default_user(conn), name="ml")
    with TestClient(create_app(load_settings(), engine=engine)) as client:
        with open(shared_data / LIBRARY, "rb") as handle:
            done = client.post("/radars/ml/seeds/upload", follow_redirects=False,
                               files={"library": ("zotero.bib", handle, "application/x-bibtex")})
        assert done.status_code == 303, done.text[:300]
        assert counts(engine) == (42, 0)  # answered before a single vector was written
        page = client.get("/radars/ml", params={"lang": "en"})
        assert "Embedding 42 of 42 papers in the background" in page.text
        release.set()
        wait_for_background_embedding(engine)
        assert counts(engine) == (42, 42)
        page = client.get("/radars/ml", params={"lang": "en"})
        assert "notice-vectors" not in page.text


def test_rank_says_when_vectors_are_missing(engine, embedding, shared_data):
    ingest_file(engine, shared_data / TEN_PAPERS)  # stored by a path that does not embed
    runner = CliRunner()
    assert runner.invoke(app, ["radar", "create", "t", "--interest", "software testing"]).exit_code == 0
    result = runner.invoke(app, ["rank", "t", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert ("notice: 10 of 10 papers have no embedding yet, so this ranking reads only their text and the "
            "radar's rules: run `academichub embed` to rank them by meaning too") in result.stderr
    assert result.stdout.lstrip().startswith("[")  # the JSON stays clean
    assert runner.invoke(app, ["embed"]).exit_code == 0
    embedded = runner.invoke(app, ["rank", "t", "--format", "json"])
    assert embedded.exit_code == 0 and "notice" not in embedded.stderr


def test_the_radar_pages_say_when_vectors_are_missing(engine, embedding, shared_data):
    ingest_file(engine, shared_data / TEN_PAPERS)
    with engine.begin() as conn:
        create_radar(conn, user_id=default_user(conn), name="t", interest="software testing")
    settings = Settings(load_sample=False, embed_on_ingest=False)
    with TestClient(create_app(settings, engine=engine)) as client:
        pages = {
            lang: [client.get("/radars/t", params={"lang": lang}).text,
                   client.get("/", params={"radar": "t", "lang": lang}).text]
            for lang in ("en", "zh")
        }
        for page in pages["en"]:
            assert "10 of 10 papers have no embedding yet, so this ranking reads only their text and your rules." in page
            assert "academichub embed" in page
        for page in pages["zh"]:
            assert "10 篇论文中有 10 篇还没有语义向量，因此此排序只依据论文文本和您的规则。" in page
        embed_new_papers(engine, settings)
        for lang in ("en", "zh"):
            for url, params in (("/radars/t", {}), ("/", {"radar": "t"})):
                page = client.get(url, params={**params, "lang": lang}).text
                assert "notice-vectors" not in page
    with engine.connect() as conn:
        assert vector_gap(conn, settings) is None


def test_a_gap_counts_the_papers_ranked(engine, embedder, shared_data):
    """Only papers of the ranked window count; without any missing there is no notice."""
    from datetime import date

    ingest_file(engine, shared_data / TEN_PAPERS)
    settings = Settings()
    with engine.connect() as conn:
        gap = vector_gap(conn, settings)
        assert (gap.missing, gap.total, gap.embedding) == (10, 10, False)
        assert vector_gap(conn, settings, since=date(2100, 1, 1)) is None
    with engine.begin() as conn:
        first = conn.execute(select(papers.c.id).order_by(papers.c.id)).scalars().first()
        E.store_vectors(conn, embedder.name, [first], embedder.encode(["x"]), embedder.max_seq_length)
    with engine.connect() as conn:
        gap = vector_gap(conn, settings)
        assert (gap.missing, gap.total) == (9, 10)
