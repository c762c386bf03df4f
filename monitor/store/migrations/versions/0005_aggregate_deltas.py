"""Aggregate deltas: ingest appends what a batch adds to a bucket; compaction merges.

Every ingest batch used to rewrite each aggregate row it touched, and the hour and day
rows of a busy series hold hundreds of kilobytes of sums: a cost (and on PostgreSQL a
WAL volume) per batch that grew with the number of active series, whatever the batch
size. Deltas hold only their batch's events; compaction folds them into ``aggregates``.

PostgreSQL: both blob columns are stored out of line without compression (STORAGE
EXTERNAL). Its default compressed every blob (pglz) on write, for little gain: small
blobs are zlib-compressed already and large ones are float sums; inserting a batch's
deltas took about three times as long with it.

Revision ID: 0005_aggregate_deltas
Revises: 0004_history_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_aggregate_deltas"
down_revision = "0004_history_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aggregate_deltas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("segment", sa.String(513), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("bucket_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_aggregate_deltas_bucket",
        "aggregate_deltas",
        ["model_id", "model_version", "segment", "resolution_s", "bucket_start_ms"],
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in ("aggregate_deltas", "aggregates"):
            op.execute(f"ALTER TABLE {table} ALTER COLUMN blob SET STORAGE EXTERNAL")


def downgrade() -> None:
    # Deltas not compacted yet would be lost: fold them into their buckets first.
    from monitor.store.maintenance.compaction import compact_connection

    # Later revisions' downgrades compact first (0009), leaving none; the query below
    # would name their columns, gone by now.
    if op.get_bind().execute(sa.text("SELECT 1 FROM aggregate_deltas LIMIT 1")).first():
        compact_connection(op.get_bind(), now_ms=0, log_changes=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE aggregates ALTER COLUMN blob SET STORAGE EXTENDED")
    op.drop_index("ix_aggregate_deltas_bucket", table_name="aggregate_deltas")
    op.drop_table("aggregate_deltas")
