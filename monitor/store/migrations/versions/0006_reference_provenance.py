"""What a drift reference was: on each latest result, and on each stored reference.

- ``window_results.reference_json``: the reference the result was measured against
  (source snapshot, fixed or trailing; the period; events per distribution). Results
  written before it have none.
- ``references.psi_bins``: the PSI bins asked for when it was fitted, so that a fixed
  reference is refitted when ``reference.psi_bins`` changes. NULL in older rows.

Revision ID: 0006_reference_provenance
Revises: 0005_aggregate_deltas
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_reference_provenance"
down_revision = "0005_aggregate_deltas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("window_results") as table:
        table.add_column(sa.Column("reference_json", sa.Text(), nullable=True))
    with op.batch_alter_table("references") as table:
        table.add_column(sa.Column("psi_bins", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("references") as table:
        table.drop_column("psi_bins")
    with op.batch_alter_table("window_results") as table:
        table.drop_column("reference_json")
