"""Events (predictions joined with labels), per-bucket aggregates, series.

Revision ID: 0001_events
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_events"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256)),
        sa.Column("event_time_ms", sa.BigInteger()),
        sa.Column("raw_score", sa.Float()),
        sa.Column("probability", sa.Float()),
        sa.Column("segment_json", sa.Text()),
        sa.Column("label", sa.SmallInteger()),
        sa.Column("label_time_ms", sa.BigInteger()),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "event_id", name="pk_events"),
    )
    op.create_index("ix_events_event_time_ms", "events", ["event_time_ms"])
    op.create_index("ix_events_created_ms", "events", ["created_ms"])
    op.create_table(
        "aggregates",
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("segment", sa.String(513), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("bucket_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model_id",
            "model_version",
            "segment",
            "resolution_s",
            "bucket_start_ms",
            name="pk_aggregates",
        ),
    )
    op.create_index(
        "ix_aggregates_resolution_bucket", "aggregates", ["resolution_s", "bucket_start_ms"]
    )
    op.create_table(
        "series",
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("segment", sa.String(513), nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_prediction_ms", sa.BigInteger()),
        sa.Column("last_label_ms", sa.BigInteger()),
        sa.PrimaryKeyConstraint("model_id", "model_version", "segment", name="pk_series"),
    )


def downgrade() -> None:
    op.drop_table("series")
    op.drop_index("ix_aggregates_resolution_bucket", table_name="aggregates")
    op.drop_table("aggregates")
    op.drop_index("ix_events_created_ms", table_name="events")
    op.drop_index("ix_events_event_time_ms", table_name="events")
    op.drop_table("events")
