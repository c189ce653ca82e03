"""Saved papers to Zotero against a local server that plays the Zotero Web API v3 and checks the
documented request shape: POST /users/<id>/items (or /groups/<id>/items) with `Zotero-API-Key`,
`Zotero-API-Version: 3` and a 32-hex `Zotero-Write-Token`, at most 50 items of a valid item
type with only that type's fields; it answers Zotero's successful/success/unchanged/failed
object, and 412 for a write token used before. A retried push writes nothing twice; the key is
never shown back in full nor logged."""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from academichub.app import saved
from academichub.app.hub import Hub
from academichub.export.zotero import ZoteroError, check_link
from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.store.radars import default_user
from academichub.store.schema import papers, saved_papers
from academichub.web.app import create_app
from localserver import Reply

KEY = "P9xQ2mZ7bV4nL8kT3wR6yH1c"
ORIGIN = {"origin": "http://testserver"}
# Zotero's item schema (api.zotero.org/schema), the fields of the two types we write.
COMMON = {"itemType", "title", "creators", "abstractNote", "date", "DOI", "url", "tags", "extra", "collections",
          "relations", "accessDate", "language", "shortTitle", "rights", "archive", "archiveLocation",
          "libraryCatalog", "callNumber", "citationKey"}
FIELDS = {
    "journalArticle": COMMON | {"publicationTitle", "ISSN", "volume", "issue", "pages", "series", "seriesTitle",
                                "seriesText", "journalAbbreviation"},
    "preprint": COMMON | {"repository", "archiveID", "genre", "place", "series", "seriesNumber"},
}


class FakeZotero:
    """The library's items by key and the write tokens seen; `fail_title` makes items fail."""

    def __init__(self, server, library: str = "/users/12345/items"):
        self.server, self.path = server, library
        self.items: dict[str, dict] = {}
        self.tokens: set[str] = set()
        self.problems: list[str] = []
        self.fail_title: str | None = None
        self.lose_answer_once = False  # write, then answer 503 (the client retries with the same token)
        server.route(library, handler=self.handle)

    def handle(self, raw_path: str, headers: dict) -> Reply:
        h = {k.lower(): v for k, v in headers.items()}
        body = self.server.bodies[-1]
        if h.get("zotero-api-key") != KEY:
            return Reply(403, b"Forbidden")
        if h.get("zotero-api-version") != "3" or "application/json" not in h.get("content-type", ""):
            self.problems.append(f"headers {h}")
        token = h.get("zotero-write-token", "")
        if not re.fullmatch(r"[0-9a-f]{32}", token):
            self.problems.append(f"write token {token!r}")
        if token in self.tokens:
            return Reply(412, b"Write token already used")
        items = json.loads(body)
        if not isinstance(items, list) or not 1 <= len(items) <= 50:
            self.problems.append(f"{len(items)} items in one request")
        success, failed = {}, {}
        for i, item in enumerate(items):
            kind = item.get("itemType")
            extra = set(item) - FIELDS.get(kind, set())
            if kind not in FIELDS or extra or not item.get("title"):
                self.problems.append(f"item {item.get('title')!r}: type {kind}, fields {sorted(extra)}")
            for c in item["creators"]:
                if c.get("creatorType") != "author" or not (c.get("name") or ("firstName" in c and c.get("lastName"))):
                    self.problems.append(f"creator {c}")
            if self.fail_title and self.fail_title in item["title"]:
                failed[str(i)] = {"key": None, "code": 400, "message": "Invalid value for field 'title'"}
                continue
            key = f"K{len(self.items):07d}"
            self.items[key] = item
            success[str(i)] = key
        self.tokens.add(token)
        answer = {"successful": {i: {"key": k, "version": 1, "data": {}} for i, k in success.items()},
                  "success": success, "unchanged": {}, "failed": failed}
        if self.lose_answer_once:
            self.lose_answer_once = False
            return Reply(503, b"Service Unavailable", {"Retry-After": "0"})
        return Reply(200, json.dumps(answer).encode(), {"Content-Type": "application/json",
                                                        "Last-Modified-Version": "2"})


@pytest.fixture
def hub(engine, server):
    assert load_sample_if_empty(engine).added == 1504
    hub = Hub(Settings(load_sample=False, zotero_api_url=server.url(""), http_retries=2), engine=engine)
    yield hub
    hub.close()


def save(hub, n: int) -> tuple[int, list[int]]:
    with hub.writing() as conn:
        user = default_user(conn)
        ids = list(conn.execute(select(papers.c.id).where(papers.c.arxiv_id.is_not(None)).order_by(papers.c.id).limit(n)).scalars())
    for pid in ids:
        saved.save_paper(hub, user, pid)
    return user, ids


def pushed_keys(hub, user) -> dict[int, str | None]:
    with hub.reading() as conn:
        return dict(conn.execute(select(saved_papers.c.paper_id, saved_papers.c.zotero_key)
                                 .where(saved_papers.c.user_id == user, saved_papers.c.zotero_pushed_at.is_not(None))).all())


def test_a_push_sends_50_items_a_request_in_zoteros_shape_and_a_failed_item_goes_next_time(hub, server):
    zotero = FakeZotero(server)
    user, ids = save(hub, 120)
    saved.link_zotero(hub, user, library_type="user", library_id="12345", api_key=KEY)
    with hub.reading() as conn:
        failing = conn.execute(select(papers.c.title).where(papers.c.id == ids[60])).scalar_one()
    zotero.fail_title = failing
    report = saved.push_to_zotero(hub, user)
    assert (report.requests, report.pushed, report.unchanged, report.already) == (3, 119, 0, 0)
    assert report.failed == [(ids[60], "Invalid value for field 'title'")]
    assert zotero.problems == []
    assert [len(json.loads(b)) for b in server.bodies] == [50, 50, 20]
    first = json.loads(server.bodies[0])[0]
    with hub.reading() as conn:
        row = conn.execute(select(papers.c.arxiv_id, papers.c.title).where(papers.c.id == ids[0])).one()
    assert (first["itemType"], first["archiveID"], first["repository"], first["title"]) == (
        "preprint", f"arXiv:{row.arxiv_id}", "arXiv", row.title)
    assert first["url"] == f"https://arxiv.org/abs/{row.arxiv_id}" and first["date"] == "2024-11-28"
    keys = pushed_keys(hub, user)
    assert len(keys) == 119 and ids[60] not in keys and sorted(keys.values()) == sorted(zotero.items)

    zotero.fail_title = None
    again = saved.push_to_zotero(hub, user)  # only the one that failed
    assert (again.requests, again.pushed, again.failed) == (1, 1, [])
    assert len(zotero.items) == 120 and len(pushed_keys(hub, user)) == 120
    nothing = saved.push_to_zotero(hub, user)
    assert (nothing.requests, nothing.pushed) == (0, 0) and len(zotero.items) == 120


def test_a_retried_request_carries_the_same_write_token_and_zotero_writes_it_once(hub, server):
    zotero = FakeZotero(server, "/groups/777/items")
    user, ids = save(hub, 7)
    saved.link_zotero(hub, user, library_type="group", library_id="777", api_key=KEY)
    zotero.lose_answer_once = True  # written, but the answer is lost: the client retries
    report = saved.push_to_zotero(hub, user)
    tokens = [dict((k.lower(), v) for k, v in h.items())["zotero-write-token"] for _, h in server.requests]
    assert len(tokens) == 2 and tokens[0] == tokens[1]
    assert (report.pushed, report.already, report.failed) == (0, 7, [])
    assert len(zotero.items) == 7 and len(pushed_keys(hub, user)) == 7 and zotero.problems == []
    # pushing every paper again to the same library with the same papers: the same token, 412, no copies
    assert saved.push_to_zotero(hub, user, all_papers=True).already == 7 and len(zotero.items) == 7


def test_a_refused_key_is_an_error_that_never_holds_the_key(hub, server, caplog):
    FakeZotero(server)
    user, _ = save(hub, 3)
    saved.link_zotero(hub, user, library_type="user", library_id="12345", api_key="WrongKey12345678")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ZoteroError) as caught:
        saved.push_to_zotero(hub, user)
    assert str(caught.value) == f"{server.url('/users/12345/items')}: Zotero refused the push (HTTP 403): Forbidden"
    assert "WrongKey12345678" not in caplog.text and "WrongKey12345678" not in repr(saved.zotero_link(hub, user))
    assert pushed_keys(hub, user) == {}


def test_a_link_is_checked():
    assert check_link(" User ", "12345", " ") == ("user", "12345", None)
    for args, message in (
        (("team", "1", KEY), "a user's or a group's"), (("user", "12a", KEY), "is a number"),
        (("user", "1", "key with spaces"), "letters and digits"),
    ):
        with pytest.raises(ZoteroError, match=message):
            check_link(*args)


def test_the_settings_page_keeps_the_key_and_shows_only_its_end_and_the_saved_page_pushes(engine, server):
    zotero = FakeZotero(server)
    assert load_sample_if_empty(engine).added == 1504
    settings = Settings(load_sample=False, default_language="en", zotero_api_url=server.url(""))
    with TestClient(create_app(settings, engine=engine)) as client:
        assert client.post("/saved", data={"paper": 1, "next": "/"}, headers=ORIGIN, follow_redirects=False).status_code == 303
        done = client.post("/settings/zotero", data={"library_type": "user", "library_id": "12345", "api_key": KEY},
                           headers=ORIGIN, follow_redirects=False)
        assert done.headers["location"] == "/settings/zotero?done=zotero"
        page = client.get("/settings/zotero").text
        assert KEY not in page and "Linked to the user library 12345 with the key …yH1c." in page
        kept = client.post("/settings/zotero", data={"library_type": "user", "library_id": "12345", "api_key": ""},
                           headers=ORIGIN, follow_redirects=False)  # a blank key keeps the stored one
        assert kept.status_code == 303
        bad = client.post("/settings/zotero", data={"library_type": "user", "library_id": "x1", "api_key": KEY}, headers=ORIGIN)
        assert bad.status_code == 400 and "is a number" in bad.text
        pushed = client.post("/saved/zotero", headers=ORIGIN, follow_redirects=False)
        assert pushed.headers["location"] == "/saved?done=pushed&pushed=1&failed=0"
        assert len(zotero.items) == 1 and zotero.problems == []
        assert client.post("/saved/zotero", headers={"origin": "https://evil.example"}).status_code == 403
