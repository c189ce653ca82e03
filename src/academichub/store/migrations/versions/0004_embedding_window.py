"""Embeddings: the window (tokens of each paper) a vector was made with, so a store keeps one
window when the machines that fill it default to different ones (GPU 128, CPU with AMX 192).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("paper_embeddings", sa.Column("tokens", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("paper_embeddings") as batch:
        batch.drop_column("tokens")
