"""Recommended calibrators awaiting verification, and their verdicts.

Revision ID: 0007_recalibrations
Revises: 0006_reference_provenance
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_recalibrations"
down_revision = "0006_reference_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recalibrations",
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("segment", sa.String(513), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("fired_ms", sa.BigInteger(), nullable=False),
        sa.Column("webhooks_json", sa.Text(), nullable=False),
        sa.Column("before_json", sa.Text(), nullable=False),
        sa.Column("recommendation_json", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome_json", sa.Text(), nullable=True),
        sa.Column("decided_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name="pk_recalibrations"),
    )
    op.create_index("ix_recalibrations_window_state", "recalibrations", ["window", "state"])


def downgrade() -> None:
    op.drop_index("ix_recalibrations_window_state", table_name="recalibrations")
    op.drop_table("recalibrations")
