"""Delivery: each user's channels (an e-mail address or a chat webhook, for one radar or all of
them, daily or weekly, in zh or en) and one row per (user, channel, radar-or-all, period), the
record that makes a digest go out once.

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_channels",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("radar_id", sa.Integer),
        sa.Column("cadence", sa.String(8), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_channels"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_delivery_channels_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["radar_id"], ["radars.id"], name="fk_delivery_channels_radar_id_radars",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_delivery_channels_user_id", "delivery_channels", ["user_id"])
    op.create_index("ix_delivery_channels_radar_id", "delivery_channels", ["radar_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("channel_id", sa.Integer, nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("message_id", sa.String(255)),
        sa.Column("worker", sa.String(128)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_deliveries_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["delivery_channels.id"], name="fk_deliveries_channel_id_delivery_channels",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("user_id", "channel_id", "scope", "period", name="uq_deliveries_user_id"),
    )
    op.create_index("ix_deliveries_channel_id", "deliveries", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_channel_id", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_delivery_channels_radar_id", table_name="delivery_channels")
    op.drop_index("ix_delivery_channels_user_id", table_name="delivery_channels")
    op.drop_table("delivery_channels")
