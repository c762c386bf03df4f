"""The ingest write path: a batch of validated records into ``events`` and the
aggregate deltas, in one transaction (``event_store``).

The rules (docs/messages.md, "Delayed labels") are owned by ``join``: when a label joins its
prediction, when one is dropped for the label horizon, and what a join adds to the
aggregates. Two paths apply them: ``common_cases`` decides most records set-at-a-time,
``one_by_one`` the rest; ``deltas`` collects what the batch adds to each bucket.
"""
