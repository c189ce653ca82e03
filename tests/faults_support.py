"""What the fault tests share: real `academichub` processes on this checkout's code, fresh stores
(SQLite files or PostgreSQL databases), inputs cut from the recorded OAI-PMH files, the process
table read from /proc, and the store's consistency checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from lxml import etree
from sqlalchemy import text
from sqlalchemy.engine import make_url

from academichub.store.database import make_engine

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("ACADEMICHUB_TEST_DATABASE_URL")
OAI_DIR = "arxiv/oai-quant-ph"
SNAPSHOT = "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl"
# Records of the recorded OAI-PMH files (each a distinct arXiv paper), in file order.
OAI_COUNTS = {"arXiv-meta-1995.xml": 436, "arXiv-meta-2000.xml": 1855, "arXiv-meta-2005.xml": 3398}
CLI = "import sys; from academichub.cli import app; sys.exit(app(prog_name='academichub'))"


def cli_env(database_url: str) -> dict[str, str]:
    """The test's environment (isolated settings, no embedding) plus this checkout's sources."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep + path if path else ''}",
        "ACADEMICHUB_DATABASE_URL": database_url,
        "ACADEMICHUB_EMBED_ON_INGEST": "false",
    }


def start_cli(database_url: str, *args: str) -> subprocess.Popen:
    """A real `academichub` process (its own interpreter, as a user runs it)."""
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args], env=cli_env(database_url), cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


class NewStores:
    """Stores that do not exist yet: a path for SQLite, a database created empty (no tables) on
    the test server for PostgreSQL, dropped afterwards."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.databases: list[str] = []

    def url(self) -> str:
        if not PG_URL:
            return f"sqlite:///{self.tmp_path / f'store-{uuid.uuid4().hex[:8]}.db'}"
        name = f"ah_fault_{uuid.uuid4().hex[:10]}"
        with _admin() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.databases.append(name)
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self.databases:
            with _admin() as conn:
                for name in self.databases:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class _admin:
    def __enter__(self):
        self.engine = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
        self.conn = self.engine.connect()
        return self.conn

    def __exit__(self, *exc_info):
        self.conn.close()
        self.engine.dispose()


def oai_records(shared_data: Path, count: int) -> list[bytes]:
    """The first `count` <record> elements of the recorded OAI-PMH files, serialised as recorded."""
    records: list[bytes] = []
    for name in OAI_COUNTS:
        for _event, element in etree.iterparse(str(shared_data / OAI_DIR / name), tag="record"):
            records.append(etree.tostring(element))
            element.clear()
            if len(records) == count:
                return records
    raise AssertionError(f"the recorded OAI files hold fewer than {count} records")


def write_oai(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b'<?xml version="1.0" encoding="utf-8"?><ListRecords>' + b"".join(records) + b"</ListRecords>")
    return path


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """Running, sleeping or blocked; a zombie (dead, not yet reaped by its new parent) is not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def paper_count(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM papers").scalar_one()
    except Exception:  # not created yet
        return 0
    finally:
        engine.dispose()


def store_state(database_url: str) -> dict:
    """Counts per table, distinct keys (duplicates show as a difference) and the integrity checks:
    SQLite's own, and the FTS5 index against its content table; on PostgreSQL every paper has its
    search vector."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            scalar = lambda sql: conn.exec_driver_sql(sql).scalar_one()  # noqa: E731
            state = {
                table: scalar(f"SELECT count(*) FROM {table}")
                for table in ("papers", "source_records", "paper_identifiers", "paper_authors", "paper_subjects")
            }
            state["distinct arxiv ids"] = scalar("SELECT count(DISTINCT arxiv_id) FROM papers")
            state["distinct source records"] = scalar(
                "SELECT count(*) FROM (SELECT DISTINCT source, source_id FROM source_records) AS s"
            )
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
                conn.exec_driver_sql("INSERT INTO papers_fts(papers_fts, rank) VALUES ('integrity-check', 1)")
                state["indexed"] = scalar("SELECT count(*) FROM papers_fts_docsize")
            else:
                state["indexed"] = scalar("SELECT count(*) FROM papers WHERE search_vector IS NOT NULL")
            return state
    finally:
        engine.dispose()


def expected_state(papers: int, *, authors: int = 0, subjects: int = 0, identifiers: int | None = None) -> dict:
    return {
        "papers": papers, "source_records": papers, "paper_identifiers": papers if identifiers is None else identifiers,
        "paper_authors": authors, "paper_subjects": subjects, "distinct arxiv ids": papers,
        "distinct source records": papers, "indexed": papers,
    }
