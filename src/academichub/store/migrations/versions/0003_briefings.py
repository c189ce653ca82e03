"""Briefings: the stored daily/weekly briefing of a radar (or of the whole store) per period,
language and paper set, with its analysis, kind (llm/extractive), model, tokens and cost.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "briefings",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("radar_id", sa.Integer),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("paper_hash", sa.String(64), nullable=False),
        sa.Column("paper_ids", sa.JSON, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128)),
        sa.Column("analysis", sa.JSON, nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("fallback_reason", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("superseded_at", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_briefings"),
        sa.ForeignKeyConstraint(["radar_id"], ["radars.id"], name="fk_briefings_radar_id_radars", ondelete="CASCADE"),
    )
    op.create_index("ix_briefings_radar_id", "briefings", ["radar_id"])
    op.create_index("ix_briefings_lookup", "briefings", ["period_start", "period_end", "lang", "paper_hash"])


def downgrade() -> None:
    op.drop_table("briefings")
