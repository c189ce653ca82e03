"""Opening the store: one engine per URL, SQLite tuned for a laptop (WAL, foreign keys, a busy
timeout), migrations applied on open so nobody has to remember `db upgrade`."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from ..errors import StoreError
from .schema import UNMODELLED_COLUMNS, UNMODELLED_TABLES, metadata

MIGRATIONS = Path(__file__).parent / "migrations"


BUSY_TIMEOUT_MS = 10_000
# How long a writer waits for another process's write transaction before giving up (SQLite; on
# PostgreSQL the advisory lock waits in the server's fair queue, as long as it takes).
WRITER_WAIT_MS = 600_000
# Keys of the PostgreSQL advisory locks (any two constants of our own; "AcHb" + 1 / 2).
WRITE_LOCK_KEY = 0x41634862_01
MIGRATION_LOCK_KEY = 0x41634862_02


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout first: switching a new file to WAL takes a lock another process may hold.
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


# Connections a process keeps: as many as the server's request threads (anyio's default limiter,
# 40) so a request never waits for a connection while threads are free, and a few more for the
# job consumer's threads and the warm-up. Connections open lazily: an idle process holds few.
REQUEST_THREADS = 40
POOL_SIZE = REQUEST_THREADS
POOL_OVERFLOW = 10


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"bad database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        pool = {} if parsed.database in (None, "", ":memory:") else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() in ("", "psycopg2", None) or parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")


# The newest migration (tests/test_cli.py checks it against Alembic's head). Knowing it,
# `open_store` skips importing Alembic — a fifth of every command's start-up — when the database
# is already current.
HEAD_REVISION = "0016"


def _alembic_config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def lock_for_writing(conn: Connection, *, key: int = WRITE_LOCK_KEY) -> None:
    """Make this transaction the store's only writer until it ends.

    A writer looks papers up, decides, then inserts: two processes doing that at once both miss
    each other's new rows and the slower one fails on a unique key (or stores one work twice,
    which no constraint catches). So look-ups and writes of one transaction happen under one
    lock: on SQLite the write lock itself (`BEGIN IMMEDIATE`, before any read of the
    transaction; a transaction that has written already holds it), on PostgreSQL a
    transaction-scoped advisory lock (released by the commit or rollback). A second writer waits
    for the first to finish, then sees its rows, so its records become updates."""
    if conn.dialect.name == "sqlite":
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection.in_transaction:  # pysqlite began at a first write: the lock is held
            return
        conn.exec_driver_sql(f"PRAGMA busy_timeout={WRITER_WAIT_MS}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError as exc:
            raise StoreError(
                f"{_safe(conn.engine)}: cannot start writing (other writers are waited for up to "
                f"{WRITER_WAIT_MS // 1000} s): {exc.orig}"
            ) from exc
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (key,))


def _safe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def migrate(engine: Engine) -> str | None:
    """Bring the store to the head revision; returns the revision it was at before (None for a
    new store), which is the head when there was nothing to do.

    Two processes opening a new store at once must not both create it: the migration runs
    under the store's lock (SQLite's write lock, taken before Alembic reads the version, so the
    DDL is one transaction too; on PostgreSQL an advisory lock of its own), and the second
    process, once it has the lock, finds the store at head and does nothing.

    SQLite migrates with foreign keys off: a migration that rebuilds a table (Alembic's batch
    mode copies it, drops it and renames the copy) would otherwise empty every table that
    references it, as SQLite's DROP TABLE deletes the rows first and ON DELETE CASCADE follows.
    The pragma is a no-op inside a transaction, so it is set before; the keys are checked before
    the commit and enforced again after."""
    from alembic import command
    from alembic.migration import MigrationContext

    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                with connection.begin():
                    lock_for_writing(connection, key=MIGRATION_LOCK_KEY)
                    before = MigrationContext.configure(connection).get_current_revision()
                    command.upgrade(_alembic_config(connection), "head")
                    if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").first()):
                        raise StoreError(f"cannot open database {_safe(engine)}: the migration left a row of "
                                         f"{broken[0]} without its {broken[2]} row")
                return before
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()
    except SQLAlchemyError as exc:  # one clear line, not the driver's traceback
        raise StoreError(f"cannot open database {_safe(engine)}: {getattr(exc, 'orig', None) or exc}") from exc


def open_store(url: str, *, upgrade: bool = True) -> Engine:
    engine = make_engine(url)
    if upgrade and _stored_revision(engine) != HEAD_REVISION:
        migrate(engine)
    return engine


def reachable(engine: Engine) -> bool:
    """Whether the database answers a trivial query (the health check)."""
    import logging

    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        logging.getLogger(__name__).warning("health check failed: %s", exc)
        return False
    return True


def safe_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def _stored_revision(engine: Engine) -> str | None:
    """The revision the database says it is at; None when it cannot say (new, or unreachable:
    `migrate` then creates it or reports the error)."""
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except SQLAlchemyError:
        return None
    return rows[0][0] if len(rows) == 1 else None


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    with make_engine("sqlite://").connect() as connection:
        return ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()


def schema_differences(engine: Engine) -> list:
    """What the live database lacks or has beyond the declared schema (empty when in sync)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from .data_version import unwatched_tables

    def include(obj, name, type_, reflected, compare_to):
        if type_ == "table" and name in UNMODELLED_TABLES | {"alembic_version"}:
            return False
        if type_ == "column" and (obj.table.name, name) in UNMODELLED_COLUMNS:
            return False
        if type_ == "index" and name and name.startswith("ix_papers_search_vector"):
            return False
        return True

    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": include})
            # and a watched table without the data version's trigger (PostgreSQL; store/data_version.py)
            return compare_metadata(context, metadata) + [("missing_data_version_trigger", name)
                                                          for name in unwatched_tables(connection)]
    except SQLAlchemyError as exc:
        raise StoreError(str(exc)) from exc
