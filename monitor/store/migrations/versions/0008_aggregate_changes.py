"""The change log of the aggregates: what each compaction added to which bucket.

The window jobs keep each series' window aggregate in memory and bring it up to date
with what changed since their last tick (``monitor/windows/incremental.py``).
Compaction, which is the only writer of ``aggregates`` rows once the daemon runs, appends
to ``aggregate_changes`` one record per bucket it changed (the deltas it folded into
that bucket, merged), in the same transaction, numbered by ``aggregate_change_seq``:
one number per compaction transaction, taken under the counter row's lock, so numbers
commit in order and a reader's snapshot holds every record up to the counter it sees.
Records are pruned after a while (``pruned_seq`` says up to which number); a reader
further behind reads its windows afresh.

Revision ID: 0008_aggregate_changes
Revises: 0007_recalibrations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_aggregate_changes"
down_revision = "0007_recalibrations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aggregate_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("segment", sa.String(513), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("bucket_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_aggregate_changes_seq", "aggregate_changes", ["seq"])
    op.create_index("ix_aggregate_changes_created_ms", "aggregate_changes", ["created_ms"])
    counter = op.create_table(
        "aggregate_change_seq",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pruned_seq", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(counter, [{"id": 1, "seq": 0, "pruned_seq": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE aggregate_changes ALTER COLUMN blob SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("aggregate_change_seq")
    op.drop_index("ix_aggregate_changes_created_ms", table_name="aggregate_changes")
    op.drop_index("ix_aggregate_changes_seq", table_name="aggregate_changes")
    op.drop_table("aggregate_changes")
