"""A radar in a feed reader: the secret Atom feed (and OPML) as a reader fetches them over HTTP,
parsed with feedparser, on the bundled day (TeX in titles) with a Chinese radar, in zh and en.
Reading writes nothing; conditional GETs get 304; rotating the token retires the old URLs."""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ElementTree

import feedparser
import pytest
from sqlalchemy import func, insert, select

from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.store.database import open_store
from academichub.store.radars import add_feedback, add_rule, create_radar, default_user
from academichub.store.schema import briefings, radar_shown, users
from academichub.store.state import utcnow
from academichub.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NAME = "量子 <&> qubits"
TEX_TITLE = ('The exotic structure of the spectral $\\zeta$-function for the Schr\\"odinger operator with '
             'P\\"oschl--Teller potential')
SAME_ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def site(database_url):
    engine = open_store(database_url)
    load_sample_if_empty(engine)
    with engine.begin() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name=NAME, interest="量子计算与自旋量子比特 spin qubits")
        add_rule(conn, radar_id, "keyword", "quantum")
        add_rule(conn, radar_id, "keyword", "Teller potential")  # a title with TeX, quotes and backslashes
    with TestClient(create_app(Settings(load_sample=False, default_language="zh", batch_size=10), engine=engine)) as client:
        yield client, engine, radar_id
    engine.dispose()


def _feed_url(client) -> str:
    page = client.get("/settings/feeds")
    assert page.status_code == 200
    found = re.findall(r'value="(http://testserver/feeds/[^"]+\.atom)"', page.text)
    assert len(found) == 1, page.text
    return found[0].replace("&amp;", "&")


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _expected_ids(client, radar_id: int) -> tuple[str, list[int]]:
    hub = client.app.state.hub
    from academichub.app.briefings import latest_day

    day = latest_day(hub)
    return day.isoformat(), [r.id for r in hub.rank(str(radar_id), since=day)][:10]


def test_the_feed_validates_and_carries_ranking_reasons_and_briefing_in_zh_and_en(site):
    client, engine, radar_id = site
    url = _feed_url(client)
    day, expected = _expected_ids(client, radar_id)
    assert len(expected) == 10
    for lang, briefing_title, why in (("zh", f"{day} 简报：", "推荐理由："), ("en", f"Briefing of {day}: ", "Why:")):
        response = client.get(url, params={"lang": lang})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
        parsed = feedparser.parse(response.content)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert parsed.version == "atom10"
        assert parsed.feed.title == ("AcademicHub 雷达：" if lang == "zh" else "AcademicHub radar: ") + NAME
        assert parsed.feed.subtitle == "量子计算与自旋量子比特 spin qubits"
        assert parsed.feed.language == ("zh-CN" if lang == "zh" else "en")
        head, *papers = parsed.entries
        assert head.title.startswith(briefing_title)
        assert head.id == f"tag:testserver,2026:academichub/radar-{radar_id}/briefing/{day}/{lang}"
        assert "<h1>" in head.content[0].value and f"http://testserver/papers/{expected[0]}" in head.content[0].value
        assert [e.id for e in papers] == [f"tag:testserver,2026:academichub/radar-{radar_id}/paper-{p}" for p in expected]
        hub = client.app.state.hub
        with hub.reading() as conn:
            from academichub.store.feed import get_paper

            stored = {p: get_paper(conn, p) for p in expected}
        for entry, paper_id in zip(papers, expected):
            card = stored[paper_id]
            assert entry.title == card["title"]  # TeX as written, entities decoded back
            assert entry.link == f"http://testserver/papers/{paper_id}"
            html = entry.content[0].value
            assert f'<a href="https://arxiv.org/abs/{card["arxiv_id"]}">arXiv</a>' in html
            if card["doi"]:
                assert f'<a href="{card["links"]["doi"]}">DOI</a>' in html
            assert why in html and f"/?radar={radar_id}#paper-{paper_id}" in html
            assert entry.published.startswith(day)
        assert TEX_TITLE in [e.title for e in papers]
        if lang == "zh":
            assert "关键词“quantum”" in papers[0].content[0].value
    assert _count(engine, radar_shown) == 0  # a feed reader's GET marks nothing shown
    assert _count(engine, briefings) == 0  # and stores no briefing (the extractive one is made per response)


def test_a_stored_briefing_is_the_one_the_feed_shows(site):
    client, engine, radar_id = site
    hub = client.app.state.hub
    day, _expected = _expected_ids(client, radar_id)
    from datetime import date

    stored = hub.write_briefing(str(radar_id), date.fromisoformat(day), lang="en")
    parsed = feedparser.parse(client.get(_feed_url(client), params={"lang": "en"}).content)
    assert parsed.bozo == 0
    assert parsed.entries[0].title == f"Briefing of {day}: {stored.doc.headline.text}"
    assert parsed.entries[0].updated.startswith(stored.created_at.isoformat()[:19])
    assert _count(engine, briefings) == 1


def test_conditional_get_and_stable_ids(site):
    client, engine, radar_id = site
    url = _feed_url(client)
    first = client.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = client.get(url, headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    second = client.get(url)
    assert [e.id for e in feedparser.parse(second.content).entries] == [e.id for e in feedparser.parse(first.content).entries]
    assert second.headers["etag"] == etag
    top = feedparser.parse(first.content).entries[1].id.rsplit("paper-", 1)[1]
    with engine.begin() as conn:  # the reader dismisses the top paper: the feed changes
        add_feedback(conn, radar_id, int(top), "dismiss")
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert f"paper-{top}" not in {e.id.rsplit("/", 1)[1] for e in feedparser.parse(changed.content).entries}
    assert client.get(url, params={"lang": "en"}).headers["etag"] != changed.headers["etag"]


def test_tokens_rotate_and_only_open_their_users_radars(site):
    client, engine, radar_id = site
    url = _feed_url(client)
    token = url.split("/feeds/", 1)[1].split("/", 1)[0]
    assert client.get(url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))).status_code == 404
    with engine.begin() as conn:  # someone else's radar: the token does not open it
        other = conn.execute(insert(users).values(name="other", created_at=utcnow()).returning(users.c.id)).scalar_one()
        theirs = create_radar(conn, user_id=other, name="theirs")
    assert client.get(f"http://testserver/feeds/{token}/{theirs}.atom").status_code == 404
    assert client.get(f"http://testserver/feeds/{token}/999999.atom").status_code == 404
    assert client.post("/settings/feeds/rotate", headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert client.get(url).status_code == 200  # a refused rotation changed nothing
    rotated = client.post("/settings/feeds/rotate", headers=SAME_ORIGIN, follow_redirects=False)
    assert (rotated.status_code, rotated.headers["location"]) == (303, "/settings/feeds?done=rotated")
    assert client.get(url).status_code == 404
    new_url = _feed_url(client)
    assert new_url != url and client.get(new_url).status_code == 200
    assert "旧地址不再有效" in client.get("/settings/feeds?done=rotated").text


def test_opml_lists_every_radar_feed(site):
    client, engine, radar_id = site
    with engine.begin() as conn:
        second = create_radar(conn, user_id=default_user(conn), name="graphs & nets")
    page = client.get("/settings/feeds", params={"lang": "en"}).text
    opml_url = re.search(r'href="(http://testserver/feeds/[^"]+\.opml)"', page).group(1)
    feeds = re.findall(r'value="(http://testserver/feeds/[^"]+\.atom)"', page)
    response = client.get(opml_url)
    assert response.headers["content-type"] == "text/x-opml; charset=utf-8"
    root = ElementTree.fromstring(response.content)
    outlines = [(o.get("text"), o.get("xmlUrl")) for o in root.iter("outline")]
    token = opml_url.rsplit("/", 1)[1].removesuffix(".opml")
    assert outlines == [("graphs & nets", f"http://testserver/feeds/{token}/{second}.atom"),
                        (NAME, f"http://testserver/feeds/{token}/{radar_id}.atom")]
    assert sorted(feeds) == sorted(u for _, u in outlines)
    for _, feed in outlines:
        assert feedparser.parse(client.get(feed).content).bozo == 0
