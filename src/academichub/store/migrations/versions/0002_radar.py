"""The research radar: users, radars with their rules, seeds and feedback, what each radar has
shown per day, and stored paper embeddings.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("email", sa.String(255)),
        sa.Column("password_hash", sa.Text),
        sa.Column("locale", sa.String(16)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "radars",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("interest", sa.Text),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_radars"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_radars_user_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("user_id", "name", name="uq_radars_user_id_name"),
    )
    op.create_index("ix_radars_user_id", "radars", ["user_id"])
    op.create_table(
        "radar_rules",
        sa.Column("radar_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value_key", sa.String(255), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("orcid", sa.String(32)),
        sa.PrimaryKeyConstraint("radar_id", "kind", "value_key", name="pk_radar_rules"),
        sa.ForeignKeyConstraint(["radar_id"], ["radars.id"], name="fk_radar_rules_radar_id_radars", ondelete="CASCADE"),
    )
    op.create_table(
        "radar_seeds",
        sa.Column("radar_id", sa.Integer, nullable=False),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("origin", sa.String(64)),
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("radar_id", "paper_id", name="pk_radar_seeds"),
        sa.ForeignKeyConstraint(["radar_id"], ["radars.id"], name="fk_radar_seeds_radar_id_radars", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], name="fk_radar_seeds_paper_id_papers", ondelete="CASCADE"),
    )
    op.create_table(
        "radar_feedback",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("radar_id", sa.Integer, nullable=False),
        sa.Column("paper_id", sa.Integer),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_radar_feedback"),
        sa.ForeignKeyConstraint(["radar_id"], ["radars.id"], name="fk_radar_feedback_radar_id_radars", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], name="fk_radar_feedback_paper_id_papers", ondelete="CASCADE"),
    )
    op.create_index("ix_radar_feedback_radar_id", "radar_feedback", ["radar_id"])
    op.create_index("ix_radar_feedback_paper_id", "radar_feedback", ["paper_id"])
    op.create_table(
        "radar_shown",
        sa.Column("radar_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("batch", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("radar_id", "day", "paper_id", name="pk_radar_shown"),
        sa.ForeignKeyConstraint(["radar_id"], ["radars.id"], name="fk_radar_shown_radar_id_radars", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], name="fk_radar_shown_paper_id_papers", ondelete="CASCADE"),
    )
    op.create_table(
        "paper_embeddings",
        sa.Column("paper_id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "model", name="pk_paper_embeddings"),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], name="fk_paper_embeddings_paper_id_papers", ondelete="CASCADE"),
    )


def downgrade() -> None:
    for table in ("paper_embeddings", "radar_shown", "radar_feedback", "radar_seeds", "radar_rules", "radars", "users"):
        op.drop_table(table)
