"""The server side of issue 20's layout work, without a browser (tests/test_browser_reading.py
drives Chromium): URLs in abstracts as links, the paper page's citation, back link and feedback,
the header's sections, the folded panels. Over the bundled day in a real store."""

from __future__ import annotations

import warnings
from datetime import date
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.store.radars import create_radar, default_user, get_radar
from academichub.web.app import create_app
from academichub.web.citation import citation
from academichub.web.text_links import linkify
from test_web import parse

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DRIVE = "https://drive.google.com/drive/folders/18B2YbxtV0Pyj5RSFX-ZzCGtFOyorBHil"


@pytest.fixture(scope="module")
def client(module_database_url):
    from academichub.store.database import open_store

    engine = open_store(module_database_url)
    assert load_sample_if_empty(engine).added == 1504
    with engine.begin() as conn:
        create_radar(conn, user_id=default_user(conn), name="spin qubits", interest="spin qubits in quantum dots")
    settings = Settings(load_sample=False, default_language="en", scheduler=False, embed_on_ingest=False)
    with TestClient(create_app(settings, engine=engine)) as c:
        c.engine = engine
        yield c
    engine.dispose()


# -- URLs in abstracts ------------------------------------------------------------------------------


def test_urls_in_text_become_escaped_links_and_the_sentence_keeps_its_punctuation():
    assert str(linkify("Code at https://github.com/a/b. Done")) == (
        'Code at <a href="https://github.com/a/b" rel="noopener nofollow">https://github.com/a/b</a>. Done')
    assert str(linkify("(see https://x.org/a_(b)) and https://e.org/x),")) == (
        '(see <a href="https://x.org/a_(b)" rel="noopener nofollow">https://x.org/a_(b)</a>) and '
        '<a href="https://e.org/x" rel="noopener nofollow">https://e.org/x</a>),')
    # TeX: \href{URL}{text} and escaped underscores
    assert str(linkify(r"\href{https://g.io/a}{code} https://g.io/Cloud\_Map}")) == (
        r'\href{<a href="https://g.io/a" rel="noopener nofollow">https://g.io/a</a>}{code} '
        r'<a href="https://g.io/Cloud_Map" rel="noopener nofollow">https://g.io/Cloud\_Map</a>}')
    # untrusted text stays text; only http(s) links; quotes end a URL
    assert str(linkify('<b>x</b> javascript:alert(1) https://e.com/?a=1&b="2')) == (
        '&lt;b&gt;x&lt;/b&gt; javascript:alert(1) <a href="https://e.com/?a=1&amp;b=" rel="noopener nofollow">'
        'https://e.com/?a=1&amp;b=</a>&#34;2')
    assert str(linkify("http:// nothing here")) == "http:// nothing here"
    assert str(linkify(None)) == ""


def test_an_abstract_url_is_a_link_on_the_card_and_on_the_paper_page(client):
    for url in ("/?author=Prosanta+Gope", "/papers/2411.18027"):
        links = [a for a in parse(client.get(url).text).find_all("a") if a.attrs.get("href") == DRIVE]
        assert len(links) == 1, url
        assert links[0].attrs["rel"] == "noopener nofollow" and links[0].text() == DRIVE


# -- citations --------------------------------------------------------------------------------------


def test_a_preprint_is_cited_as_arxiv(client):
    page = parse(client.get("/papers/2411.18027").text)
    block = page.find("details", "citation")
    assert block.find("pre").text() == " ".join("""@misc{yang2024privacy,
	title = {{Privacy-preserving Robotic-based Multi-factor Authentication Scheme for Secure Automated Delivery System}},
	author = {Yang Yang and Aryan Mohammadi Pasikhani and Prosanta Gope and Biplab Sikdar},
	year = {2024},
	eprint = {2411.18027},
	archivePrefix = {arXiv},
	primaryClass = {cs.CR},
	url = {https://arxiv.org/abs/2411.18027}
}""".split())
    assert block.find("p", "citation-plain").text() == (
        "Yang Yang, Aryan Mohammadi Pasikhani, Prosanta Gope et al. (2024). Privacy-preserving Robotic-based "
        "Multi-factor Authentication Scheme for Secure Automated Delivery System. arXiv:2411.18027. "
        "https://arxiv.org/abs/2411.18027")


def test_a_published_work_is_cited_as_an_article_with_its_doi_and_braces_stay_balanced():
    paper = {
        "id": 7, "title": "Spin {qubits} in } silicon", "authors": [{"name": "Lieven Vandersypen"}, {"name": "Ádám Gyenis"}],
        "published_on": date(2023, 5, 1), "announced_on": None, "arxiv_id": None, "doi": "10.1038/s41586-023-0001-x",
        "venue": "Nature", "source": "Nature", "primary_category": None, "links": {"abs": None},
    }
    cited = citation(paper)
    assert cited.bibtex == """@article{vandersypen2023spin,
	title = {{Spin \\{qubits\\} in \\} silicon}},
	author = {Lieven Vandersypen and Ádám Gyenis},
	journal = {Nature},
	year = {2023},
	doi = {10.1038/s41586-023-0001-x}
}"""
    assert cited.plain == ("Lieven Vandersypen, Ádám Gyenis (2023). Spin {qubits} in } silicon. Nature. "
                           "https://doi.org/10.1038/s41586-023-0001-x")
    # the braces are escaped, not dropped: the title reads back whole (export/formats.py)
    from academichub.ingest.library_import import parse_library

    assert parse_library(cited.bibtex.encode(), "c.bib").papers[0].title == "Spin {qubits} in } silicon"
    assert cited.ris.splitlines() == ["TY  - JOUR", "ID  - vandersypen2023spin", "TI  - Spin {qubits} in } silicon",
                                      "AU  - Vandersypen, Lieven", "AU  - Gyenis, Ádám", "PY  - 2023", "DA  - 2023/05/01",
                                      "JO  - Nature", "DO  - 10.1038/s41586-023-0001-x", "ER  -"]


# -- back links and feedback on the paper page --------------------------------------------------------


def test_the_paper_page_leads_back_where_it_was_reached_from(client):
    page = client.get("/?radar=spin+qubits&category=quant-ph&size=5")
    html = parse(page.text)
    canonical = html.find("section", "feed").attrs["data-canonical"]
    card = html.find("article", "card")
    assert card.attrs["tabindex"] == "-1"
    (details,) = [a for a in card.find_all("a") if a.text() == "Details"]
    href = urlsplit(details.attrs["href"])
    assert href.path == "/papers/" + card.attrs["id"].removeprefix("paper-")
    assert parse_qs(href.query) == {"from": [canonical]}
    # the day's first batch, read and not recorded: its address has no batch number
    assert parse_qs(urlsplit(canonical).query) == {"radar": ["spin qubits"], "category": ["quant-ph"], "size": ["5"]}

    paper = parse(client.get(details.attrs["href"]).text)
    assert paper.find("nav", "crumbs").find("a").attrs["href"] == canonical
    form = paper.find("form", "fb-form")
    assert form.attrs["action"] == "/radars/spin%20qubits/feedback"
    fields = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input")}
    assert fields == {"paper": card.attrs["id"].removeprefix("paper-"), "next": details.attrs["href"]}

    # the plain feed: the same shuffle and batch; off-site or odd `from` values fall back to the feed
    feed = parse(client.get("/?category=quant-ph&seed=7&batch=1").text)
    (details,) = [a for a in feed.find("article", "card").find_all("a") if a.text() == "Details"]
    assert parse_qs(urlsplit(details.attrs["href"]).query) == {"from": ["/?category=quant-ph&batch=1&seed=7"]}
    for bad in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        page = parse(client.get("/papers/2411.18027", params={"from": bad}).text)
        assert page.find("nav", "crumbs").find("a").attrs["href"] == "/"


def test_feedback_from_the_paper_page_returns_to_it_focused(client):
    pid = parse(client.get("/papers/2411.18027").text).find("article", "paper").attrs["id"].removeprefix("paper-")
    picker = parse(client.get("/papers/2411.18027").text).find("form", "radar-pick")
    assert picker.attrs["action"] == "/feedback"
    assert [o.attrs["value"] for o in picker.find_all("option")] == ["spin qubits"]
    done = client.post("/feedback", data={"radar": "spin qubits", "paper": pid, "action": "save",
                                          "next": f"/papers/{pid}"}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/papers/{pid}?noted=save#paper-{pid}"
    with client.engine.connect() as conn:
        assert [(f.paper_id, f.action) for f in get_radar(conn, "spin qubits").feedback] == [(int(pid), "save")]
    assert "Noted: the radar will show more papers like it." in client.get(done.headers["location"]).text
    assert client.post("/feedback", data={"radar": "nope", "paper": pid, "action": "like"},
                       follow_redirects=False).status_code == 404
    assert client.post("/feedback", data={"radar": "spin qubits", "paper": pid, "action": "like"},
                       headers={"origin": "https://evil.example"}, follow_redirects=False).status_code == 403


def test_the_briefing_page_leads_back_to_its_radar(client):
    page = parse(client.get("/briefing", params={"radar": "spin qubits"}).text)
    assert page.find("nav", "crumbs").find("a").attrs["href"] == "/?" + "radar=" + quote("spin qubits").replace("%20", "+")
    assert parse(client.get("/briefing").text).find("nav", "crumbs").find("a").attrs["href"] == "/"


# -- the header and the folded panels ----------------------------------------------------------------


def test_the_header_names_every_section_and_marks_the_current_one(client):
    for path, current in (("/", "/"), ("/radars", "/radars"), ("/radars/spin%20qubits", "/radars"),
                          ("/briefing", "/briefing"), ("/saved", "/saved"), ("/sources", "/sources"),
                          ("/papers/2411.18027", None)):
        nav = parse(client.get(path).text).find("nav", "site-nav")
        links = nav.find_all("a")
        assert [(a.attrs["href"], a.text()) for a in links] == [
            ("/", "Feed"), ("/radars", "Radars"), ("/briefing", "Briefing"), ("/saved", "Saved"), ("/sources", "Sources")]
        assert [a.attrs["href"] for a in links if a.attrs.get("aria-current") == "page"] == ([current] if current else [])
    zh = parse(client.get("/?lang=zh").text).find("nav", "site-nav")
    assert [a.text() for a in zh.find_all("a")] == ["文献流", "雷达", "简报", "收藏", "文献来源"]


def test_the_briefing_and_welcome_panels_are_folded_above_the_cards(client):
    page = parse(client.get("/").text)
    panel = page.find("details", "briefing-panel")
    assert panel is not None and "open" not in panel.attrs and panel.attrs["data-remember"] == "briefing-panel"
    welcome = page.find("details", "welcome")
    assert welcome is not None and "open" not in welcome.attrs
    # a refused first-run form comes back open, with its error
    refused = parse(client.post("/welcome", data={"name": ""}, follow_redirects=False).text)
    assert "open" in refused.find("details", "welcome").attrs
