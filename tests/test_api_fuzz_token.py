"""Schemathesis against the published OpenAPI schema as a multi-user server's API client sees it:
two accounts, every request carrying the administrator's read-write API token in the
Authorization header (100 examples per route, derandomized): no 500, every answer documented
and conforming. A read-only token's writes are refused (403), a bad token is 401, never a
fallback to anyone; the other user's radar is out of reach."""

from __future__ import annotations

import os

import pytest
import test_api_fuzz as published
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from academichub.app import accounts
from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.store.database import open_store
from academichub.store.radars import add_rule, add_seeds, create_radar, default_user, find_paper
from academichub.web.app import create_app

pytestmark = pytest.mark.postgres
EXAMPLES = int(os.environ.get("FUZZ_API_TOKEN_EXAMPLES", "100"))
schema = published.schema
RADAR = published.RADAR


@pytest.fixture(scope="module")
def served(module_database_url, tmp_path_factory):
    """(app, write token, read token): the sample day, the administrator's radar (the first account
    adopts the local user's), and a second user with a radar of their own."""
    engine = open_store(module_database_url)
    load_sample_if_empty(engine)
    with engine.begin() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name=RADAR, interest="spin qubits in quantum dots")
        add_rule(conn, radar_id, "keyword", "quantum dot")
        add_seeds(conn, radar_id, [find_paper(conn, "2306.03564")], origin="test")
    settings_ = Settings(load_sample=False, embed_on_ingest=False, scheduler=False, llm_model=None, default_language="en",
                         batch_size=10, data_dir=tmp_path_factory.mktemp("data"), secret_key="fuzz-key",
                         allowed_hosts="127.0.0.1,localhost,::1,testserver")
    app = create_app(settings_, engine=engine)
    hub = app.state.hub
    admin_id = accounts.create_user(hub, "ada@lab.example", "ada-password-1", is_admin=True)
    other_id = accounts.create_user(hub, "bob@lab.example", "bob-password-1")
    with accounts.acting_as(other_id), engine.begin() as conn:
        create_radar(conn, user_id=other_id, name="bob's secret radar", interest="protein folding")
    _, write = accounts.create_token(hub, admin_id, "fuzz", "write")
    _, read = accounts.create_token(hub, admin_id, "reader", "read")
    yield app, write, read
    engine.dispose()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_with_a_write_token(case, served):
    app, write, _ = served
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {write}"}, checks=published.CHECKS)


def test_tokens_scope_and_reach(served):
    app, write, read = served
    client = TestClient(app, client=("192.0.2.1", 4000))  # not loopback: nobody is the local user
    assert client.get("/api/radars").status_code == 401
    assert client.get("/api/radars", headers={"Authorization": "Bearer ahk_forged"}).status_code == 401
    mine = client.get("/api/radars", headers={"Authorization": f"Bearer {read}"})
    assert mine.status_code == 200 and [r["name"] for r in mine.json()] == [RADAR]
    assert client.get("/api/radars/bob's secret radar", headers={"Authorization": f"Bearer {write}"}).status_code == 404
    like = {"paper": "2411.17758", "action": "like"}
    refused = client.post(f"/api/radars/{RADAR}/feedback", json=like, headers={"Authorization": f"Bearer {read}"})
    assert refused.status_code == 403
    done = client.post(f"/api/radars/{RADAR}/feedback", json=like, headers={"Authorization": f"Bearer {write}"})
    assert done.status_code == 200
