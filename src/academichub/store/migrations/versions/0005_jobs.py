"""Jobs: the ledger of the job system (one row per idempotency key, the truth about what ran; the
queue only carries messages), and each user's time zone and briefing hour (NULL: the settings').

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("result", sa.JSON),
        sa.Column("worker", sa.String(128)),
        sa.Column("lease_until", sa.DateTime),
        sa.Column("enqueued_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("key", name="uq_jobs_key"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.add_column("users", sa.Column("timezone", sa.String(64)))
    op.add_column("users", sa.Column("briefing_hour", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("briefing_hour")
        batch.drop_column("timezone")
    op.drop_index("ix_jobs_status", table_name="jobs")
    op.drop_table("jobs")
