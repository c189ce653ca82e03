"""Feed tokens: each user's rotation counter for the secret Atom feed URLs (app/radar_feeds.py).
A feed URL carries a token signed with the installation's key over (user id, generation);
rotating bumps the generation, so every URL made before stops working. No row: generation 0.

Revision ID: 0013
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_tokens",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("rotated_at", sa.DateTime, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_feed_tokens_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name="pk_feed_tokens"),
    )


def downgrade() -> None:
    op.drop_table("feed_tokens")
