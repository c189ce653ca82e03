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


schema = schemathesis.openapi.from_dict(published_schema())


@pytest.fixture(scope="module")
def app(module_database_url, tmp_path_factory):
    engine = open_store(module_database_url)
    assert load_sample_if_empty(engine).added == 1504
    # every setting that matters named: this fixture runs before the autouse one that isolates the
    # environment, and must not embed in the background or ask an LLM a developer configured
    settings = Settings(load_sample=False, embed_on_ingest=False, llm_model=None, default_language="en", batch_size=10,
                        data_dir=tmp_path_factory.mktemp("data"))
    yield create_app(settings, engine=engine)
    engine.dispose()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, suppress_health_check=list(HealthCheck))
def test_api(case, app):
    case.call_and_validate(app=app, checks=CHECKS)
