"""Shared fixtures. The database is never mocked: each test gets a real, migrated, empty store,
SQLite by default, PostgreSQL when ACADEMICHUB_TEST_DATABASE_URL names a server (the suite's
second pass; scripts/test starts a throw-away server for it)."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from academichub.bench import default_shared_data
from academichub.store.database import make_engine, open_store
from academichub.store.schema import metadata

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = default_shared_data()  # $ACADEMICHUB_SHARED_DATA or ../shared/data (beside this clone or its origin)
PG_URL = os.environ.get("ACADEMICHUB_TEST_DATABASE_URL")


# Starlette's TestClient says Host: testserver: a name the tests' servers answer to (allowed_hosts),
# kept in the environment so module-scoped apps see it too.
TEST_ALLOWED_HOSTS = "127.0.0.1,localhost,::1,testserver"
os.environ["ACADEMICHUB_ALLOWED_HOSTS"] = TEST_ALLOWED_HOSTS


@pytest.fixture(autouse=True, scope="session")
def _loopback_test_client():
    """TestClient's requests come from 127.0.0.1 (its own default, "testclient", is no address): the
    single-user setup serves loopback clients; tests of other clients pass `client=` themselves."""
    from starlette.testclient import TestClient

    original = TestClient.__init__

    def init(self, *args, **kwargs):
        if len(args) < 9:  # `client` is the ninth parameter
            kwargs.setdefault("client", ("127.0.0.1", 50000))
        original(self, *args, **kwargs)

    TestClient.__init__ = init
    yield
    TestClient.__init__ = original


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch, tmp_path):
    """A developer's own ACADEMICHUB_* variables (config file, data dir, keys) never leak into tests."""
    for name in list(os.environ):
        if name.startswith("ACADEMICHUB_") and name not in ("ACADEMICHUB_TEST_DATABASE_URL", "ACADEMICHUB_SHARED_DATA"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ACADEMICHUB_ALLOWED_HOSTS", TEST_ALLOWED_HOSTS)
    monkeypatch.setenv("ACADEMICHUB_DATA_DIR", str(tmp_path / "academichub-data"))
    monkeypatch.setenv("ACADEMICHUB_EMBED_ON_INGEST", "false")  # tests that embed say so
    monkeypatch.setenv("ACADEMICHUB_SCHEDULER", "false")  # no background ticks in web tests; tests that tick say so
    yield
    _join_background_threads()


# the product's own background threads (rank/embedding_jobs.py, app/hub.py): one that outlives its
# test writes into the next test's store (on PostgreSQL a worker's tests share one database) with
# settings read after this test's environment was restored
_BACKGROUND_THREADS = ("academichub-embed", "candidates warm-up")  # and "re-rank radar N"


def _join_background_threads(timeout: float = 600) -> None:
    for thread in threading.enumerate():
        named = thread.name in _BACKGROUND_THREADS or thread.name.startswith("re-rank radar ")
        if named and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                pytest.fail(f"background thread {thread.name!r} still running {timeout:.0f} s after its test")


def pytest_report_header(config):
    return f"academichub store: {'PostgreSQL ' + make_url(PG_URL).render_as_string(hide_password=True) if PG_URL else 'SQLite'}; shared data: {SHARED_DATA}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "SOURCES.md").is_file():
        pytest.fail(f"recorded data not found at {SHARED_DATA} (set ACADEMICHUB_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory, worker_id):
    """Migrate once per session; tests then get a copy (SQLite) or a truncated database (PostgreSQL)."""
    if PG_URL:
        admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
        name = f"ah_test_{worker_id}_{uuid.uuid4().hex[:6]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        engine = open_store(url)
        yield ("postgresql", url, engine)
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = open_store(f"sqlite:///{path}")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        yield ("sqlite", path, None)


def _empty_store(template, folder: Path) -> str:
    """An empty, migrated store from the session's template: a copy in `folder` (SQLite) or the
    worker's database truncated (PostgreSQL)."""
    kind, where, engine = template
    if kind == "postgresql":
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return where
    target = folder / "academichub.db"
    shutil.copy(where, target)
    return f"sqlite:///{target}"


@pytest.fixture
def database_url(_template_store, tmp_path) -> str:
    return _empty_store(_template_store, tmp_path)


@pytest.fixture(scope="module")
def module_database_url(_template_store, tmp_path_factory) -> str:
    """database_url shared by a module's tests (filled once, e.g. with the sample day, and read by
    all). A test of another module in between empties it, but pytest first tears this down."""
    return _empty_store(_template_store, tmp_path_factory.mktemp("store"))


@pytest.fixture
def engine(database_url):
    engine = open_store(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sample_engine(engine):
    """The test's store holding the bundled real day (2024-11-28, 1,504 papers)."""
    from academichub.ingest.pipeline import load_sample_if_empty

    summary = load_sample_if_empty(engine)
    assert summary is not None and summary.added == 1504
    return engine


@pytest.fixture
def local_server():
    """A real HTTP server on 127.0.0.1 (see tests/localserver.py)."""
    from localserver import LocalServer

    server = LocalServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_server():
    """One real local server per test module (see tests/localserver.py)."""
    from localserver import LocalServer

    server = LocalServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(module_server):
    """The module's server, emptied for this test."""
    module_server.routes.clear()
    module_server.requests.clear()
    module_server.bodies.clear()
    return module_server


@pytest.fixture
def sleeps() -> list[float]:
    """Pass `sleep=sleeps.append` to a PoliteClient: waits are recorded, never slept."""
    return []


@pytest.fixture(scope="module")
def zh_sample_client(module_database_url):
    """The web app over the module's store holding the bundled day, Chinese by default, in a
    TestClient with its lifespan running."""
    from fastapi.testclient import TestClient

    from academichub.ingest.pipeline import load_sample_if_empty
    from academichub.settings import Settings
    from academichub.store.database import open_store
    from academichub.web.app import create_app

    engine = open_store(module_database_url)
    load_sample_if_empty(engine)
    settings = Settings(load_sample=False, default_language="zh", batch_size=10)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client
    engine.dispose()
