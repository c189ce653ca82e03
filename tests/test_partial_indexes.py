"""Migration 0015 on a real store (SQLite, and PostgreSQL in the suite's second pass): the papers'
identifier columns but arxiv_id become unique where set (partial unique indexes), and the two days'
indexes hold only the papers that have the day. A store upgraded
from 0014 keeps every row, its own and those that reference its papers (SQLite rebuilds the table,
which must not cascade), its full-text search and its delete trigger; the identifiers stay unique."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from academichub.ingest.pipeline import load_sample_if_empty
from academichub.store.database import _alembic_config, current_revision, head_revision, open_store, schema_differences
from academichub.store.feed import FeedFilters
from academichub.store.schema import PARTIALLY_UNIQUE_COLUMNS, papers, radar_feedback, radar_seeds, radars, users
from academichub.store.search import ranked_matches

NOW = datetime(2024, 11, 28, 9, 0)
REFERENCING = ("paper_authors", "paper_subjects", "paper_identifiers", "source_records", "radar_seeds", "radar_feedback")


def _index_definitions(conn) -> dict[str, str]:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'papers'")
    else:
        rows = conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                                    "AND tablename = 'papers'")
    return {name: definition or "" for name, definition in rows}


def _counts(conn) -> dict[str, int]:
    return {table: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() for table in ("papers", *REFERENCING)}


def _paper(n: int, **identifiers) -> dict:
    return {"title": f"paper {n}", "abstract": "", "authors_text": "", "versions": [], "provenance": {},
            "content_hash": str(n), "created_at": NOW, "modified_at": NOW,
            **dict.fromkeys(PARTIALLY_UNIQUE_COLUMNS), **identifiers}


def test_migration_0015_keeps_the_store_and_makes_the_identifier_indexes_partial(engine):
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0014")
    assert current_revision(engine) == "0014"
    with engine.connect() as conn:
        before_definitions = _index_definitions(conn)

    assert load_sample_if_empty(engine).added == 1504
    with engine.begin() as conn:  # rows that reference papers beyond the import's own tables
        user = conn.execute(insert(users).values(name="alice", created_at=NOW).returning(users.c.id)).scalar_one()
        radar = conn.execute(insert(radars).values(user_id=user, name="r", settings={}, created_at=NOW, updated_at=NOW)
                             .returning(radars.c.id)).scalar_one()
        first, second = conn.execute(select(papers.c.id).order_by(papers.c.id).limit(2)).scalars()
        conn.execute(insert(radar_seeds).values(radar_id=radar, paper_id=first, added_at=NOW))
        conn.execute(insert(radar_feedback).values(radar_id=radar, paper_id=second, action="like", created_at=NOW))
        before = _counts(conn)
        found_before = ranked_matches(conn, FeedFilters(q="quantum entanglement")).ids
    assert all(before.values()) and found_before

    upgraded = open_store(engine.url.render_as_string(hide_password=False))
    try:
        assert current_revision(upgraded) == head_revision()
        assert schema_differences(upgraded) == []
        with upgraded.connect() as conn:
            assert _counts(conn) == before
            assert ranked_matches(conn, FeedFilters(q="quantum entanglement")).ids == found_before
            definitions = _index_definitions(conn)
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1  # enforced again after the migration
        partial = [f"uq_papers_{column}" for column in PARTIALLY_UNIQUE_COLUMNS] + ["ix_papers_announced_on", "ix_papers_published_on"]
        for name in partial:
            column = name.split("_papers_")[1]
            assert f"WHERE {column} IS NOT NULL" in definitions[name].replace("(", "").replace(")", ""), name
            assert f"{column} IS NOT NULL" not in before_definitions.get(name, "")
        assert "WHERE" not in definitions.get("uq_papers_arxiv_id", "")  # SQLite: in the table (an autoindex)

        # a deleted paper leaves the full-text index too (SQLite: the delete trigger, made again)
        with upgraded.begin() as conn:
            gone = found_before[0]
            conn.execute(delete(papers).where(papers.c.id == gone))
            assert gone not in ranked_matches(conn, FeedFilters(q="quantum entanglement")).ids
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("INSERT INTO papers_fts(papers_fts) VALUES ('integrity-check')")
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        upgraded.dispose()


@pytest.mark.parametrize("column", PARTIALLY_UNIQUE_COLUMNS)
def test_identifiers_stay_unique_where_set(engine, column):
    with engine.begin() as conn:
        conn.execute(insert(papers), [_paper(1, **{column: "X1"}), _paper(2), _paper(3)])  # NULLs never conflict
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(papers).values(_paper(4, **{column: "X1"})))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 3
