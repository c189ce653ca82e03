"""Papers with identifiers, authors, subjects, per-source records, announcements, HTTP validators,
harvest state; full-text search (FTS5 on SQLite, tsvector + GIN on PostgreSQL).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "papers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("arxiv_id", sa.String(40)),
        sa.Column("arxiv_version", sa.Integer),
        sa.Column("doi", sa.String(255)),
        sa.Column("pmid", sa.String(20)),
        sa.Column("pmcid", sa.String(20)),
        sa.Column("openalex_id", sa.String(40)),
        sa.Column("s2_id", sa.String(64)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("authors_text", sa.Text, nullable=False),
        sa.Column("primary_category", sa.String(64)),
        sa.Column("venue", sa.Text),
        sa.Column("journal_ref", sa.Text),
        sa.Column("license", sa.Text),
        sa.Column("comments", sa.Text),
        sa.Column("url_abs", sa.Text),
        sa.Column("url_pdf", sa.Text),
        sa.Column("submitted_at", sa.DateTime),
        sa.Column("announced_on", sa.Date),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("published_on", sa.Date),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("provenance", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("modified_at", sa.DateTime, nullable=False),
        sa.Column("origin", sa.String(32)),
        sa.Column("work_type", sa.String(64)),
        sa.Column("publisher", sa.Text),
        sa.Column("venue_abbrev", sa.String(255)),
        sa.Column("issn", sa.String(16)),
        sa.Column("server", sa.String(16)),
        sa.Column("title_key", sa.String(255)),
        sa.Column("first_author_key", sa.String(255)),
        sa.Column("pub_year", sa.Integer),
        sa.Column("tldr", sa.Text),
        sa.Column("citation_count", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_papers"),
        *[
            sa.UniqueConstraint(col, name=f"uq_papers_{col}")
            for col in ("arxiv_id", "doi", "pmid", "pmcid", "openalex_id", "s2_id")
        ],
    )
    op.create_index("ix_papers_primary_category", "papers", ["primary_category"])
    op.create_index("ix_papers_announced_on", "papers", ["announced_on"])
    op.create_index("ix_papers_title_key", "papers", ["title_key"])

    op.create_table(
        "paper_identifiers",
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("scheme", "value", name="pk_paper_identifiers"),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name="fk_paper_identifiers_paper_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_paper_identifiers_paper_id", "paper_identifiers", ["paper_id"])

    op.create_table(
        "paper_relations",
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "relation", "scheme", "value", name="pk_paper_relations"),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name="fk_paper_relations_paper_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_paper_relations_scheme_value", "paper_relations", ["scheme", "value"])

    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("interval_minutes", sa.Integer, nullable=False),
        sa.Column("last_run_at", sa.DateTime),
        sa.Column("last_success_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.DateTime),
        sa.Column("failing_since", sa.DateTime),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("last_added", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
        sa.UniqueConstraint("name", name="uq_sources_name"),
    )

    op.create_table(
        "paper_authors",
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_norm", sa.String(255), nullable=False),
        sa.Column("name_key", sa.String(255), nullable=False),
        sa.Column("affiliation", sa.Text),
        sa.Column("orcid", sa.String(32)),
        sa.PrimaryKeyConstraint("paper_id", "position", name="pk_paper_authors"),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name="fk_paper_authors_paper_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_paper_authors_name_norm", "paper_authors", ["name_norm"])
    op.create_index("ix_paper_authors_name_key", "paper_authors", ["name_key"])

    op.create_table(
        "paper_subjects",
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("code", sa.String(255), nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "scheme", "code", name="pk_paper_subjects"),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name="fk_paper_subjects_paper_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_paper_subjects_scheme_code", "paper_subjects", ["scheme", "code"])

    op.create_table(
        "source_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("announce_type", sa.String(32)),
        sa.Column("raw", sa.JSON, nullable=False),
        sa.Column("fetched_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source_records"),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name="fk_source_records_paper_id_papers", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("source", "source_id", name="uq_source_records_source_source_id"),
    )
    op.create_index("ix_source_records_paper_id", "source_records", ["paper_id"])

    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("feed", sa.Text, nullable=False),
        sa.Column("announced_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("skip_days", sa.JSON, nullable=False),
        sa.Column("checked_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_announcements"),
        sa.UniqueConstraint("source", "feed", "announced_on", name="uq_announcements_source_feed_day"),
    )

    op.create_table(
        "http_validators",
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("url", name="pk_http_validators"),
    )

    op.create_table(
        "harvests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("params_key", sa.String(512), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("resumption_token", sa.Text),
        sa.Column("records_done", sa.Integer, nullable=False),
        sa.Column("complete_list_size", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_harvests"),
        sa.UniqueConstraint("source", "params_key", name="uq_harvests_source_params_key"),
    )

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, authors_text, "
            "content='papers', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        # Inserts and updates maintain the index in bulk (store/papers.py): a per-row trigger
        # costs more than the rest of a bulk import. Deletes keep a trigger, being rare.
        op.execute(
            "CREATE TRIGGER papers_fts_ad AFTER DELETE ON papers BEGIN "
            "INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors_text) "
            "VALUES ('delete', old.id, old.title, old.abstract, old.authors_text); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE papers ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(abstract, '')), 'B') || "
            "setweight(to_tsvector('simple', coalesce(authors_text, '')), 'C')) STORED"
        )
        op.execute("CREATE INDEX ix_papers_search_vector ON papers USING GIN (search_vector)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("papers_fts_ad",):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS papers_fts")
    for table in (
        "sources", "paper_relations", "paper_identifiers", "harvests", "http_validators", "announcements",
        "source_records", "paper_subjects", "paper_authors", "papers",
    ):
        op.drop_table(table)
