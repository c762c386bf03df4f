"""Multi-class models: what the late label join needs, and their aggregates.

- ``events.probabilities_json``: a multi-class prediction's class probabilities
  (canonical JSON, keys sorted); ``events.label_class``: a multi-class label's class.
- ``aggregates.multiclass_blob``, ``aggregate_deltas.multiclass_blob``: the bucket's
  ``MulticlassAggregate`` (NULL for binary series, and in older rows).
- ``model_classes``: every class each multi-class model has had a prediction of (the
  ingest budget starts from it: ``ingest.multiclass.max_classes``).
- ``window_results.classes_json``: the latest per-class values and reliability bins.

Revision ID: 0009_multiclass
Revises: 0008_aggregate_changes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_multiclass"
down_revision = "0008_aggregate_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.add_column(sa.Column("probabilities_json", sa.Text(), nullable=True))
        table.add_column(sa.Column("label_class", sa.String(128), nullable=True))
    for name in ("aggregates", "aggregate_deltas"):
        with op.batch_alter_table(name) as table:
            table.add_column(sa.Column("multiclass_blob", sa.LargeBinary(), nullable=True))
        if op.get_bind().dialect.name == "postgresql":  # compressed already, as in 0005
            op.execute(f"ALTER TABLE {name} ALTER COLUMN multiclass_blob SET STORAGE EXTERNAL")
    with op.batch_alter_table("window_results") as table:
        table.add_column(sa.Column("classes_json", sa.Text(), nullable=True))
    op.create_table(
        "model_classes",
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("class_name", sa.String(128), nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "class_name", name="pk_model_classes"),
    )


def downgrade() -> None:
    # Deltas not compacted yet would be lost; the multi-class aggregates are, with
    # their columns (a binary series' data is kept whole).
    from monitor.store.maintenance.compaction import compact_connection

    compact_connection(op.get_bind(), now_ms=0)
    op.drop_table("model_classes")
    with op.batch_alter_table("window_results") as table:
        table.drop_column("classes_json")
    for name in ("aggregate_deltas", "aggregates"):
        with op.batch_alter_table(name) as table:
            table.drop_column("multiclass_blob")
    with op.batch_alter_table("events") as table:
        table.drop_column("label_class")
        table.drop_column("probabilities_json")
