"""The store's data version (store/data_version.py) on PostgreSQL: it moves on a commit that wrote
a table pages read, by any connection, and on nothing else (a rollback, the job ledger, another
database of the server, a compaction); every such table carries the trigger. Real PostgreSQL
(its pass); the SQLite token is covered by tests/test_page_cache.py."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import make_url, text

from academichub.store import data_version
from academichub.store.data_version import DataVersion, unwatched_tables
from academichub.store.database import make_engine, schema_differences
from academichub.store.schema import UNWATCHED_TABLES, metadata

pytestmark = pytest.mark.postgres

USER = "INSERT INTO users (name, created_at, is_admin) VALUES (%s, now(), false)"


@pytest.fixture
def pg(database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL's data version (SQLite's PRAGMA data_version needs no trigger)")
    engine = make_engine(database_url)
    versions = DataVersion(engine)
    plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(plain, autocommit=True)  # a writer of its own, as another process's
    yield versions, conn, plain
    conn.close()
    versions.close_watcher()
    engine.dispose()


def test_every_table_but_the_allowed_ones_is_watched(pg):
    versions, conn, _ = pg
    names = {t.name for t in metadata.sorted_tables}
    assert UNWATCHED_TABLES <= names  # the allow-list names real tables
    with versions.engine.connect() as c:
        assert unwatched_tables(c) == []
        triggered = set(c.execute(text("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                                       "WHERE t.tgname = 'data_version'")).scalars())
    assert triggered == names - UNWATCHED_TABLES  # and the allowed ones carry none
    # a table without the trigger (as a migration that forgot it would leave) is reported, by db check too
    conn.execute("DROP TRIGGER data_version ON radar_feedback")
    try:
        with versions.engine.connect() as c:
            assert unwatched_tables(c) == ["radar_feedback"]
        assert ("missing_data_version_trigger", "radar_feedback") in schema_differences(versions.engine)
    finally:
        conn.execute("CREATE TRIGGER data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON radar_feedback "
                     "FOR EACH STATEMENT EXECUTE FUNCTION data_version_count()")


def test_the_token_moves_on_a_commit_to_a_watched_table_and_on_nothing_else(pg):
    versions, conn, plain = pg
    start = versions.token()
    assert start is not None and versions.token() == start
    # one transaction of many statements: one step
    with conn.transaction():
        conn.execute(USER, ("ada",))
        conn.execute("UPDATE users SET locale = 'en' WHERE name = 'ada'")
        conn.execute(USER, ("bob",))
    one = versions.token()
    assert one != start and int(one.split(".")[1]) == int(start.split(".")[1]) + 1
    # rolled back, in whole or a savepoint of it: nothing committed, nothing moves
    with pytest.raises(RuntimeError):
        with conn.transaction():
            conn.execute(USER, ("carol",))
            raise RuntimeError
    assert versions.token() == one
    with conn.transaction():
        with pytest.raises(RuntimeError):
            with conn.transaction():  # a savepoint: its write and its count go together
                conn.execute(USER, ("dan",))
                raise RuntimeError
    assert versions.token() == one
    with conn.transaction():
        with pytest.raises(RuntimeError):
            with conn.transaction():
                conn.execute(USER, ("erin",))
                raise RuntimeError
        conn.execute("UPDATE users SET locale = 'zh' WHERE name = 'ada'")  # a write after it still counts
    two = versions.token()
    assert two != one
    # the job ledger and the sign-in records: written all the time, shown by no kept page
    conn.execute("INSERT INTO jobs (key, name, params, status, attempts, created_at, updated_at) "
                 "VALUES ('k', 'sources', '{}', 'queued', 0, now(), now())")
    conn.execute("INSERT INTO login_attempts (at, email, succeeded) VALUES (now(), 'ada@lab.example', false)")
    assert versions.token() == two
    # another database of the server, written and committed
    name = f"ah_test_other_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(make_url(plain).set(database=name).render_as_string(hide_password=False),
                             autocommit=True) as other:
            other.execute("CREATE TABLE users (name text)")
            other.execute("INSERT INTO users VALUES ('ada')")
        assert versions.token() == two
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # COPY fires the statement trigger; so does TRUNCATE
    with conn.cursor().copy("COPY users (name, created_at, is_admin) FROM STDIN") as copy:
        copy.write_row(("frank", "2026-01-01", False))
    three = versions.token()
    assert three != two
    conn.execute("TRUNCATE feed_tokens")
    assert versions.token() != three


def test_writers_never_wait_on_each_other(pg):
    """Two open transactions write watched tables at once: the counting rows never collide (each
    has its own transaction id), so the second commits while the first is still open."""
    versions, conn, plain = pg
    before = versions.token()
    with psycopg.connect(plain, autocommit=True) as second:
        second.execute("SET lock_timeout = '5s'")  # a wait would end in an error, not a hang
        with conn.transaction():
            conn.execute(USER, ("ada",))
            with second.transaction():
                second.execute(USER, ("bob",))
            middle = versions.token()  # bob's commit only: ada's is not committed yet
            assert middle != before
        assert versions.token() != middle


def test_compaction_keeps_the_token(pg, monkeypatch):
    versions, conn, _ = pg
    monkeypatch.setattr(data_version, "COMPACT_AT", 4)
    for n in range(6):
        conn.execute(USER, (f"user {n}",))
    rows = conn.execute("SELECT count(*) FROM data_version_xacts").fetchone()[0]
    assert rows > 4
    token = versions.token()  # reads the count, then folds the rows into the base
    assert versions.compactions == 1
    assert conn.execute("SELECT count(*) FROM data_version_xacts").fetchone()[0] == 0
    assert versions.token() == token
    conn.execute(USER, ("one more",))
    moved = versions.token()
    assert moved != token and int(moved.split(".")[1]) == int(token.split(".")[1]) + 1
    versions.compact()  # a compaction on its own: the same value after it
    assert versions.token() == moved and versions.compactions == 2
    # another reader (another process's) sees the same value
    other = DataVersion(versions.engine)
    try:
        assert other.token() == moved
    finally:
        other.close_watcher()


def test_a_store_before_the_trigger_has_no_token(pg):
    """A store not migrated yet (the tables missing): None, so nothing is kept, never an error."""
    versions, conn, _ = pg
    conn.execute("ALTER TABLE data_version_base RENAME TO data_version_base_away")
    try:
        assert versions.token() is None
    finally:
        conn.execute("ALTER TABLE data_version_base_away RENAME TO data_version_base")
    assert versions.token() is not None


def test_downgrade_removes_it_and_upgrade_starts_a_new_epoch(pg):
    from alembic import command

    from academichub.store.database import _alembic_config

    versions, conn, _ = pg
    before = versions.token()
    with versions.engine.begin() as c:
        command.downgrade(_alembic_config(c), "0013")
    left = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'data_version'").fetchone()[0]
    assert left == 0 and conn.execute("SELECT to_regclass('data_version_xacts'), to_regclass('data_version_base'), "
                                      "to_regprocedure('data_version_count()')").fetchone() == (None, None, None)
    assert versions.token() is None
    with versions.engine.begin() as c:
        command.upgrade(_alembic_config(c), "head")
    after = versions.token()
    assert after is not None and after.split(".")[0] != before.split(".")[0]  # never an earlier state's token
    assert schema_differences(versions.engine) == []
