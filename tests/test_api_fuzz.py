"""Schemathesis against the app's own OpenAPI schema, in-process (ASGI), over a store holding the
bundled real arXiv day (SQLite, or PostgreSQL in the suite's second pass): no route answers 500,
every answer has a documented status and conforms to the response schema we publish, a request
valid by that schema is accepted, and every date-time in the output carries a time zone (UTC).

Bounded for CI (a fixed number of examples per route, derandomized); `python -m
benchmarks.fuzz_api --examples 1000` runs the same checks longer (benchmarks/README.md)."""

from __future__ import annotations

import os
import re
from datetime import datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.store.database import make_engine, open_store
from academichub.store.radars import add_rule, add_seeds, create_radar, default_user, find_paper
from academichub.store.sources import add_source, record_failure
from academichub.web.app import create_app

EXAMPLES = int(os.environ.get("FUZZ_API_EXAMPLES", "25"))  # per route; benchmarks.fuzz_api runs more
DERANDOMIZE = os.environ.get("FUZZ_API_SEED") is None

_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?")


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def datetimes_carry_a_time_zone(ctx, response, case):
    """Every date-time value in a JSON answer says its zone (the store's are UTC)."""
    if "json" not in (response.headers.get("content-type") or [""])[0]:
        return None
    naive = [s for s in strings_in(response.json()) if _DATETIME.fullmatch(s) and datetime.fromisoformat(s).tzinfo is None]
    assert not naive, f"date-times without a time zone: {naive[:3]}"
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          positive_data_acceptance, datetimes_carry_a_time_zone]


def published_schema() -> dict:
    """The app's OpenAPI document; it does not depend on the store (an engine never connected)."""
    return create_app(Settings(load_sample=False), engine=make_engine("sqlite://")).openapi()


# What /openapi.json serves, loaded at collection; the requests go to the `app` fixture's app
# (ASGI, in-process). schemathesis.pytest.from_fixture would load it from that fixture, but
# schemathesis 4.32 reads `request.node._nodeid` there, which pytest 9 no longer has.
schema = schemathesis.openapi.from_dict(published_schema())


RADAR = "spin qubits"
WHEN = datetime(2024, 11, 28, 21, 5, 7)  # naive, as the store keeps it: UTC


@pytest.fixture(scope="module")
def app(module_database_url, tmp_path_factory):
    """The app over the sample day, a radar with a rule and a seed, and a failing source (so the
    data-backed routes and the source health's date-times have something to show)."""
    engine = open_store(module_database_url)
    assert load_sample_if_empty(engine).added == 1504
    with engine.begin() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name=RADAR, interest="spin qubits in quantum dots")
        add_rule(conn, radar_id, "keyword", "quantum dot")
        add_seeds(conn, radar_id, [find_paper(conn, "2306.03564")], origin="test")
        source_id = add_source(conn, name="feed:broken", kind="feed", params={"url": "https://example.org/rss"},
                               label="A broken feed", now=WHEN)
        record_failure(conn, source_id, error="HTTP 503", now=WHEN)
    # every setting that matters named: this fixture runs before the autouse one that isolates the
    # environment, and must not embed in the background or ask an LLM a developer configured
    settings = Settings(load_sample=False, embed_on_ingest=False, scheduler=False, llm_model=None, default_language="en", batch_size=10,
                        data_dir=tmp_path_factory.mktemp("data"))
    app = create_app(settings, engine=engine)
    app.add_middleware(_FromLoopback)
    yield app
    engine.dispose()


class _FromLoopback:
    """Schemathesis's ASGI client says it is "testclient", no address: the requests come from
    127.0.0.1 here, so the single-user setup serves them as it serves a browser on the machine."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope = {**scope, "client": ("127.0.0.1", 50000)}
        await self.app(scope, receive, send)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, suppress_health_check=list(HealthCheck))
def test_api(case, app):
    case.call_and_validate(app=app, checks=CHECKS)


# Each route once with values that exist in the store (the fuzzer's strings rarely name a radar
# or a paper): the answers with data conform too. (path, method, path parameters, query, body)
KNOWN = [
    ("/api/papers", "GET", {}, {"date": ["2024-11-28"], "category": ["quant-ph"], "size": 5}, None),
    ("/api/papers", "GET", {}, {"radar": RADAR, "size": 5}, None),
    ("/api/papers/{key}", "GET", {"key": "2411.17758v1"}, {}, None),
    ("/api/papers/{key}", "GET", {"key": "1"}, {}, None),
    ("/api/stats", "GET", {}, {}, None),
    ("/api/radars", "GET", {}, {}, None),
    ("/api/radars/{name}", "GET", {"name": RADAR}, {}, None),
    ("/api/radars/{name}/rank", "GET", {"name": RADAR}, {"since": "2024-11-28", "limit": 5}, None),
    ("/api/radars/{name}/feedback", "POST", {"name": RADAR}, {}, {"paper": "2411.17758", "action": "like"}),
    ("/api/sources", "GET", {}, {}, None),
    ("/api/venues", "GET", {}, {}, None),
    ("/api/sources/follow/{venue}", "POST", {"venue": "Nature"}, {}, None),
    ("/api/briefing", "POST", {}, {"date": "2024-11-28", "lang": "en"}, None),
    ("/api/briefing", "GET", {}, {"date": "2024-11-28", "lang": "en"}, None),
    ("/api/briefing", "POST", {}, {"date": "2024-11-28", "week": "true", "radar": RADAR, "lang": "zh-CN"}, None),
    ("/api/briefing", "GET", {}, {"date": "2024-11-28", "week": "true", "radar": RADAR, "lang": "zh-CN"}, None),
    ("/api/jobs", "GET", {}, {"limit": 5, "status": "done"}, None),
    ("/api/papers", "POST", {}, {"radar": RADAR, "size": 3}, None),
    ("/api/saved", "POST", {}, {}, {"paper": 1, "radar": RADAR}),
    ("/api/saved/{paper}", "PATCH", {"paper": 1}, {}, {"read": True, "note": "read with [brackets] & <tags>"}),
    ("/api/saved", "GET", {}, {"read": "true"}, None),
    ("/api/export/{what}", "GET", {"what": "saved"}, {"format": "bibtex"}, None),
    ("/api/export/{what}", "GET", {"what": "liked"}, {"format": "csljson", "radar": RADAR}, None),
    ("/api/export/{what}", "GET", {"what": f"radar:{RADAR}"}, {"format": "ris"}, None),
    ("/api/citation/{paper}", "GET", {"paper": "2411.17758"}, {}, None),
    ("/api/saved/{paper}", "DELETE", {"paper": 1}, {}, None),
    ("/healthz", "GET", {}, {}, None),
]


def test_every_route_answers_with_data_as_published(app):
    assert {(path, method) for path, method, *_ in KNOWN} == {
        (path, method.upper()) for path, methods in schema.raw_schema["paths"].items() for method in methods
    }
    for path, method, path_parameters, query, body in KNOWN:
        operation = schema[path][method]
        case = operation.Case(path_parameters=path_parameters, query=query,
                              **({"body": body, "media_type": "application/json"} if body is not None else {}))
        response = case.call_and_validate(app=app, checks=CHECKS)
        assert response.status_code == (204 if method == "DELETE" else 200), (path, query, response.text)
        if path == "/api/sources":
            (source,) = response.json()
            assert source["failing_since"] == source["last_error_at"] == "2024-11-28T21:05:07Z"
        if path == "/api/papers" and "radar" in query:
            assert response.json()["radar"] == RADAR and response.json()["items"][0]["reasons"]
        if path.startswith("/api/saved") and method in ("POST", "PATCH"):
            assert (response.json()["paper"], response.json()["radar"]) == (1, RADAR)
        if path == "/api/saved/{paper}" and method == "PATCH":
            assert (response.json()["read"], response.json()["note"]) == (True, body["note"])
        if path == "/api/saved" and method == "GET":
            assert [entry["paper"] for entry in response.json() if entry["paper"] == 1] == [1]
        if path == "/api/export/{what}":
            assert response.content and response.headers["content-disposition"][0].startswith("attachment")
        if path == "/api/citation/{paper}":
            assert "2411.17758" in response.json()["bibtex"]
    left = schema["/api/saved"]["GET"].Case().call(app=app).json()
    assert 1 not in [entry["paper"] for entry in left]  # the DELETE above unsaved it
