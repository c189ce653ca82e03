"""Stored rankings: per radar and window (a day, or "all" stored papers), the ranked paper ids,
their scores and tiers, the reasons the cards show, and the version of the inputs they were
ranked from, so a page view reads a batch instead of ranking the store.

Revision ID: 0010
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "radar_rankings",
        sa.Column("radar_id", sa.Integer, nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128)),
        sa.Column("paper_ids", sa.LargeBinary, nullable=False),
        sa.Column("scores", sa.LargeBinary, nullable=False),
        sa.Column("tiers", sa.LargeBinary, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("radar_id", "period", name="pk_radar_rankings"),
        sa.ForeignKeyConstraint(["radar_id"], ["radars.id"], name="fk_radar_rankings_radar_id_radars", ondelete="CASCADE"),
    )
    # a view checks the corpus signature (count, max id, max modified_at): by index, not a scan
    op.create_index("ix_papers_modified_at", "papers", ["modified_at"])
    op.create_index("ix_papers_published_on", "papers", ["published_on"])  # a day's window, by index


def downgrade() -> None:
    op.drop_index("ix_papers_published_on", table_name="papers")
    op.drop_index("ix_papers_modified_at", table_name="papers")
    op.drop_table("radar_rankings")
