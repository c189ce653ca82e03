"""The reading list over HTTP, without a browser: the page's forms (save, read, note, remove)
answer with redirects and refuse other sites, the ☆/★ state on cards and the paper page, the
downloads (/saved/export, /radars/<name>/export) and the JSON API (/api/saved, /api/export,
/api/citation)."""

from __future__ import annotations

import json
import warnings

import pytest
import rispy

from academichub.ingest.library_import import parse_library
from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ORIGIN = {"origin": "http://testserver"}
EVIL = {"origin": "https://evil.example"}


@pytest.fixture
def client(engine):
    assert load_sample_if_empty(engine).added == 1504
    with TestClient(create_app(Settings(load_sample=False, default_language="en", batch_size=3), engine=engine)) as c:
        yield c


def arxiv_paper(client, arxiv_id: str) -> int:
    return client.get(f"/api/papers/{arxiv_id}").json()["id"]


def test_the_page_forms_save_read_note_and_remove(client):
    pid = arxiv_paper(client, "2411.18027")
    assert client.post("/saved", data={"paper": pid, "next": "/"}, headers=EVIL).status_code == 403
    done = client.post("/saved", data={"paper": pid, "next": "/?q=robot"}, headers=ORIGIN, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, f"/?q=robot&noted=saved#paper-{pid}")
    assert client.post("/saved", data={"paper": 10**9}, headers=ORIGIN).status_code == 404
    card = client.get("/papers/2411.18027").text
    assert 'action="/saved/%d/remove"' % pid in card and "On reading list" in card
    done = client.post(f"/saved/{pid}/read", data={"read": "1", "next": "https://evil.example/"}, headers=ORIGIN,
                       follow_redirects=False)
    assert done.headers["location"] == f"/saved?done=read#saved-{pid}"  # never off-site
    client.post(f"/saved/{pid}/note", data={"note": "  line one\nline two  ", "next": "/saved"}, headers=ORIGIN)
    assert client.get("/api/saved").json() == [{
        "paper": pid, "title": "Privacy-preserving Robotic-based Multi-factor Authentication Scheme for Secure Automated Delivery System",
        "saved_at": client.get("/api/saved").json()[0]["saved_at"], "read": True,
        "read_at": client.get("/api/saved").json()[0]["read_at"], "note": "line one\nline two", "radar": None,
        "url": f"/papers/{pid}",
    }]
    page = client.get("/saved?show=read").text
    assert "line one\nline two</textarea>" in page and "Read (1)" in page and "Unread (0)" in page
    assert "Nothing saved yet" not in page and "No papers here." in client.get("/saved?show=unread").text
    done = client.post(f"/saved/{pid}/remove", data={"next": "/saved"}, headers=ORIGIN, follow_redirects=False)
    assert done.headers["location"] == "/saved?done=removed"
    assert client.get("/api/saved").json() == [] and "Nothing saved yet" in client.get("/saved").text


def test_a_radar_cards_star_saves_to_the_list_and_the_list_unsaves_the_radar_feedback_too(client):
    client.post("/radars", data={"name": "spin qubits", "interest": "spin qubits in silicon"}, headers=ORIGIN)
    feed = client.get("/?radar=spin+qubits&size=3")
    first = int(feed.text.split('id="paper-', 1)[1].split('"', 1)[0])
    client.post("/radars/spin%20qubits/feedback", data={"paper": first, "action": "save", "next": "/"}, headers=ORIGIN)
    assert [(s["paper"], s["radar"]) for s in client.get("/api/saved").json()] == [(first, "spin qubits")]
    assert client.get("/api/radars/spin%20qubits").json()["feedback"]["save"] == 1
    assert client.delete(f"/api/saved/{first}", headers=ORIGIN).status_code == 204
    assert client.get("/api/radars/spin%20qubits").json()["feedback"]["save"] == 0
    assert client.delete(f"/api/saved/{first}", headers=ORIGIN).status_code == 404


def test_the_json_api_and_the_downloads(client):
    client.post("/radars", data={"name": "saved", "interest": "graph neural networks"}, headers=ORIGIN)
    made = client.post("/api/saved", json={"paper": "arXiv:2411.18027", "radar": "saved"}, headers=ORIGIN)
    assert made.status_code == 200 and made.json()["radar"] == "saved" and made.json()["read"] is False
    assert client.post("/api/saved", json={"paper": "2411.18027", "radar": "nope"}, headers=ORIGIN).status_code == 404
    assert client.post("/api/saved", json={"paper": "10.9999/none"}, headers=ORIGIN).status_code == 404
    pid = made.json()["paper"]
    patched = client.patch(f"/api/saved/{pid}", json={"read": True, "note": "cite in §2"}, headers=ORIGIN)
    assert (patched.json()["read"], patched.json()["note"]) == (True, "cite in §2")
    assert client.patch("/api/saved/999999", json={"read": True}, headers=ORIGIN).status_code == 404
    assert client.get("/api/saved?read=false").json() == []

    bib = client.get("/saved/export?format=bibtex")
    assert bib.headers["content-type"] == "application/x-bibtex; charset=utf-8"
    assert bib.headers["content-disposition"] == 'attachment; filename="saved.bib"'
    assert [p.arxiv_id for p in parse_library(bib.content, "saved.bib").papers] == ["2411.18027"]
    ris = client.get("/api/export/saved?format=ris")
    assert [e["urls"] for e in rispy.loads(ris.text)] == [["https://arxiv.org/abs/2411.18027"]]
    batch = client.get("/api/export/radar:saved?format=csljson")  # the radar named "saved"
    assert batch.headers["content-disposition"] == 'attachment; filename="radar-saved.json"' and len(batch.json()) == 3
    page = client.get("/radars/saved/export?format=ris")
    assert page.status_code == 200 and page.text.count("TY  - ") == 3
    assert client.get("/radars/nope/export").status_code == 404
    assert client.get("/api/export/saved?format=endnote").status_code == 422
    assert client.get("/api/export/liked?format=csljson").json() == []

    cited = client.get("/api/citation/2411.18027").json()
    assert cited["bibtex"].startswith("@misc{yang2024privacy,") and cited["ris"].startswith("TY  - UNPB")
    assert json.loads(cited["csljson"])[0]["number"] == "arXiv:2411.18027"
    assert cited["plain"].endswith("arXiv:2411.18027. https://arxiv.org/abs/2411.18027")
    assert client.get("/api/citation/0000.00000").status_code == 404


def test_every_card_has_a_cite_box_and_the_header_links_the_saved_page(client):
    feed = client.get("/?size=3&lang=zh").text
    assert feed.count('<details class="cite-box">') == 3 and feed.count('action="/saved"') == 3
    assert '<li><a href="/saved" data-nav="saved">收藏</a></li>' in feed
    assert "<summary class=\"fb\">引用</summary>" in feed
    en = client.get("/saved?lang=en").text
    assert 'data-nav="saved" aria-current="page">Saved</a>' in en
