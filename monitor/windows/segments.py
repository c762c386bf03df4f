"""Which segment series a model exports: top-K values per key, the rest as ``__other__``.

Prometheus must not be flooded by a high-cardinality attribute (a user id slipped into
``segment``), so per segment key only the ``max_segment_values`` values with the most
predictions in the window get their own series; all others are merged into one
``key=__other__`` series, so the totals still add up.
"""

from __future__ import annotations

from collections import defaultdict

from monitor.core.series import OTHER
from monitor.metrics.aggregates import EventAggregate
from monitor.store.aggregates import WindowAggregate


def cap_segments(
    windows: dict[str, WindowAggregate], max_values: int
) -> dict[str, WindowAggregate]:
    """``windows`` maps ``key=value`` (and ``__all__``) to its window aggregate."""
    by_key: dict[str, list[tuple[str, WindowAggregate]]] = defaultdict(list)
    capped: dict[str, WindowAggregate] = {}
    for segment, window in windows.items():
        if "=" in segment:
            by_key[segment.split("=", 1)[0]].append((segment, window))
        else:
            capped[segment] = window
    for key, values in by_key.items():
        values.sort(key=lambda item: (-item[1].predictions, item[0]))
        for segment, window in values[:max_values]:
            capped[segment] = window
        rest = values[max_values:]
        if rest:
            capped[f"{key}={OTHER}"] = WindowAggregate(
                aggregate=EventAggregate.merge_all([w.aggregate for _, w in rest]),
                predictions=sum(w.predictions for _, w in rest),
                buckets=sum(w.buckets for _, w in rest),
            )
    return capped
