"""Predictions from files and DataFrames instead of Kafka: ``calmon evaluate``, the
Python API (``monitor.evaluate``) and ``calmon backfill``.

A file's rows are checked as ingest checks messages (``checks.py``), reduced to the same
mergeable aggregates the store keeps (``accumulate.py``), and evaluated by the window
code the daemon runs (``evaluation.py``), so the same events give the same numbers.
"""
