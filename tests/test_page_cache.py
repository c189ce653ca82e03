"""Kept pages (web/page_cache.py): a page rendered for one viewer is never served to another,
and a kept page never outlives a change of the store (a save, a new paper written by another
connection as another process would). Real store (SQLite, and PostgreSQL in its pass), the real
HTTP stack (TestClient over the ASGI app)."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from academichub.app import accounts
from academichub.app.hub import Hub
from academichub.app.saved import save_paper, unsave_paper
from academichub.ingest.pipeline import store_records
from academichub.model import AuthorData, PaperData
from academichub.settings import Settings
from academichub.store.radars import create_radar
from academichub.web.app import create_app

pytestmark = pytest.mark.postgres

DAY = date(2024, 11, 28)
REMOTE = ("10.0.0.9", 40000)
LOCAL = ("127.0.0.1", 40000)
PASSWORD = "correct horse battery"
ON_LIST = "On reading list"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 2, 9, 0, 0)

    def __call__(self) -> datetime:
        return self.now


def paper(n: int, title: str) -> PaperData:
    return PaperData(source="synthetic-test", source_id=f"kept-{n}", title=title, abstract=f"Abstract {n} about qubits.",
                     authors=[AuthorData(name=f"Author {n}")], arxiv_id=f"2411.9{n:04d}", arxiv_version=1,
                     categories=["quant-ph"], announced=DAY)


def make_hub(engine, **settings) -> Hub:
    base = dict(load_sample=False, scheduler=False, embed_on_ingest=False, default_language="en")
    return Hub(Settings(**{**base, **settings}), engine=engine, clock=Clock())


def client_for(hub, client) -> TestClient:
    return TestClient(create_app(hub=hub), client=client, follow_redirects=False)


def log_in(client: TestClient, email: str) -> None:
    assert client.post("/login", data={"email": email, "password": PASSWORD, "next": "/"}).status_code == 303


def csrf_of(page: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def cache_of(client: TestClient):
    return client.app.state.page_cache


def _never_kept(cache, tries: int) -> None:
    """No try was a hit. On SQLite that is a failure (its data version moves only on a commit to
    this store). On PostgreSQL it can mean the server's snapshot kept moving: other databases'
    writes (the other test worker's) move it too, and then no two requests are in one state."""
    if cache.current_hub.data_version.dialect == "postgresql":
        pytest.skip(f"the PostgreSQL server's snapshot moved between each of {tries} tries (other databases' writes)")
    pytest.fail(f"the same request in the same store state was never a kept answer in {tries} tries")


def kept(fetch, cache, rendered, tries: int = 20):
    """(the page kept, `fetch()` answered from it), `rendered` being the answer that kept it. On
    PostgreSQL the store's data version is the server's snapshot, which another database's write
    (another test worker's) moves too: a repeat may be rendered again (a feed page with a new
    "Another batch" seed), so the last render is the kept one, and one of a few tries must be a hit."""
    for _ in range(tries):
        hits = cache.hits
        response = fetch()
        if cache.hits == hits + 1:
            return rendered, response
        rendered = response
    _never_kept(cache, tries)


def kept_304(fetch, cache, rendered, tries: int = 20):
    """`fetch(etag)`, If-None-Match naming the kept page's ETag, answered from the kept pages
    (a 304); after a spurious render (above) the next try names the new page's ETag."""
    for _ in range(tries):
        hits = cache.hits
        response = fetch(rendered.headers["etag"])
        if cache.hits == hits + 1:
            return response
        rendered = response
    _never_kept(cache, tries)


def test_a_kept_page_is_never_served_to_another_user(engine):
    store_records(engine, [paper(1, "Spin qubits in silicon"), paper(2, "Trapped ions"), paper(3, "Photonic gates")])
    hub = make_hub(engine, host="0.0.0.0")
    ada_id = accounts.create_user(hub, "ada@lab.example", PASSWORD)
    accounts.create_user(hub, "bob@lab.example", PASSWORD)
    with hub.writing() as conn:
        create_radar(conn, user_id=ada_id, name="Ada's qubits", interest="spin qubits")
    app = create_app(hub=hub)
    ada = TestClient(app, client=REMOTE, follow_redirects=False)
    bob = TestClient(app, client=REMOTE, follow_redirects=False)  # the same app: one process, one cache
    log_in(ada, "ada@lab.example")
    log_in(bob, "bob@lab.example")
    paper_id = int(re.search(r'id="paper-(\d+)"', ada.get("/?seed=5").text).group(1))
    save_paper(hub, ada_id, paper_id)

    url = "/?seed=5"
    first, again = kept(lambda: ada.get(url), cache_of(ada), ada.get(url))  # ada's second view is her kept page
    assert again.text == first.text and ON_LIST in first.text and "ada@lab.example" in first.text

    # bob asks for the very same URL, same store state: his own page, none of ada's state
    theirs = bob.get(url)
    assert theirs.status_code == 200
    assert ON_LIST not in theirs.text and "ada@lab.example" not in theirs.text and "bob@lab.example" in theirs.text
    assert csrf_of(theirs.text) != csrf_of(first.text)
    assert csrf_of(theirs.text) == csrf_of(bob.get("/saved").text)  # bob's own form token, not ada's
    # ada's radar page, kept for her, is "no such radar" for bob
    radar_url = "/?radar=Ada%27s+qubits"
    assert ada.get(radar_url).status_code == 200 and ada.get(radar_url).status_code == 200
    assert bob.get(radar_url).status_code == 404

    # another session of ada's is another viewer (its own CSRF token): not the first session's page
    ada_elsewhere = TestClient(app, client=REMOTE, follow_redirects=False)
    log_in(ada_elsewhere, "ada@lab.example")
    elsewhere = ada_elsewhere.get(url)
    assert ON_LIST in elsewhere.text and csrf_of(elsewhere.text) != csrf_of(first.text)

    # her change is on her next view (the store changed), and still on nobody else's
    unsave_paper(hub, ada_id, paper_id)
    assert ON_LIST not in ada.get(url).text
    assert ON_LIST not in bob.get(url).text


def test_a_kept_page_follows_the_store_and_the_language(engine, database_url):
    store_records(engine, [paper(1, "Spin qubits in silicon")])
    hub = make_hub(engine)
    local = client_for(hub, LOCAL)
    url = "/?date=2024-11-28&seed=9"
    before = local.get(url)
    assert before.status_code == 200 and "Spin qubits in silicon" in before.text
    rendered, again = kept(lambda: local.get(url), cache_of(local), before)
    assert again.text == rendered.text
    # another connection, as `academichub ingest` in another process would, adds a paper
    other = create_engine(database_url)
    try:
        store_records(other, [paper(2, "Zyxwv kept-page probe")])
    finally:
        other.dispose()
    after = local.get(url)
    assert "Zyxwv kept-page probe" in after.text and "Spin qubits in silicon" in after.text
    # the language is part of the key: a Chinese reader of the same URL gets the Chinese page
    local.cookies.set("lang", "zh")
    chinese = local.get(url)
    assert '<html lang="zh-CN">' in chinese.text
    local.cookies.delete("lang")
    assert '<html lang="en">' in local.get(url).text


def test_a_seedless_feed_still_reshuffles(engine):
    store_records(engine, [paper(n, f"Paper number {n}") for n in range(1, 41)])
    hub = make_hub(engine, batch_size=5)
    with client_for(hub, LOCAL) as local:  # one event loop throughout: shuffles are rendered in its background
        seeds = {re.search(r"seed=(\d+)", local.get("/").text).group(1) for _ in range(60)}
    assert len(seeds) > 1  # one of SHUFFLES shuffles per view, not the same one every time


def test_a_kept_ranking_json_is_per_token_and_follows_the_store(engine):
    """The rank API's JSON is kept like a page: per viewer and per bearer token (two tokens of one
    user are two keys), never another user's, and a write makes the next answer fresh."""
    store_records(engine, [paper(1, "Spin qubits in silicon"), paper(2, "Trapped ions"), paper(3, "Photonic gates")])
    hub = make_hub(engine, host="0.0.0.0")
    ada_id = accounts.create_user(hub, "ada@lab.example", PASSWORD)
    bob_id = accounts.create_user(hub, "bob@lab.example", PASSWORD)
    with hub.writing() as conn:
        create_radar(conn, user_id=ada_id, name="mine", interest="spin qubits in silicon")
        create_radar(conn, user_id=bob_id, name="mine", interest="photonic gates")
    _, ada_read = accounts.create_token(hub, ada_id, "reader", "read")
    _, ada_write = accounts.create_token(hub, ada_id, "writer", "write")
    _, bob_read = accounts.create_token(hub, bob_id, "reader", "read")
    api = TestClient(create_app(hub=hub), client=REMOTE, follow_redirects=False)
    url = "/api/radars/mine/rank?limit=3"

    def get(token: str, **headers):
        return api.get(url, headers={"authorization": f"Bearer {token}", **headers})

    ada = get(ada_read)
    assert ada.status_code == 200 and ada.json()[0]["title"] == "Spin qubits in silicon"
    cache = api.app.state.page_cache  # made with the app's middleware, on its first request
    rendered, again = kept(lambda: get(ada_read), cache, get(ada_read))
    assert again.content == rendered.content and again.json() == ada.json()
    renders = cache.renders
    assert get(ada_write).json() == ada.json() and cache.renders == renders + 1  # another token: its own answer
    bob = get(bob_read)
    assert bob.status_code == 200 and bob.json()[0]["title"] == "Photonic gates"  # bob's radar "mine", not ada's
    assert get(ada_read).json()[0]["title"] == "Spin qubits in silicon" and get(bob_read).json() == bob.json()
    assert api.get(url, headers={"authorization": "Bearer not-a-token"}).status_code == 401

    # a kept answer is 304 to the client that holds it (here, on the event loop: a hit)
    tag = ada.headers["etag"]
    unchanged = kept_304(lambda etag: get(ada_read, **{"if-none-match": etag}), cache, ada)
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == tag
    assert get(ada_read, **{"if-none-match": '"other"'}).status_code == 200

    # ada likes her top paper (a write): her next answer is the new ranking, and a 304 no longer
    liked = ada.json()[0]["id"]
    said = api.post("/api/radars/mine/feedback", json={"paper": liked, "action": "like"},
                    headers={"authorization": f"Bearer {ada_write}"})
    assert said.status_code == 200
    after = get(ada_read, **{"if-none-match": tag})
    assert after.status_code == 200 and liked not in [p["id"] for p in after.json()]
    assert get(bob_read).json() == bob.json()  # bob's ranking did not change


def test_a_kept_page_answers_304_to_its_etag(engine):
    store_records(engine, [paper(1, "Spin qubits in silicon")])
    hub = make_hub(engine)
    local = client_for(hub, LOCAL)
    url = "/?date=2024-11-28&seed=9"
    first = local.get(url)
    rendered, again = kept(lambda: local.get(url), cache_of(local), first)
    assert again.status_code == 200 and again.headers["etag"] == rendered.headers["etag"]
    unchanged = kept_304(lambda etag: local.get(url, headers={"if-none-match": f"W/{etag}"}), cache_of(local), again)
    assert unchanged.status_code == 304 and unchanged.content == b""
    tag = unchanged.headers["etag"]
    store_records(engine, [paper(2, "Zyxwv kept-page probe")])  # the store changed: the page too
    changed = local.get(url, headers={"if-none-match": tag})
    assert changed.status_code == 200 and "Zyxwv kept-page probe" in changed.text and changed.headers["etag"] != tag
