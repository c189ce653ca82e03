"""Indexes of the papers' mostly-NULL columns hold only the rows that are set (partial indexes,
`WHERE col IS NOT NULL`, same names): the identifier columns but arxiv_id, whose UNIQUE
constraints become partial unique indexes (same uniqueness: NULLs never conflicted), and the
announcement and publication days. A paper lacks most identifiers (an arXiv record has no PMID,
PMCID, OpenAlex or Semantic Scholar id; an OAI-PMH record has neither day), and a full index holds
an entry for every NULL, which a bulk import writes for every paper. The store's look-ups and
ranges imply IS NOT NULL; arxiv_id keeps its constraint: `arxiv_id IS NULL` is looked up.

PostgreSQL: the constraint dropped, the index built, in place. SQLite keeps a UNIQUE constraint
in the table's definition, so the table is rebuilt (Alembic's batch mode: copy, drop, rename;
`migrate` runs SQLite migrations with foreign keys off so the drop cascades to nothing), and the
FTS5 delete trigger, dropped with the old table, is made again. The full-text index itself is
keyed by the paper ids, which the copy keeps. The downgrade rebuilds it too: on a store with
papers, run it with foreign keys off as `migrate` does.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

COLUMNS = ("doi", "pmid", "pmcid", "openalex_id", "s2_id")
DAYS = ("announced_on", "published_on")

_FTS_DELETE_TRIGGER = (
    "CREATE TRIGGER papers_fts_ad AFTER DELETE ON papers BEGIN "
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors_text) "
    "VALUES ('delete', old.id, old.title, old.abstract, old.authors_text); END"
)


def _rebuild_sqlite(change) -> None:
    with op.batch_alter_table("papers", recreate="always") as batch:
        change(batch)
    op.execute("DROP TRIGGER IF EXISTS papers_fts_ad")
    op.execute(_FTS_DELETE_TRIGGER)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        def drop_constraints(batch) -> None:
            for col in COLUMNS:
                batch.drop_constraint(f"uq_papers_{col}", type_="unique")

        _rebuild_sqlite(drop_constraints)
    else:
        for col in COLUMNS:
            op.drop_constraint(f"uq_papers_{col}", "papers", type_="unique")
    for col in COLUMNS:
        where = sa.text(f"{col} IS NOT NULL")
        op.create_index(f"uq_papers_{col}", "papers", [col], unique=True, sqlite_where=where, postgresql_where=where)
    for col in DAYS:
        where = sa.text(f"{col} IS NOT NULL")
        op.drop_index(f"ix_papers_{col}", "papers")
        op.create_index(f"ix_papers_{col}", "papers", [col], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for col in DAYS:
        op.drop_index(f"ix_papers_{col}", "papers")
        op.create_index(f"ix_papers_{col}", "papers", [col])
    for col in COLUMNS:
        op.drop_index(f"uq_papers_{col}", "papers")
    if op.get_bind().dialect.name == "sqlite":
        def add_constraints(batch) -> None:
            for col in COLUMNS:
                batch.create_unique_constraint(f"uq_papers_{col}", [col])

        _rebuild_sqlite(add_constraints)
    else:
        for col in COLUMNS:
            op.create_unique_constraint(f"uq_papers_{col}", "papers", [col])
