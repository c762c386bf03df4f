"""Window shards leased by replicas, and the replicas alive: each window's series are
split across replicas (``monitor/store/shards.py``).

Revision ID: 0010_window_shards
Revises: 0009_multiclass
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_window_shards"
down_revision = "0009_multiclass"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "window_shards",
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("done_slot_ms", sa.BigInteger(), nullable=True),
        sa.Column("done_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("window", "shard", name="pk_window_shards"),
    )
    op.create_table(
        "replicas",
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("seen_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_replicas"),
    )


def downgrade() -> None:
    op.drop_table("replicas")
    op.drop_table("window_shards")
