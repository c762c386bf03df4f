"""Window results: metric history, latest results, drift references, job claims.

Revision ID: 0002_windows
Revises: 0001_events
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_windows"
down_revision = "0001_events"
branch_labels = None
depends_on = None

SERIES = ("model_id", "model_version", "segment")


def _series_columns() -> list[sa.Column]:
    return [
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("segment", sa.String(513), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "metric_points",
        *_series_columns(),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("evaluated_ms", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            *SERIES, "window", "metric", "evaluated_ms", name="pk_metric_points"
        ),
    )
    op.create_index("ix_metric_points_evaluated_ms", "metric_points", ["evaluated_ms"])
    op.create_table(
        "window_results",
        *_series_columns(),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("evaluated_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("labelled", sa.BigInteger(), nullable=False),
        sa.Column("values_json", sa.Text(), nullable=False),
        sa.Column("bins_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(*SERIES, "window", name="pk_window_results"),
    )
    op.create_table(
        "references",
        *_series_columns(),
        sa.Column("distribution", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("profile_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(*SERIES, "distribution", name="pk_references"),
    )
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("slot_ms", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger()),
        sa.PrimaryKeyConstraint("job", "slot_ms", name="pk_job_runs"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_table("references")
    op.drop_table("window_results")
    op.drop_index("ix_metric_points_evaluated_ms", table_name="metric_points")
    op.drop_table("metric_points")
