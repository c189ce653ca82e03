"""The web app end to end over the bundled real arXiv day (2024-11-28, 1504 papers) in a real
store (SQLite, or PostgreSQL in the suite's second pass): the feed page and its chips, batches,
search, languages, escaping of untrusted text, the JSON API and bad parameters."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.messages.extract import extract_from_dir
from sqlalchemy import select

from academichub.ingest.pipeline import store_records
from academichub.model import AuthorData, PaperData
from academichub.settings import Settings
from academichub.store.feed import shuffle_key_py
from academichub.store.schema import paper_authors, paper_subjects, papers
from academichub.web import i18n
from academichub.web.app import create_app

with warnings.catch_warnings():  # starlette's note about httpx versions is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DAY = date(2024, 11, 28)
BURKARD = {"2007.03598", "2202.00797", "2210.02982", "2306.03564"}  # Guido Burkard's papers that day


# -- a small HTML reader --------------------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict
    children: list = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [n for n in self.iter() if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)]

    def find(self, tag: str | None = None, cls: str | None = None) -> Node | None:
        found = self.find_all(tag, cls)
        return found[0] if found else None


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    return builder.root


@dataclass
class Card:
    id: int
    number: str
    source: str
    title: str
    authors: list[str]
    author_links: dict[str, str]
    source_link: str | None
    date_link: str | None


def cards(html: str) -> list[Card]:
    found = []
    for art in parse(html).find_all("article", "card"):
        source = art.find(cls="source")
        date_link = art.find("a", "card-date")
        authors = art.find_all("a", "author")
        found.append(
            Card(
                id=int(art.attrs["id"].removeprefix("paper-")),
                number=art.find(cls="card-no").text(),
                source=source.text() if source else "",
                title=art.find(cls="card-title").text(),
                authors=[a.text() for a in authors],
                author_links={a.text(): a.attrs["href"] for a in authors},
                source_link=source.attrs.get("href") if source else None,
                date_link=date_link.attrs["href"] if date_link else None,
            )
        )
    return found


def chips(html: str) -> list[str]:
    return [c.text() for c in parse(html).find_all("a", "chip")]


def chip_links(html: str) -> dict[str, str]:
    return {c.text(): c.attrs["href"] for c in parse(html).find_all("a", "chip")}


def next_batch_link(html: str) -> str:
    links = [a for a in parse(html).find_all("a", "btn-batch") if a.attrs.get("rel") == "next"]
    assert links, "no 'another batch' link"
    assert len({a.attrs["href"] for a in links}) == 1
    return links[0].attrs["href"]


def page_text(html: str) -> str:
    return parse(html).text()


# -- fixtures -------------------------------------------------------------------------------------


def make_settings(**overrides) -> Settings:
    values = {"load_sample": False, "default_language": "zh", "batch_size": 10}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client(sample_engine):
    with TestClient(create_app(make_settings(), engine=sample_engine)) as c:
        yield c


def db_ids(engine, stmt) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(stmt).scalars())


def arxiv_to_id(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(papers.c.arxiv_id, papers.c.id)).all())


def primary_of(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(papers.c.id, papers.c.primary_category)).all())


# -- the feed page --------------------------------------------------------------------------------


def test_feed_page_shows_numbered_cards_in_the_seeded_order(client, sample_engine):
    html = client.get("/", params={"seed": 12345}).text
    shown = cards(html)
    assert [c.number for c in shown] == [f"{i:02d}." for i in range(1, 11)]
    # one announcement day, so the order is exactly the seeded shuffle of all 1504 ids
    primary = primary_of(sample_engine)
    expected = sorted(primary, key=lambda pid: (shuffle_key_py(pid, 12345), pid))[:10]
    assert [c.id for c in shown] == expected
    for card in shown:
        assert card.source == f"arXiv ({primary[card.id].upper()})"
        assert card.authors
    # the same batch through the API, and a known paper's label
    api = client.get("/api/papers", params={"seed": 12345}).json()
    assert [item["id"] for item in api["items"]] == expected
    html = client.get("/", params={"q": "Diophantine approximation simultaneous"}).text
    (card,) = cards(html)
    assert card.source == "arXiv (MATH.NT)"
    assert card.title.startswith("Exact Diophantine approximation")
    assert card.authors == ["Bo Tan", "Qing-Long Zhou"]


def test_api_counts_the_whole_sample_day(client):
    body = client.get("/api/papers").json()
    assert body["total"] == 1504
    assert (body["batch"], body["size"], body["batches"]) == (0, 10, 151)
    assert len(body["items"]) == 10
    assert 0 <= body["seed"] < 2**31
    assert body["next_batch"].startswith("/api/papers?") and "batch=1" in body["next_batch"]
    item = body["items"][0]
    assert {"id", "arxiv_id", "title", "abstract", "authors", "categories", "primary_category", "announced_on",
            "links", "doi", "journal_ref", "versions"} <= set(item)
    assert item["announced_on"] == "2024-11-28"
    stats = client.get("/api/stats").json()
    assert stats["papers"] == 1504
    assert stats["latest_announcement"] == "2024-11-28"
    assert stats["recent_days"] == [{"date": "2024-11-28", "papers": 1504}]
    assert client.get("/healthz").json()["status"] == "ok"


def test_author_chip_filters_by_exact_author(client, sample_engine):
    body = client.get("/api/papers", params={"author": "Guido Burkard", "size": 50}).json()
    assert body["total"] == 4
    assert {item["arxiv_id"] for item in body["items"]} == BURKARD
    assert db_ids(sample_engine, select(paper_authors.c.paper_id).where(paper_authors.c.name_norm == "guido burkard")) == {
        item["id"] for item in body["items"]
    }

    zh = client.get("/", params={"author": "Guido Burkard"}).text
    assert chips(zh) == ["作者: Guido Burkard ×"]
    assert len(cards(zh)) == 4 and all("Guido Burkard" in c.authors for c in cards(zh))
    en = client.get("/", params={"author": "Guido Burkard", "lang": "en"}).text
    assert chips(en) == ["Author: Guido Burkard ×"]

    # a TeX-accented name in the feed (Przemys{\l}aw) matches written with or without the accent
    for name in ("Przemysław Olbratowski", "Przemyslaw Olbratowski"):
        hit = client.get("/api/papers", params={"author": name}).json()
        assert [i["arxiv_id"] for i in hit["items"]] == ["2411.17709"]


def test_clicking_an_author_adds_the_chip_and_x_removes_it(client):
    client.cookies.set("lang", "en")
    first = cards(client.get("/", params={"seed": 99}).text)[0]
    name = first.authors[0]
    html = client.get(first.author_links[name]).text
    assert chips(html) == [f"Author: {name} ×"]
    assert all(name in c.authors for c in cards(html))
    theirs = client.get("/api/papers", params={"author": name, "size": 100}).json()["items"]
    assert first.id in {item["id"] for item in theirs}
    # x removes it: back to the whole day, same shuffle
    removed = client.get(chip_links(html)[f"Author: {name} ×"]).text
    assert chips(removed) == []
    assert client.get("/api/papers" + "?" + urlsplit(chip_links(html)[f"Author: {name} ×"]).query).json()["total"] == 1504


def test_category_and_date_chips_combine_with_and(client, sample_engine):
    cr = db_ids(sample_engine, select(paper_subjects.c.paper_id).where(paper_subjects.c.code == "cs.CR"))
    assert len(cr) == 33
    body = client.get("/api/papers", params={"category": "cs.CR", "size": 100}).json()
    assert {i["id"] for i in body["items"]} == cr and body["total"] == 33
    assert client.get("/api/papers", params={"category": "CS.CR"}).json()["total"] == 33  # as the label shows it

    html = client.get("/", params={"category": "cs.CR"}).text
    assert chips(html) == ["分类: cs.CR ×"]
    html = client.get("/", params={"date": "2024-11-28", "lang": "en"}).text
    assert chips(html) == ["Date: Nov 28, 2024 ×"]
    assert "1504 papers" in page_text(html)
    html = client.get("/", params={"date": "2024-11-28", "lang": "zh"}).text
    assert chips(html) == ["日期: 2024年11月28日 ×"]

    # the source label and the date on a card are links that add their chip
    card = cards(client.get("/", params={"seed": 5}).text)[0]
    by_label = client.get(card.source_link).text
    primary = primary_of(sample_engine)[card.id]
    assert chips(by_label) == [f"分类: {primary} ×"]
    assert client.get(card.date_link).status_code == 200 and chips(client.get(card.date_link).text) == [
        "日期: 2024年11月28日 ×"
    ]

    both = client.get("/", params={"author": "Guido Burkard", "category": "cond-mat.mes-hall"}).text
    assert chips(both) == ["作者: Guido Burkard ×", "分类: cond-mat.mes-hall ×"]
    assert len(cards(both)) == 4  # all four of his papers are in cond-mat.mes-hall
    none = client.get("/", params={"author": "Guido Burkard", "category": "cs.CR"}).text
    assert cards(none) == []
    assert "没有符合这些筛选条件的论文" in page_text(none)
    other_day = client.get("/", params={"date": "2024-11-27", "lang": "en"}).text
    assert cards(other_day) == [] and "No papers match these filters" in page_text(other_day)


def test_another_batch_shows_every_paper_once_then_reshuffles(client, sample_engine):
    cr = db_ids(sample_engine, select(paper_subjects.c.paper_id).where(paper_subjects.c.code == "cs.CR"))
    url = "/?category=cs.CR&size=10&seed=777"
    seen: list[int] = []
    sizes = []
    for _ in range(4):
        html = client.get(url).text
        batch = [c.id for c in cards(html)]
        assert [c.number for c in cards(html)] == [f"{i:02d}." for i in range(1, len(batch) + 1)]
        sizes.append(len(batch))
        seen += batch
        url = next_batch_link(html)
    assert sizes == [10, 10, 10, 3]
    assert len(seen) == len(set(seen)) == 33 and set(seen) == cr
    # after the last batch: batch 0 of a new shuffle, same filters
    query = parse_qs(urlsplit(url).query)
    assert query.get("category") == ["cs.CR"] and "batch" not in query and query["seed"] != ["777"]
    again = [c.id for c in cards(client.get(url).text)]
    assert len(again) == 10 and set(again) <= cr

    # the JSON API walks the same way
    api_seen: list[int] = []
    url = "/api/papers?category=cs.CR&size=10&seed=777"
    for _ in range(4):
        body = client.get(url).json()
        api_seen += [i["id"] for i in body["items"]]
        url = body["next_batch"]
    assert api_seen == seen
    assert "seed=777" not in url and "batch=" not in url

    # without a seed the page picks one and its links keep it
    html = client.get("/?category=cs.CR").text
    assert "seed=" in next_batch_link(html) and "batch=1" in next_batch_link(html)


def test_search_finds_titles_and_survives_hostile_input(client, sample_engine):
    ids = arxiv_to_id(sample_engine)
    hit = client.get("/api/papers", params={"q": "Diophantine", "size": 50}).json()
    assert ids["2411.18439"] in {i["id"] for i in hit["items"]}
    phrase = client.get("/api/papers", params={"q": '"existence of designs"', "size": 50}).json()
    assert {ids["1401.3665"], ids["2411.18291"]} <= {i["id"] for i in phrase["items"]}
    html = client.get("/", params={"q": "Diophantine", "lang": "en"}).text
    assert "Search: Diophantine ×" in chips(html)
    assert any(c.id == ids["2411.18439"] for c in cards(html))

    hostile = [
        '"foo* OR (', '"', "(", ")", "*", "OR", "AND", "NOT", "a OR", "OR b", "NEAR(a b)", "title:quantum",
        "^quantum", "-", "--", "-quantum", "quantum -spin", "a' OR 1=1 --", "\\", "{x}", "🙂", "量子 计算",
        '"unterminated phrase', "quantum*", "*quantum", "a:b:c", "%_%",
    ]
    for q in hostile:
        r = client.get("/", params={"q": q})
        assert r.status_code == 200, q
        r = client.get("/api/papers", params={"q": q})
        assert r.status_code == 200, q
    assert client.get("/api/papers", params={"author": "(", "category": '"'}).status_code == 200
    assert client.get("/", params={"author": "(", "category": '"'}).status_code == 200
    for params in ({"q": "\x00"}, {"author": "\x00"}, {"category": "cs.\x00LG"}):  # one rule for NUL: refused
        assert client.get("/api/papers", params=params).status_code == 422
        assert client.get("/", params=params).status_code == 422
    narrowed = client.get("/api/papers", params={"q": "quantum -spin"}).json()["total"]
    broad = client.get("/api/papers", params={"q": "quantum"}).json()["total"]
    assert 0 < narrowed < broad


def test_untrusted_markup_in_titles_and_abstracts_is_escaped(client, sample_engine):
    # A synthetic record (not from arXiv), made up to carry markup and a javascript: URL.
    summary = store_records(
        sample_engine,
        [
            PaperData(
                source="synthetic-test",
                source_id="xss-1",
                title="<script>alert('title')</script> Zyxwv escaping probe",
                abstract='<img src=x onerror="alert(1)"> & <b>bold</b> </textarea><script>alert(2)</script>',
                authors=[AuthorData(name="<i>Mallory</i> O'Hara")],
                arxiv_id="2411.99999",
                arxiv_version=1,
                categories=["cs.CR"],
                url_abs="javascript:alert(3)",
                url_pdf=" JaVaScRiPt:alert(4)",
                announced=DAY,
            )
        ],
    )
    assert summary.added == 1
    for url in ("/?q=Zyxwv", "/papers/2411.99999", "/?author=%3Ci%3EMallory%3C/i%3E%20O'Hara"):
        r = client.get(url)
        assert r.status_code == 200, url
        html = r.text
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold" not in html
        assert "<i>Mallory" not in html
        assert "javascript:" not in html.lower()
        assert "&lt;script&gt;alert(" in html
        assert "script-src 'self'" in r.headers["content-security-policy"]
    html = client.get("/?q=Zyxwv").text
    (card,) = cards(html)
    assert card.title == "<script>alert('title')</script> Zyxwv escaping probe"  # shown as text
    assert card.authors == ["<i>Mallory</i> O'Hara"]
    item = client.get("/api/papers/2411.99999").json()
    assert item["links"]["abs"] == "https://arxiv.org/abs/2411.99999"  # the javascript: URL was dropped
    assert item["links"]["pdf"] == "https://arxiv.org/pdf/2411.99999"


def test_language_from_query_cookie_header_and_settings(client, sample_engine):
    zh = client.get("/")
    assert '<html lang="zh-CN">' in zh.text and "换一批" in zh.text
    assert "探索全球前沿学术脉络" in zh.text and "汇聚顶级期刊与预印本平台的实时文献，由大模型撰写跨领域简报，定制您的专属科研雷达" in zh.text
    assert "lang" not in zh.cookies

    en = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in en.text and "Another batch" in en.text
    assert "Explore the frontier of global research" in en.text
    assert "Real-time literature from top journals and preprint servers, with cross-domain briefings written by large language models — your own research radar" in en.text
    assert "Accept-Language" in en.headers["vary"]
    prefers_zh = client.get("/", headers={"Accept-Language": "fr;q=1, zh-CN;q=0.8, en;q=0.5"})
    assert "换一批" in prefers_zh.text

    switched = client.get("/", params={"lang": "en"}, headers={"Accept-Language": "zh-CN"})
    assert "Another batch" in switched.text
    assert switched.cookies.get("lang") == "en"
    # the cookie sticks, over Accept-Language
    assert "Back to the feed" in client.get("/papers/2411.18439", headers={"Accept-Language": "zh-CN"}).text
    assert "Another batch" in client.get("/", headers={"Accept-Language": "zh-CN"}).text
    back = client.get("/", params={"lang": "zh"})
    assert "换一批" in back.text and client.get("/").text.count("换一批") >= 1

    # the switch links keep the other parameters
    nav = parse(client.get("/", params={"author": "Guido Burkard"}).text).find("nav", "lang-switch")
    (english,) = [a for a in nav.find_all("a") if a.text() == "English"]
    assert parse_qs(urlsplit(english.attrs["href"]).query) == {"author": ["Guido Burkard"], "lang": ["en"]}

    with TestClient(create_app(make_settings(default_language="en"), engine=sample_engine)) as other:
        assert "Another batch" in other.get("/").text
        assert "换一批" in other.get("/", headers={"Accept-Language": "zh"}).text
    assert client.get("/", params={"lang": "fr"}).status_code == 422


def test_bad_parameters_are_4xx_never_500(client):
    for url in (
        "/?date=2024-13-45", "/?date=yesterday", "/?date=2024-02-30", "/?date=20241128",
        "/?batch=-1", "/?batch=abc", "/?seed=-5", "/?seed=99999999999", "/?size=0", "/?size=1000",
        "/?batch=99999999999999",
    ):
        r = client.get(url)
        assert r.status_code in (400, 422), url
        assert r.headers["content-type"].startswith("text/html")
    html = client.get("/?date=2024-13-45&lang=en").text
    assert "Invalid request" in html and "date" in page_text(html)
    for url in ("/api/papers?date=2024-13-45", "/api/papers?batch=-1", "/api/papers?seed=x", "/api/papers?size=0"):
        r = client.get(url)
        assert r.status_code == 422, url
        assert r.json()["detail"][0]["loc"][0] == "query"
    assert client.get("/api/papers?author=" + "x" * 500).status_code == 422
    assert client.get("/api/papers?" + "&".join(["category=cs.LG"] * 21)).status_code == 422
    assert client.get("/papers/999999").status_code == 404
    assert client.get("/papers/not-a-paper").status_code == 404
    assert client.get("/api/papers/999999").status_code == 404
    assert client.get("/api/papers/999999").json() == {"detail": "paper not found"}
    past = client.get("/?batch=500&seed=1&lang=en")
    assert past.status_code == 200 and cards(past.text) == [] and "Past the last batch" in past.text


def test_paper_page_and_api_item(client, sample_engine):
    ids = arxiv_to_id(sample_engine)
    html = client.get(f"/papers/{ids['2411.17758']}", params={"lang": "en"}).text
    assert "PP-LEM: Efficient and Privacy-Preserving Clearance Mechanism for Local Energy Markets" in html
    assert 'href="https://doi.org/10.1016/j.segan.2024.101477"' in html
    assert 'href="https://arxiv.org/pdf/2411.17758v1"' in html
    assert "arXiv (CS.GT)" in page_text(html)
    assert client.get("/papers/2411.17758v1").status_code == 200
    item = client.get("/api/papers/2411.17758").json()
    assert item["id"] == ids["2411.17758"]
    assert item["doi"] == "10.1016/j.segan.2024.101477"
    assert item["links"]["doi"] == "https://doi.org/10.1016/j.segan.2024.101477"
    assert [a["name"] for a in item["authors"]] == ["Kamil Erdayandi", "Mustafa Asan Mustafa"]
    assert item["journal_ref"].startswith("Sustainable Energy, Grids and Networks")
    # a card shows the DOI link too
    card_html = client.get("/", params={"q": "PP-LEM Local Energy Markets"}).text
    assert 'href="https://doi.org/10.1016/j.segan.2024.101477"' in card_html


def test_empty_store_explains_itself(engine):
    with TestClient(create_app(make_settings(), engine=engine)) as c:
        html = c.get("/", params={"lang": "en"}).text
        assert cards(html) == []
        assert "The store is empty" in html
        assert "文献库还是空的" in c.get("/", params={"lang": "zh"}).text
        assert c.get("/api/papers").json()["total"] == 0
        assert c.get("/api/stats").json()["latest_announcement"] is None


def test_startup_loads_the_sample_when_asked(engine):
    with TestClient(create_app(make_settings(load_sample=True), engine=engine)) as c:
        assert c.get("/api/stats").json()["papers"] == 1504


def test_docs_openapi_static_and_security_headers(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = client.get("/openapi.json").json()
    assert {"/api/papers", "/api/papers/{key}", "/api/stats", "/healthz"} <= set(spec["paths"])
    names = {p["name"] for p in spec["paths"]["/api/papers"]["get"]["parameters"]}
    assert {"author", "category", "date", "q", "batch", "seed", "size"} <= names
    css = client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/app.js").status_code == 200
    page = client.get("/")
    for header in ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy"):
        assert header in page.headers
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    # no inline script or style, and nothing loaded from elsewhere: the page works offline
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert " style=" not in page.text
    # an external stylesheet or script ends in .css/.js; a DOI link such as 10.1016/j.jsv... is fine
    external_asset = re.compile(r'(src|href)="(https?:)?//[^"]*\.(css|js)(\?[^"]*)?"')
    assert external_asset.search('<link href="https://cdn.example/x.css">')
    assert not external_asset.search('<a href="https://doi.org/10.1016/j.jsv.2020.1">')
    assert not external_asset.search(page.text)


def test_catalogs_translate_every_template_message():
    wanted = {
        msg if isinstance(msg, str) else msg[0]
        for _, _, msg, _, _ in extract_from_dir(
            str(i18n.LOCALE_DIR.parent / "templates"),
            method_map=[("**.html", "jinja2")],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}},
        )
    }
    assert len(wanted) > 40
    for lang in i18n.LANGUAGES:
        catalog = i18n.read_catalog(lang)
        translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string and not m.fuzzy}
        assert wanted <= translated, (lang, sorted(wanted - translated))
    zh = i18n.load_translations("zh")
    assert zh.gettext("Another batch") == "换一批"
    assert zh.gettext("Author:") == "作者:"


def test_language_negotiation_rules():
    assert i18n.parse_accept_language("en-US,en;q=0.9,zh-CN;q=0.8") == ["en", "zh"]
    assert i18n.parse_accept_language("zh-TW;q=0.2, en;q=0.1, de") == ["zh", "en"]
    assert i18n.parse_accept_language("en;q=0, zh") == ["zh"]
    assert i18n.parse_accept_language("garbage;;q=x,,") == []
    assert i18n.negotiate(query="EN", cookie="zh", accept_language="zh", default="zh") == "en"
    assert i18n.negotiate(query="xx", cookie="zh", accept_language="en", default="en") == "zh"
    assert i18n.negotiate(query=None, cookie=None, accept_language="de", default="en") == "en"
    assert i18n.negotiate(query=None, cookie=None, accept_language=None, default="fr") == "zh"


def test_sources_page_follows_a_journal_in_one_click(engine):
    from fastapi.testclient import TestClient

    from academichub.settings import load_settings
    from academichub.web.app import create_app

    client = TestClient(create_app(load_settings(load_sample=False), engine=engine))
    page = client.get("/sources?lang=en")
    assert page.status_code == 200
    assert "Nature Methods" in page.text and "Follow" in page.text
    refused = client.post("/sources/follow", data={"venue": "nature"}, headers={"origin": "https://evil.example"})
    assert refused.status_code == 403
    followed = client.post("/sources/follow", data={"venue": "nature"}, follow_redirects=False)
    assert followed.status_code == 303
    names = {s["name"] for s in client.get("/api/sources").json()}
    assert {"crossref:nature", "feed:nature"} <= names
    assert "Following" in client.get("/sources?lang=en").text
    assert client.post("/api/sources/follow/no-such-journal").status_code == 404
    assert "关注" in client.get("/sources?lang=zh").text


def test_feed_shows_the_stored_briefing_panel(engine):
    from datetime import date as _date

    from fastapi.testclient import TestClient

    from academichub.brief.briefing import make_briefing
    from academichub.brief.inputs import period_papers
    from academichub.ingest.pipeline import load_sample_if_empty
    from academichub.settings import load_settings
    from academichub.web.app import create_app

    load_sample_if_empty(engine)
    settings = load_settings(load_sample=False)
    day = _date(2024, 11, 28)
    with engine.connect() as conn:
        ids = period_papers(conn, day, day, 40)
    client = TestClient(create_app(settings, engine=engine))
    assert "briefing-panel-headline" not in client.get("/?lang=en").text  # nothing stored yet
    make_briefing(engine, radar_id=None, paper_ids=ids, period=(day, day), lang="en", settings=settings)
    page = client.get("/?lang=en")
    assert page.status_code == 200
    assert 'class="panel briefing-panel"' in page.text
    assert "Briefing of" in page.text and "briefing-panel-headline" in page.text


# -- API robustness (issue 16): each found by tests/test_api_fuzz.py or named in the issue ------------


def test_digits_that_are_not_ascii_are_not_ids(client, sample_engine):
    """'²'.isdigit() is True and int('²') raises: every id route answered 500."""
    from academichub.store.radars import create_radar, default_user

    with sample_engine.begin() as conn:
        create_radar(conn, user_id=default_user(conn), name="spin qubits")
    for url in ("/api/papers/%C2%B2", "/api/papers/%D9%A1%D9%A2", "/papers/%C2%B2", "/api/radars/%C2%B2",
                "/api/radars/%C2%B2/rank", "/api/papers?radar=%C2%B2", "/?radar=%C2%B2", "/api/briefing?radar=%C2%B2",
                "/radars/%C2%B2",
                # beyond PostgreSQL's INTEGER: "integer out of range" (500 on PostgreSQL only)
                "/api/papers/2147483648", "/api/radars/" + "9" * 18, "/api/radars/2147483648/rank", "/papers/" + "9" * 19):
        assert client.get(url).status_code == 404, url
    for form in ("feedback", "seeds/remove"):
        refused = client.post(f"/radars/spin%20qubits/{form}", data={"paper": 2**31, "action": "like"})
        assert refused.status_code == 422, form
    assert client.get("/radars/spin%20qubits?done=seeded&added=%C2%B2&papers=%C2%B2").status_code == 200  # flash counts
    unknown = client.post("/api/radars/spin%20qubits/feedback", json={"paper": "²", "action": "like"})
    assert unknown.status_code == 404 and unknown.json() == {"detail": "no paper '²' in the store"}
    from academichub.store.state import row_id

    assert [row_id(t) for t in ("42", " 7 ", "²", "١٢", "4²", "2147483647", "2147483648", "")] == [
        42, 7, None, None, None, 2**31 - 1, None, None]


def test_api_date_times_carry_a_time_zone(client, sample_engine):
    """The store keeps naive UTC; the API said "2024-11-27T18:59:59" under a date-time schema."""
    from datetime import datetime

    from academichub.store.sources import add_source, record_failure

    updated = [item for item in client.get("/api/papers", params={"size": 100}).json()["items"] if item["updated_at"]]
    assert updated and all(item["updated_at"].endswith("Z") for item in updated)
    paper = client.get(f"/api/papers/{updated[0]['id']}").json()
    assert datetime.fromisoformat(paper["updated_at"]).utcoffset().total_seconds() == 0
    with sample_engine.begin() as conn:
        source = add_source(conn, name="feed:x", kind="feed", params={"url": "https://example.org/x"}, label=None,
                            now=datetime(2024, 11, 28, 6, 0))
        record_failure(conn, source, error="HTTP 503", now=datetime(2024, 11, 28, 7, 30))
    (row,) = client.get("/api/sources").json()
    assert (row["created_at"], row["last_error_at"], row["failing_since"]) == (
        "2024-11-28T06:00:00Z", "2024-11-28T07:30:00Z", "2024-11-28T07:30:00Z")
    briefing = client.post("/api/briefing", params={"date": "2024-11-28", "lang": "en"}).json()
    assert datetime.fromisoformat(briefing["created_at"]).utcoffset().total_seconds() == 0


def test_api_errors_have_the_published_shape(client, sample_engine):
    """A 422 is FastAPI's HTTPValidationError everywhere (`since` and `action` answered a bare string)."""
    from academichub.store.radars import create_radar, default_user

    with sample_engine.begin() as conn:
        create_radar(conn, user_id=default_user(conn), name="spin qubits")
    since = client.get("/api/radars/spin%20qubits/rank", params={"since": "yesterday"})
    assert since.status_code == 422
    assert since.json()["detail"] == [{"loc": ["query", "since"], "msg": "since must be YYYY-MM-DD", "type": "value_error"}]
    action = client.post("/api/radars/spin%20qubits/feedback", json={"paper": "2411.17758", "action": "love"})
    assert action.status_code == 422 and action.json()["detail"][0]["loc"] == ["body", "action"]
    not_json = client.post("/api/radars/spin%20qubits/feedback", content=b"\xff\x00{", headers={"content-type": "application/json"})
    spec = client.get("/openapi.json").json()["paths"]
    assert not_json.status_code in (400, 422) and str(not_json.status_code) in spec["/api/radars/{name}/feedback"]["post"]["responses"]
    assert "404" in spec["/api/papers"]["get"]["responses"] and "404" in spec["/api/briefing"]["get"]["responses"]
    assert {"400", "404"} <= set(spec["/api/sources/follow/{venue}"]["post"]["responses"])


def test_published_parameter_limits_are_the_enforced_ones(client):
    """A request valid by the schema is accepted: the limits feed_query() and the briefing check
    are in the schema (21 categories, a 201-character author, lang 'fr' were valid there)."""
    import re as _re

    spec = client.get("/openapi.json").json()["paths"]
    feed = {p["name"]: p["schema"] for p in spec["/api/papers"]["get"]["parameters"]}
    assert feed["category"]["maxItems"] == 20 and feed["category"]["items"]["maxLength"] == 64
    assert feed["author"]["items"]["maxLength"] == 200 and feed["date"]["items"]["format"] == "date"
    assert client.get("/api/papers", params={"category": ["cs.LG"] * 20}).status_code == 200
    assert client.get("/api/papers", params={"category": ["cs.LG"] * 21}).status_code == 422
    assert client.get("/api/papers", params={"author": "x" * 200}).status_code == 200
    assert client.get("/api/papers", params={"author": "x" * 201}).status_code == 422
    lang = {p["name"]: p["schema"] for p in spec["/api/briefing"]["get"]["parameters"]}["lang"]
    for tag in ("zh", "EN", "zh-CN", "en_US", "zh-Hans", " en ", "fr", "e", "zhx", "en-", "", "中文"):
        assert bool(_re.fullmatch(lang["pattern"].strip("^$"), tag)) == (i18n.normalize_language(tag) is not None), tag


@pytest.mark.parametrize("week", [False, True])
def test_briefing_of_the_first_days_of_the_calendar(client, week):
    """The period before 0001-01-01 overflowed date arithmetic: 500."""
    response = client.post("/api/briefing", params={"date": "0001-01-01", "week": week, "lang": "en"})
    assert response.status_code == 200
    assert response.json()["period"]["start"] == "0001-01-01" and response.json()["papers"] == []
    assert client.get("/briefing", params={"date": "0001-01-03", "week": week, "lang": "en"}).status_code == 200


def test_nul_characters_are_refused_before_the_database(client, sample_engine):
    """PostgreSQL text cannot hold NUL: `/api/briefing?radar=%00` (found by the long fuzz run) and
    every other route passing a NUL to a query answered 500 there."""
    from academichub.store.radars import create_radar, default_user

    with sample_engine.begin() as conn:
        create_radar(conn, user_id=default_user(conn), name="spin qubits")
    for url in ("/api/briefing?radar=%00", "/api/papers/2411.17758%00", "/api/papers?author=a%00b", "/api/papers?q=%00",
                "/api/radars/spin%00", "/api/radars/spin%20qubits/rank?since=%00", "/?radar=%00", "/papers/%00",
                "/radars/x%00y"):
        response = client.get(url)
        assert response.status_code == 422, url
    api = client.get("/api/papers?category=cs.LG&category=x%00")
    assert api.json()["detail"] == [{"loc": ["query", "category"], "msg": "a NUL character is not allowed", "type": "value_error"}]
    assert client.post("/api/sources/follow/Nat%00ure").status_code == 422
    body = client.post("/api/radars/spin%20qubits/feedback", json={"paper": "2411.17758\u0000", "action": "like"})
    assert body.status_code == 422 and body.json()["detail"][0]["loc"][:2] == ["body", "paper"]
    form = client.post("/radars", data={"name": "nul\x00radar", "interest": ""})
    assert form.status_code == 422 and "text/html" in form.headers["content-type"]
    assert client.get("/api/radars").json()[0]["name"] == "spin qubits" and len(client.get("/api/radars").json()) == 1
    assert client.post("/api/briefing", params={"radar": "spin qubits", "date": "2024-11-28"}).status_code == 200
    spec = client.get("/openapi.json").json()  # the rule is published: a request valid by the schema is accepted
    author = {p["name"]: p["schema"] for p in spec["paths"]["/api/papers"]["get"]["parameters"]}["author"]
    assert re.fullmatch(author["items"]["pattern"], "Jason R. Petta") and not re.fullmatch(author["items"]["pattern"], "a\x00")
    assert spec["components"]["schemas"]["FeedbackIn"]["properties"]["action"]["pattern"] == author["items"]["pattern"]
