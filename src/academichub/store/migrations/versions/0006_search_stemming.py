"""Search that finds "networks" for "network": SQLite's full-text index gains the Porter stemmer
(PostgreSQL's 'english' configuration already stems), so ranked search reads the same words on
both. The FTS5 table is rebuilt from the papers table it indexes (external content).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLE = (
    "CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, authors_text, "
    "content='papers', content_rowid='id', tokenize='{tokenize}')"
)


def _recreate(tokenize: str) -> None:
    op.execute("DROP TABLE IF EXISTS papers_fts")
    op.execute(_TABLE.format(tokenize=tokenize))
    op.execute("INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate("porter unicode61 remove_diacritics 2")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate("unicode61 remove_diacritics 2")
