"""The papers' identifier columns but arxiv_id become unique where set: a partial unique index
(`WHERE col IS NOT NULL`) in place of each UNIQUE constraint, same name, same uniqueness (NULLs
never conflicted). A paper lacks most of these identifiers (an arXiv record has no PMID, PMCID,
OpenAlex or Semantic Scholar id), and a full index holds an entry for every NULL, which a bulk
import writes for every paper. arxiv_id keeps its constraint: `arxiv_id IS NULL` is looked up.

PostgreSQL: the constraint dropped, the index built, in place. SQLite keeps a UNIQUE constraint
in the table's definition, so the table is rebuilt (Alembic's batch mode: copy, drop, rename;
`migrate` runs SQLite migrations with foreign keys off so the drop cascades to nothing), and the
FTS5 delete trigger, dropped with the old table, is made again. The full-text index itself is
keyed by the paper ids, which the copy keeps.

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


def downgrade() -> None:
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
