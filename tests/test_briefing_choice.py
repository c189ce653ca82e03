"""Which papers a briefing reads, and where its links go (issue 20, "a briefing about the right
papers"), on the bundled day (1,504 papers of 2024-11-28) and a week made of two derived days.

- The all-papers briefing reads a sample that covers the day (brief/sample.py), no longer the
  first 40 papers in storage order; the week's reads the week.
- A radar's briefing reads its top-ranked papers, and the radar feed links to it.
- Every citation on /briefing, /briefing?radar=, / and /?radar= resolves: to an element id on
  the same page, or to a /papers/ID that answers 200.
- Theme titles of a Chinese briefing are Chinese where the glossary names the phrase; an English
  part is marked lang="en"."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from datetime import date
from html.parser import HTMLParser

import numpy as np
import pytest
from sqlalchemy import select

from academichub.app.briefings import paper_choice
from academichub.app.hub import Hub
from academichub.brief.inputs import period_papers
from academichub.brief.sample import covering_sample, seats
from academichub.brief.theme_titles import localise_phrase, theme_title, title_parts
from academichub.ingest.pipeline import SAMPLE_FILE, ingest_bytes
from academichub.settings import Settings
from academichub.store.radars import add_rule, create_radar, default_user
from academichub.store.schema import papers
from academichub.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DAY = date(2024, 11, 28)
EVE = date(2024, 11, 27)
RADAR = "spin qubits"


def settings(**overrides) -> Settings:
    values = {"load_sample": False, "default_language": "en", "batch_size": 10}
    values.update(overrides)
    return Settings(**values)


def primary_categories(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(papers.c.id, papers.c.primary_category)).all())


class _Links(HTMLParser):
    """Every element id of a page, and the href of each citation link (a.cite)."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.cites: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, text) of every <a>
        self._a: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a":
            if "cite" in (attrs.get("class") or "").split():
                self.cites.append(attrs.get("href") or "")
            self._a, self._text = attrs.get("href") or "", []

    def handle_data(self, data):
        if self._a is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._a is not None:
            self.links.append((self._a, " ".join("".join(self._text).split())))
            self._a = None


def links_of(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def assert_citations_resolve(client, html: str) -> int:
    """Every a.cite goes to an id on this page or to a paper page that answers 200; how many."""
    page = links_of(html)
    for href in page.cites:
        if href.startswith("#"):
            assert href[1:] in page.ids, href
        else:
            assert re.fullmatch(r"/papers/\d+", href), href
            assert client.get(href).status_code == 200, href
    return len(page.cites)


def make_radar(engine) -> int:
    with engine.begin() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name=RADAR,
                                interest="spin qubits in semiconductor quantum dots")
        add_rule(conn, radar_id, "keyword", "qubit")
    return radar_id


# -- the sample: pure ------------------------------------------------------------------------------


def test_seats_are_proportional_with_one_for_every_cluster():
    assert seats([100, 10, 1], 10) == [7, 2, 1]  # a cluster of one paper still gets its seat
    assert seats([30, 8, 2], 6) == [3, 2, 1]
    assert seats([5, 3, 8], 2) == [1, 0, 1]  # fewer seats than clusters: the biggest
    assert seats([2, 1], 10) == [2, 1]  # never more than a cluster has
    assert sum(seats([400, 300, 200, 90, 9, 1], 40)) == 40


def test_covering_sample_takes_every_cluster_its_most_central_first():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8)
    sizes = [30, 8, 2]
    rows = np.vstack([centres[i] + 0.05 * rng.standard_normal((size, 8)) for i, size in enumerate(sizes)])
    blob = np.repeat(np.arange(3), sizes)
    chosen = covering_sample(rows, 6, per_cluster=2)  # k = 3
    assert Counter(blob[chosen].tolist()) == {0: 3, 1: 2, 2: 1}
    assert [blob[r] for r in chosen] == [0, 0, 0, 1, 1, 2]  # largest cluster first
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    first = unit[:30].mean(axis=0)
    assert chosen[0] == int(np.argmax(unit[:30] @ (first / np.linalg.norm(first))))
    assert covering_sample(rows, 100) == list(range(40))  # no more rows than the limit: all
    assert covering_sample(rows, 0) == []


# -- the day's and the week's briefing -------------------------------------------------------------


def test_the_day_briefing_covers_the_day(sample_engine, monkeypatch):
    from academichub.app import briefings

    hub = Hub(settings(), engine=sample_engine)
    hub.refresh_candidates()  # the job system's warm-up samples the day and the week off the request path

    def not_again(*args, **kwargs):
        raise AssertionError("sampled on the request path")

    monkeypatch.setattr(briefings, "period_sample", not_again)
    ids, previous = paper_choice(hub, None, DAY)
    assert paper_choice(hub, None, DAY, week=True)[0] == ids  # one day in the store: the week is the day
    assert previous == []  # nothing was announced the day before
    categories = primary_categories(sample_engine)
    with sample_engine.connect() as conn:
        storage_order = period_papers(conn, DAY, DAY, 40)
    assert storage_order == list(range(1, 41))  # what the briefing used to read
    assert len(ids) == 40 == len(set(ids)) and sorted(ids) != storage_order
    # The sample: ten clusters of the day, every one represented. Counted on the day's primary
    # categories, it reaches 24 categories of 10 archives; storage order reached 21 of 8, with 14
    # of its 40 papers from eess alone (74 of the day's 1,504).
    chosen = Counter(categories[i] for i in ids)
    archives = Counter(c.split(".")[0] for c in chosen.elements())
    old = Counter(categories[i].split(".")[0] for i in storage_order)
    assert (len(chosen), len(archives)) == (24, 10)
    assert (len({categories[i] for i in storage_order}), len(old), old["eess"]) == (21, 8, 14)
    assert archives["cs"] == 13 and max(archives.values()) == 13  # cs is 583 of 1,504 papers: 39% of the day, 33% here
    assert paper_choice(hub, None, DAY) == (ids, previous)  # the same papers again (cached and deterministic)


def _split_day(engine) -> None:
    """The recorded day as two derived days: its first 700 items announced on 27 November, the
    rest (804) on the 28th (the RSS's dates moved, as tests/test_daily_loop.py derives days)."""
    recorded = SAMPLE_FILE.read_bytes()
    items = re.findall(rb"<item>.*?</item>\s*", recorded, flags=re.S)
    head = recorded[: recorded.index(b"<item>")]
    tail = recorded[recorded.rindex(b"</item>") + len(b"</item>"):]
    eve = (head + b"".join(items[:700]) + tail).replace(b"Thu, 28 Nov 2024", b"Wed, 27 Nov 2024")
    ingest_bytes(engine, eve, "derived-2024-11-27.xml")
    ingest_bytes(engine, head + b"".join(items[700:]) + tail, "derived-2024-11-28.xml")


def test_the_week_briefing_samples_the_week(engine):
    _split_day(engine)
    with engine.connect() as conn:
        assert len(period_papers(conn, EVE, EVE, 10_000)) == 700
        assert len(period_papers(conn, DAY, DAY, 10_000)) == 804
    hub = Hub(settings(), engine=engine)
    day_ids, day_before = paper_choice(hub, None, DAY)
    week_ids, week_before = paper_choice(hub, None, DAY, week=True)
    assert len(day_ids) == len(week_ids) == 40
    with engine.connect() as conn:
        eve_papers = set(period_papers(conn, EVE, EVE, 10_000))
    assert not eve_papers & set(day_ids)
    assert set(day_before) <= eve_papers and len(day_before) == 40  # the day before is the 27th
    from_eve = len(eve_papers & set(week_ids))
    assert week_ids != day_ids and 10 <= from_eve <= 30, from_eve  # both days of the week, about in proportion
    assert week_before == []


# -- pages -----------------------------------------------------------------------------------------


def test_citations_resolve_and_the_radar_feed_links_to_its_own_briefing(sample_engine):
    make_radar(sample_engine)
    with TestClient(create_app(settings(), engine=sample_engine)) as client:
        # The radar's feed before its briefing exists: "Write the briefing" is the radar's.
        page = client.get("/", params={"radar": RADAR, "lang": "en"})
        assert page.status_code == 200
        write = [href for href, text in links_of(page.text).links if text == "Write the briefing"]
        assert write == ["/briefing?date=2024-11-28&radar=spin+qubits"]

        client.post("/briefing", params={"lang": "en"})  # written by a POST; the GET reads it

        everything = client.get("/briefing", params={"lang": "en"})
        assert everything.status_code == 200
        assert '<strong class="briefing-radar">All papers</strong>' in everything.text
        assert 'class="briefing-period">Day Nov 28, 2024<' in everything.text
        assert assert_citations_resolve(client, everything.text) > 20

        client.post(write[0] + "&lang=en")  # the page's "Write the briefing" button
        radar = client.get(write[0] + "&lang=en")
        assert radar.status_code == 200
        assert '<strong class="briefing-radar">spin qubits</strong>' in radar.text
        assert 'class="briefing-period">Day Nov 28, 2024<' in radar.text
        assert "<title>spin qubits · Briefing · AcademicHub</title>" in radar.text
        assert assert_citations_resolve(client, radar.text) > 5
        back = [href for href, text in links_of(radar.text).links if text == "← Back to the feed"]
        assert back == ["/?radar=spin+qubits"]
        client.post("/briefing", params={"radar": RADAR, "week": "1", "lang": "en"})  # written by a POST; the GET reads it
        week = client.get("/briefing", params={"radar": RADAR, "week": "1", "lang": "en"})
        assert 'class="briefing-period">Week Nov 22, 2024 – Nov 28, 2024<' in week.text

        # The radar's briefing reads the radar's best papers: the ranking's top of the day.
        hub = client.app.state.hub
        briefing, radar_id, _day = hub.briefing(RADAR, DAY, lang="en")
        ranked = [int(r.id) for r in hub.rank(RADAR, since=DAY, limit=40)]
        assert briefing.paper_ids == ranked[:len(briefing.paper_ids)] and len(briefing.paper_ids) == 40

        # The radar feed's panel now shows the radar's briefing; each citation goes to a card of
        # this page or to the paper's page.
        feed = client.get("/", params={"radar": RADAR, "lang": "en"})
        read = [href for href, text in links_of(feed.text).links if text == "Read the briefing"]
        assert read == ["/briefing?date=2024-11-28&radar=spin+qubits"]
        assert "Briefing of radar “spin qubits”, Nov 28, 2024" in feed.text
        assert assert_citations_resolve(client, feed.text) > 5
        cites = links_of(feed.text).cites
        assert any(h.startswith("#paper-") for h in cites) and any(h.startswith("/papers/") for h in cites)

        front = client.get("/", params={"lang": "en"})
        assert [href for href, text in links_of(front.text).links if text == "Read the briefing"] == [
            "/briefing?date=2024-11-28"]
        assert assert_citations_resolve(client, front.text) > 5


def test_theme_titles_in_the_page_language(sample_engine):
    assert localise_phrase("graph neural networks", "zh") == "图神经网络"
    assert localise_phrase("Machine Learning", "zh") == "机器学习"  # a category name: the taxonomy's name_zh
    assert localise_phrase("dark matter", "en") == "dark matter"
    assert localise_phrase("spin glass ansatz", "zh") == "spin glass ansatz"  # no glossary term: as written
    assert theme_title(["black holes", "spin glass ansatz"], "zh") == "黑洞 · spin glass ansatz"
    assert title_parts("黑洞 · spin glass ansatz", "zh") == [("黑洞", None), ("spin glass ansatz", "en")]
    assert title_parts("black holes · dark matter", "en") == [("black holes", None), ("dark matter", None)]
    # An LLM theme title that grounding refuses gives way to the analysed theme's, in the briefing's language.
    from academichub.brief.analysis import Analysis, Theme
    from academichub.brief.grounding import _closest_label

    themes = [Theme("black holes, dark matter", ["black holes", "dark matter"], [1, 2], {}, 0.5),
              Theme("spin glass ansatz", ["spin glass ansatz"], [3], {}, 0.5)]
    analysis = Analysis(1, None, [], themes, [], [], [], False, {}, {}, 0.1)
    assert _closest_label(analysis, [1, 2, 3], "zh") == "黑洞 · 暗物质"
    assert _closest_label(analysis, [3], "en") == "spin glass ansatz"
    from academichub.brief.analysis import Change
    from academichub.brief.extractive import _change_sentence

    change = Change("new", "black holes, dark matter", 0, None, 0, 2, 0.0, 0.5, ["black holes", "dark matter"])
    assert _change_sentence(change, analysis, "zh").text == "新主题：黑洞 · 暗物质（2 篇）。"
    assert _change_sentence(change, analysis, "en").text == "New theme: black holes · dark matter (2 papers)."
    with TestClient(create_app(settings(default_language="zh"), engine=sample_engine)) as client:
        client.post("/briefing", params={"lang": "zh"})  # written by a POST; the GET reads it
        page = client.get("/briefing", params={"lang": "zh"})
        assert page.status_code == 200
        assert '<strong class="briefing-radar">全部论文</strong>' in page.text
        titles = re.findall(r"<h3>\d+\. (.*?)</h3>", page.text)
        assert titles
        for title in titles:
            for part in title.split(" · "):
                if re.search(r"[A-Za-z]", re.sub(r"<[^>]+>", "", part)) and not re.search(r"[\u4e00-\u9fff]", part):
                    assert part.startswith('<span lang="en">'), title
        assert any(re.search(r"[\u4e00-\u9fff]", t) for t in titles), titles
        assert '<span class="briefing-period">2024年11月28日 当日</span>' in page.text
        make_radar(sample_engine)
        client.post("/briefing", params={"radar": RADAR, "week": "1", "lang": "zh"})  # written by a POST; the GET reads it
        radar = client.get("/briefing", params={"radar": RADAR, "week": "1", "lang": "zh"})
        assert '<span class="briefing-subject-kind">雷达</span> <strong class="briefing-radar">spin qubits</strong>' in radar.text
        assert '<span class="briefing-period">2024年11月22日 至 2024年11月28日 一周</span>' in radar.text
