"""Kept pages (web/page_cache.py): a page rendered for one viewer is never served to another,
and a kept page never outlives a change of the store (a save, a new paper written by another
connection as another process would). Real store (SQLite, and PostgreSQL in its pass), the real
HTTP stack (TestClient over the ASGI app)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
import uuid
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from academichub.app import accounts
from academichub.app.hub import Hub
from academichub.app.saved import save_paper, unsave_paper
from academichub.ingest.pipeline import store_records
from academichub.model import AuthorData, PaperData
from academichub.settings import Settings
from academichub.store.radars import create_radar
from academichub.web.app import create_app
from cli_support import academichub_script, script_env

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


def kept(fetch, cache):
    """`fetch()`, answered from the kept pages: in an unchanged store the very next request is a
    hit, on PostgreSQL too (its data version counts this database's commits only:
    tests/test_data_version.py)."""
    hits = cache.hits
    response = fetch()
    assert cache.hits == hits + 1, "the same request in the same store state was not a kept answer"
    return response


def kept_304(fetch, cache, rendered):
    """`fetch(etag)`, If-None-Match naming the kept page's ETag, answered from the kept pages (a 304)."""
    hits = cache.hits
    response = fetch(rendered.headers["etag"])
    assert cache.hits == hits + 1, "an If-None-Match of the kept page's ETag was not answered from it"
    return response


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
    first = ada.get(url)
    again = kept(lambda: ada.get(url), cache_of(ada))  # ada's second view is her kept page
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
    assert kept(lambda: local.get(url), cache_of(local)).text == before.text
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
    rendered = get(ada_read)
    again = kept(lambda: get(ada_read), cache)
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
    rendered = local.get(url)
    again = kept(lambda: local.get(url), cache_of(local))
    assert again.status_code == 200 and again.headers["etag"] == rendered.headers["etag"]
    unchanged = kept_304(lambda etag: local.get(url, headers={"if-none-match": f"W/{etag}"}), cache_of(local), again)
    assert unchanged.status_code == 304 and unchanged.content == b""
    tag = unchanged.headers["etag"]
    store_records(engine, [paper(2, "Zyxwv kept-page probe")])  # the store changed: the page too
    changed = local.get(url, headers={"if-none-match": tag})
    assert changed.status_code == 200 and "Zyxwv kept-page probe" in changed.text and changed.headers["etag"] != tag


class BusyNeighbour:
    """Another database of the same server (PostgreSQL) or another file (SQLite), written and
    committed by a thread of its own every few milliseconds: a lab's shared server."""

    def __init__(self, database_url: str, folder):
        self.url = make_url(database_url)
        self.folder = folder
        self.commits = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)

    def __enter__(self):
        if self.url.get_backend_name() == "postgresql":
            self.name = f"ah_test_neighbour_{uuid.uuid4().hex[:8]}"
            with self._admin() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.engine = create_engine(self.url.set(database=self.name))
        else:
            self.engine = create_engine(f"sqlite:///{self.folder / 'neighbour.db'}")
        with self.engine.begin() as conn:
            conn.execute(text("CREATE TABLE ticks (n integer)"))
        self.thread.start()
        self.wait_for_commits(3)
        return self

    def _admin(self):
        return create_engine(self.url).execution_options(isolation_level="AUTOCOMMIT").connect()

    def _write(self) -> None:
        while not self.stopping.wait(0.003):
            with self.engine.begin() as conn:
                conn.execute(text("INSERT INTO ticks VALUES (1)"))
            self.commits += 1

    def wait_for_commits(self, more: int) -> None:
        """Until the neighbour has committed `more` times since now (a wait for an event, not a timing)."""
        target = self.commits + more
        for _ in range(10_000):
            if self.commits >= target or not self.thread.is_alive():
                break
            time.sleep(0.001)
        assert self.commits >= target, "the neighbour stopped writing"

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()
        self.engine.dispose()
        if self.url.get_backend_name() == "postgresql":
            with self._admin() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


def test_pages_are_kept_beside_a_busy_database_and_another_process_commit_is_seen_at_once(engine, database_url, tmp_path,
                                                                                         shared_data):
    """The store's data version moves only on this store's commits: another database written every
    few ms (a shared lab server) leaves kept pages kept; a commit by another process (a real
    `academichub ingest`) is on the very next view."""
    store_records(engine, [paper(1, "Spin qubits in silicon")])
    local = client_for(make_hub(engine), LOCAL)
    url = "/?q=AEW10"
    with BusyNeighbour(database_url, tmp_path) as neighbour:
        rendered = local.get(url)
        assert rendered.status_code == 200 and "Concepts in Information Theory" not in rendered.text
        for _ in range(10):
            neighbour.wait_for_commits(2)  # the server moved on (its snapshot too) between two views
            again = kept(lambda: local.get(url), cache_of(local))
            assert again.text == rendered.text
        record = shared_data / "arxiv/api/id_1707.08567_s0_m100_6a1afebfc6a3.xml"
        done = subprocess.run([academichub_script(), "ingest", str(record)], capture_output=True, text=True, timeout=300,
                              env=script_env(ACADEMICHUB_DATABASE_URL=database_url))
        assert done.returncode == 0 and "1 added" in done.stdout, done.stdout + done.stderr
        after = local.get(url)  # the very next request: never the kept page from before the import
        assert "Concepts in Information Theory" in after.text
        neighbour.wait_for_commits(2)
        kept(lambda: local.get(url), cache_of(local))
