"""The drift reference each window result was measured against.

A nullable JSON column on the latest results: source (snapshot, fixed, trailing), the
period and the events per distribution. Results written before it have none.

Revision ID: 0006_result_reference
Revises: 0005_aggregate_deltas
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_result_reference"
down_revision = "0005_aggregate_deltas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("window_results") as table:
        table.add_column(sa.Column("reference_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("window_results") as table:
        table.drop_column("reference_json")
