"""Database plumbing: engines (``engine``), the tables (``tables``), Alembic migrations
(``migrate``; the revisions are in ``store/migrations/``), set-at-a-time SQL helpers
(``sql``) and the readiness check (``health``)."""
