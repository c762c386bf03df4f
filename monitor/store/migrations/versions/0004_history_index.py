"""Index the metric history by model, metric and time, as the JSON API reads it.

The primary key starts (model_id, model_version, segment, window, metric): a history
query that names the model and metric but not every series column walked all of the
model's points, and the table grows by one row per metric, series and evaluation.

Revision ID: 0004_history_index
Revises: 0003_alerts
"""

from __future__ import annotations

from alembic import op

revision = "0004_history_index"
down_revision = "0003_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_metric_points_model_metric_time",
        "metric_points",
        ["model_id", "metric", "evaluated_ms"],
    )


def downgrade() -> None:
    op.drop_index("ix_metric_points_model_metric_time", table_name="metric_points")
