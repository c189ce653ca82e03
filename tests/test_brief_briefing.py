"""Briefings end to end in a real store (SQLite, or PostgreSQL in the suite's second pass): the
extractive briefing in English and Chinese over 40 real papers, caching and regeneration, what
changed against a previous period, an LLM briefing through a fake OpenAI-compatible server with
tokens and cost recorded, the fallback when the LLM fails, Markdown and JSON, the CLI command and
the web page, API and feed panel."""

from __future__ import annotations

import json
import re
import warnings
from datetime import date

import pytest
import typer
from fastapi import Request
from sqlalchemy import select
from typer.testing import CliRunner

from academichub.brief.briefing import make_briefing, render_markdown, stored_briefing, to_json
from academichub.brief.extractive import LABELS
from academichub.brief.inputs import period_papers
from academichub.ingest.pipeline import store_records
from academichub.settings import load_settings
from academichub.store.schema import briefings
from brief_support import assert_citations_resolve, selection
from fake_openai import FakeOpenAI, careful_model

DAY = date(2024, 11, 28)


@pytest.fixture
def stored(engine, shared_data):
    """The 40 selected papers in the store, ids in selection order (so [n] = the n-th selected)."""
    store_records(engine, selection(shared_data))
    with engine.connect() as conn:
        ids = period_papers(conn, DAY, DAY, 40)
    assert len(ids) == 40
    return ids


@pytest.fixture
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def settings(**overrides):
    return load_settings(load_sample=False, **overrides)


def squash(text: str) -> str:
    return " ".join(text.split())


# -- extractive ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_extractive_briefing_quotes_the_abstracts(engine, stored, lang):
    b = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang=lang, settings=settings())
    doc = b.doc
    assert b.kind == doc.kind == "extractive" and b.model is None and b.fallback_reason is None
    assert doc.label == LABELS[lang]["extractive"]
    assert ("摘录式" in doc.label) if lang == "zh" else ("Extractive" in doc.label)
    assert 3 <= len(doc.themes) <= 7
    assert_citations_resolve(doc, 40)
    with engine.connect() as conn:
        from academichub.store.schema import papers

        rows = dict(conn.execute(select(papers.c.id, papers.c.abstract)).all())
    abstracts = {p["n"]: squash(rows[p["paper_id"]]) for p in b.papers}
    quotes = [s for t in doc.themes for s in t.sentences if s.quote] + [p.line for p in doc.picks if p.line.quote]
    assert len(quotes) >= len(doc.themes) * 2
    for quote in quotes:
        assert len(quote.cite) == 1
        text = quote.text.rstrip("…")
        assert squash(text) in abstracts[quote.cite[0]], quote  # verbatim
        assert quote.title == b.paper(quote.cite[0])["title"]  # titles stay as written
    intro = doc.themes[0].sentences[0]
    if lang == "zh":
        assert doc.headline.text.startswith("40 篇论文，") and "篇论文，来自" in intro.text
        assert doc.notes == ["没有可比较的上一期。"]
    else:
        assert doc.headline.text.startswith("40 papers in ") and " papers from " in intro.text
        assert doc.notes == ["No previous period to compare with."]
    assert doc.links and all(link.similarity and link.field_a != link.field_b for link in doc.links)
    assert len(doc.picks) == min(5, len(doc.themes))


def test_cache_regenerate_and_supersede(engine, stored):
    s = settings()
    first = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en", settings=s)
    again = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en", settings=s)
    assert not first.cached and again.cached and again.id == first.id
    assert again.doc == first.doc and again.analysis == first.analysis
    fresh = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en", settings=s,
                          regenerate=True)
    assert fresh.id != first.id and not fresh.cached
    other_lang = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="zh", settings=s)
    other_set = make_briefing(engine, radar_id=None, paper_ids=stored[:20], period=(DAY, DAY), lang="en", settings=s)
    assert len({first.id, fresh.id, other_lang.id, other_set.id}) == 4
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(briefings))}
    assert rows[first.id].superseded_at is not None  # kept, marked
    assert rows[fresh.id].superseded_at is None and rows[other_lang.id].superseded_at is None
    assert make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en", settings=s).id == fresh.id
    assert stored_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en").id == fresh.id
    assert stored_briefing(engine, radar_id=None, paper_ids=stored[::-1], period=(DAY, DAY), lang="en") is None


def test_what_changed_against_the_previous_period(engine, stored):
    previous = stored[:8] + stored[32:]  # the cs.CL and hep-ph papers only
    s = settings()
    before = make_briefing(engine, radar_id=None, paper_ids=previous, period=(DAY, DAY), lang="en", settings=s)
    b = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en", settings=s,
                      previous_paper_ids=previous, regenerate=True)
    assert before.analysis.has_previous is False and b.analysis.has_previous
    kinds = [c.kind for c in b.doc.changes]
    assert "new" in kinds and b.doc.changes[0].text.text.startswith("New theme: ")
    new = next(c for c in b.doc.changes if c.kind == "new")
    assert new.text.cite  # the new theme's papers
    assert not b.doc.notes
    zh = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="zh", settings=s,
                       previous_paper_ids=previous)
    assert zh.doc.changes[0].text.text.startswith("新主题：")


def test_no_papers(engine):
    b = make_briefing(engine, radar_id=None, paper_ids=[], period=(DAY, DAY), lang="en", settings=settings())
    assert b.doc.headline.text == "No papers in this period." and not b.doc.themes
    assert render_markdown(b).startswith("# No papers in this period.")


# -- LLM ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_llm_briefing_records_tokens_and_cost(engine, stored, fake, stream):
    fake.script = [careful_model]
    s = settings(llm_base_url=fake.base_url, llm_model="fake-model", llm_api_key="sk-test", llm_stream=stream,
                 llm_price_per_1k_input=0.5, llm_price_per_1k_output=2.0)
    b = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en", settings=s)
    assert b.kind == "llm" and b.model == "fake-model" and b.fallback_reason is None
    assert (b.tokens_in, b.tokens_out) == (1200, 300) and b.cost == pytest.approx(0.6 + 0.6)
    assert_citations_resolve(b.doc, 40)
    assert fake.requests[0][1].get("stream", False) is stream
    with engine.connect() as conn:
        row = conn.execute(select(briefings).where(briefings.c.id == b.id)).mappings().one()
    assert (row["kind"], row["model"], row["tokens_in"], row["tokens_out"]) == ("llm", "fake-model", 1200, 300)
    assert row["cost"] == pytest.approx(1.2)
    markdown = render_markdown(b)
    cited = set(re.findall(r"\[\\\[(\d+)\\\]\]\(/papers/(\d+)\)", markdown))
    assert cited and all(int(pid) == stored[int(n) - 1] for n, pid in cited)  # [n] links to the n-th paper
    again = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en", settings=s)
    assert again.cached and fake.hits == 1  # stored: the LLM is not asked twice


def test_llm_failure_falls_back_to_the_extractive_briefing(engine, stored, fake):
    fake.script = [FakeOpenAI.error(500)]
    s = settings(llm_base_url=fake.base_url, llm_model="fake-model", llm_retries=0)
    b = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="zh", settings=s)
    assert b.kind == "extractive" and "failed 1 times" in b.fallback_reason
    assert b.doc.notes[0] == LABELS["zh"]["fallback"]
    assert b.doc.label == LABELS["zh"]["extractive"]
    assert to_json(b)["fallback_reason"] == b.fallback_reason


# -- presenting -----------------------------------------------------------------------------------


def test_markdown_and_json(engine, stored):
    b = make_briefing(engine, radar_id=None, paper_ids=stored, period=(DAY, DAY), lang="en", settings=settings())
    page = render_markdown(b)
    assert page.startswith("# 40 papers in ")
    for heading in ("## Themes", "## Cross-domain links", "## Read first", "## Papers"):
        assert heading in page
    assert f"[\\[1\\]](/papers/{stored[0]})" in page or f"(/papers/{stored[0]})" in page
    cards = render_markdown(b, link="card", base_url="http://lab:8000")
    assert f"(http://lab:8000/#paper-{stored[0]})" in cards
    source = render_markdown(b, link="source")
    assert "(https://arxiv.org/abs/" in source
    assert "\\$H^3\\$" not in page and "$H^3$Fusion" in page  # LaTeX kept as written
    data = to_json(b)
    assert json.loads(json.dumps(data)) == data
    assert data["kind"] == "extractive" and data["period"] == {"start": "2024-11-28", "end": "2024-11-28"}
    assert data["papers"][0]["card"] == f"/#paper-{stored[0]}" and data["papers"][0]["n"] == 1
    assert set(data["briefing"]) == {"kind", "lang", "label", "headline", "themes", "links", "picks", "changes", "notes"}
    assert all("centroid" not in t for t in data["analysis"]["themes"])


# -- CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def cli(database_url, monkeypatch):
    import academichub.cli  # noqa: F401 - first: cli_brief imported alone runs into the cli <-> cli_brief cycle
    from academichub.cli_brief import brief_command

    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("brief")(brief_command)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["brief", *args])


def test_cli_brief_json_and_markdown(cli, stored):
    result = cli("all", "--date", "2024-11-28", "--lang", "en", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "extractive" and len(data["papers"]) == 40 and data["radar_id"] is None
    result = cli("nosuchradar", "--date", "2024-11-28", "--lang", "zh")
    assert result.exit_code == 0
    assert "no radar named 'nosuchradar'" in result.stderr
    assert result.stdout.startswith("# 40 篇论文") and "## 主题" in result.stdout
    week = json.loads(cli("all", "--date", "2024-11-28", "--week", "--format", "json", "--lang", "en").stdout)
    assert week["period"] == {"start": "2024-11-22", "end": "2024-11-28"}
    cached = json.loads(cli("all", "--date", "2024-11-28", "--lang", "en", "--format", "json").stdout)
    assert cached["cached"] and cached["id"] == data["id"]
    again = json.loads(cli("all", "--date", "2024-11-28", "--lang", "en", "--format", "json", "--regenerate").stdout)
    assert again["id"] != data["id"] and not again["cached"]


def test_cli_brief_refuses_bad_input(cli, stored):
    for args, message in ((["--format", "pdf"], "--format 'pdf'"), (["--date", "28.11.2024"], "use YYYY-MM-DD"),
                          (["--lang", "fr"], "zh or en")):
        result = cli("all", *args)
        assert result.exit_code == 1 and message in result.stderr, result.output


@pytest.mark.parametrize("week", [[], ["--week"]])
def test_cli_brief_of_the_first_day_of_the_calendar(cli, stored, week):
    """The period before 0001-01-01 overflowed date arithmetic: a traceback (the same in /api/briefing)."""
    result = cli("all", "--date", "0001-01-01", *week, "--format", "json", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["period"] == {"start": "0001-01-01", "end": "0001-01-01"}


def test_cli_brief_a_radar(cli, engine, stored):
    from academichub.store.radars import add_rule, create_radar, default_user

    with engine.begin() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name="quantum", interest="quantum computing")
        add_rule(conn, radar_id, "keyword", "quantum")
    result = cli("quantum", "--date", "2024-11-28", "--lang", "en", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["radar_id"] == radar_id
    assert {p["paper_id"] for p in data["papers"]} <= set(stored)
    assert "quantum" in data["papers"][0]["title"].lower()  # the radar's ranking, best first


# -- web ------------------------------------------------------------------------------------------


def _client(engine, s):
    from academichub.web import app as web_app
    from academichub.web import briefing_page, i18n
    from fastapi.responses import HTMLResponse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    app = web_app.create_app(s, engine=engine)
    envs = {lang: web_app._make_env(t, lang) for lang, t in i18n.load_all().items()}

    def render(request, template, context, *, status_code=200):
        lang = briefing_page.language_of(request, s)
        body = envs[lang].get_template(template).render(request_path=request.url.path,
                                                        lang_urls={c: "?lang=" + c for c in i18n.LANGUAGES}, **context)
        return HTMLResponse(body, status_code=status_code)

    if not any(getattr(r, "path", None) == "/briefing" for r in app.routes):  # until app.py wires it
        briefing_page.register(app, engine, s, render)

    @app.get("/test-panel")
    def panel(request: Request):
        return render(request, "_briefing_panel.html", {"briefing_panel": briefing_page.panel_context(request, engine, s)})

    return TestClient(app)


def test_briefing_page_citations_jump_to_cards(engine, stored):
    client = _client(engine, settings())
    assert client.get("/briefing?date=2024-11-28&lang=en").text.count('<article class="card"') == 0  # GET writes none
    written = client.post("/briefing?date=2024-11-28&lang=en", follow_redirects=False)
    assert written.status_code == 303 and written.headers["location"] == "/briefing?date=2024-11-28&lang=en"
    page = client.get("/briefing?date=2024-11-28&lang=en")
    assert page.status_code == 200
    html = page.text
    card_ids = set(re.findall(r'<article class="card" id="paper-(\d+)"', html))
    assert card_ids == {str(i) for i in stored}
    cites = re.findall(r'<a class="cite" href="#paper-(\d+)">\[(\d+)\]</a>', html)
    assert cites and all(pid in card_ids and int(pid) == stored[int(n) - 1] for pid, n in cites)
    assert "Extractive briefing" in html and "Cross-domain links" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html
    client.post("/briefing?date=2024-11-28&lang=zh")
    zh = client.get("/briefing?date=2024-11-28&lang=zh").text
    assert "摘录式简报" in zh and "跨领域关联" in zh and "优先阅读" in zh


def test_briefing_api_and_panel(engine, stored):
    client = _client(engine, settings())
    panel = client.get("/test-panel?lang=en").text
    assert "No briefing of this day yet." in panel and 'href="/briefing?date=2024-11-28"' in panel
    assert client.get("/api/briefing?date=2024-11-28&lang=en").status_code == 404  # reading writes none
    first = client.post("/api/briefing?date=2024-11-28&lang=en")
    assert first.status_code == 200
    data = first.json()
    assert data["kind"] == "extractive" and data["lang"] == "en" and len(data["papers"]) == 40
    assert client.get("/api/briefing?date=2024-11-28&lang=en").json()["id"] == data["id"]
    assert client.get("/api/briefing?lang=en").json()["id"] == data["id"]  # default: the latest day
    panel = client.get("/test-panel?lang=en").text
    assert data["briefing"]["headline"]["text"].split(":")[0] in panel and "Read the briefing" in panel
    # No cards on this page: each citation goes to the paper's page (a card's anchor when the feed shows it).
    assert re.search(r'class="cite" href="/papers/\d+"', panel) and "#paper-" not in panel
    assert client.get("/api/briefing?date=28-11-2024").status_code == 422
    assert client.get("/api/briefing?lang=fr").status_code == 422
    assert client.get("/api/briefing?radar=nobody").status_code == 404
    week = client.post("/api/briefing?date=2024-11-28&week=true&lang=zh").json()
    assert week["period"] == {"start": "2024-11-22", "end": "2024-11-28"} and week["lang"] == "zh"
