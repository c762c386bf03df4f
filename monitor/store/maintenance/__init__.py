"""Keeping the store small and fast to read: compaction folds ingest's aggregate deltas
into their buckets, retention drops what no window reads any more; ``jobs`` runs both
and exports their gauges."""
