"""Saved papers: each user's reading list (read/unread, a note, where it was saved from), moved
out of the radars' "save" feedback, which stays (the ranker learns from it); and each user's
Zotero library link, for pushing the list there.

Revision ID: 0009
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_papers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("radar_id", sa.Integer),
        sa.Column("saved_at", sa.DateTime, nullable=False),
        sa.Column("read_at", sa.DateTime),
        sa.Column("note", sa.Text),
        sa.Column("zotero_key", sa.String(16)),
        sa.Column("zotero_pushed_at", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_saved_papers"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_saved_papers_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], name="fk_saved_papers_paper_id_papers", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["radar_id"], ["radars.id"], name="fk_saved_papers_radar_id_radars", ondelete="SET NULL"),
        sa.UniqueConstraint("user_id", "paper_id", name="uq_saved_papers_user_id_paper_id"),
    )
    op.create_index("ix_saved_papers_user_id", "saved_papers", ["user_id"])
    op.create_index("ix_saved_papers_paper_id", "saved_papers", ["paper_id"])
    op.create_table(
        "zotero_links",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("library_type", sa.String(8), nullable=False),
        sa.Column("library_id", sa.String(32), nullable=False),
        sa.Column("api_key", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_zotero_links"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_zotero_links_user_id_users", ondelete="CASCADE"),
    )
    # Every paper saved from a radar so far goes on its owner's list, once per user: the first
    # save's time, from the radar it was first saved in.
    op.execute(
        """
        INSERT INTO saved_papers (user_id, paper_id, radar_id, saved_at)
        SELECT r.user_id, f.paper_id, MIN(f.radar_id), MIN(f.created_at)
        FROM radar_feedback f JOIN radars r ON r.id = f.radar_id
        WHERE f.action = 'save' AND f.paper_id IS NOT NULL
        GROUP BY r.user_id, f.paper_id
        """
    )


def downgrade() -> None:
    op.drop_table("zotero_links")
    op.drop_index("ix_saved_papers_paper_id", table_name="saved_papers")
    op.drop_index("ix_saved_papers_user_id", table_name="saved_papers")
    op.drop_table("saved_papers")
