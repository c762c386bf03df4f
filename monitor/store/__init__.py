"""Persistence: every table and every SQL statement of calmon lives here.

- ``db/``: plumbing (engines, tables, migrations, set-at-a-time SQL, health);
- ``migrations/``: the Alembic revisions, the only way tables are made;
- ``write/``: the ingest write path (events, the join and horizon rule, aggregate deltas);
- ``maintenance/``: compaction and retention;
- one module per stored concept: ``aggregates`` (reading windows), ``buckets`` (their
  time buckets), ``changes`` (the aggregates' change log), ``fleet`` (a tick's reads
  for every series of a window at once), ``results`` (window results and their
  history), ``references`` (drift references), ``alerts`` (alert state), ``outbox``
  (webhook deliveries), ``claims`` (which replica runs a scheduled job);
- ``errors``: what callers catch (records refused, store unavailable).
"""
