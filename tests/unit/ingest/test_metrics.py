"""Ingest's metric helpers against prometheus_client's own behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from monitor.ingest.metrics import LABEL_DELAY_BUCKETS_S, observe_many


def test_observe_many_exports_what_one_observe_per_value_does() -> None:
    # Values on, between and beyond the bucket bounds, zero, and one past the last.
    values = [0.0, 59.999, 60.0, 60.001, 300.0, 3600.5, 86400.0, 2_592_000.0, 2_592_001.0]
    values += list(np.random.default_rng(1).exponential(20_000.0, 500))
    each, bulk = CollectorRegistry(), CollectorRegistry()
    one = Histogram("delay_seconds", "d", buckets=LABEL_DELAY_BUCKETS_S, registry=each)
    many = Histogram("delay_seconds", "d", buckets=LABEL_DELAY_BUCKETS_S, registry=bulk)
    for value in values:
        one.observe(value)
    observe_many(many, values[:200])
    observe_many(many, [])
    observe_many(many, values[200:])

    def exposition(registry: CollectorRegistry) -> list[str]:
        return [
            line
            for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line and "_sum" not in line
        ]

    assert exposition(bulk) == exposition(each)
    summed = [
        bulk.get_sample_value("delay_seconds_sum"),
        each.get_sample_value("delay_seconds_sum"),
    ]
    assert summed[0] == pytest.approx(summed[1], rel=1e-12)  # summed in another order
    at_most_a_minute = sum(value <= 60 for value in values)  # 0, 59.999, 60 and some drawn
    assert bulk.get_sample_value("delay_seconds_bucket", {"le": "60.0"}) == at_most_a_minute
