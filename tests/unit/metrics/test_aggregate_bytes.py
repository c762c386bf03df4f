"""How aggregates are stored: small ones zlib-compressed (CAG1), large ones raw (CAG2);
both read back to the same sums, and blobs written before CAG2 existed still read."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from monitor.metrics import aggregates
from monitor.metrics.aggregates import EventAggregate


def _aggregate(n: int, seed: int = 0) -> EventAggregate:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    aggregate = EventAggregate.empty()
    aggregate.add_probabilities(p)
    aggregate.add_scores(np.log(p / (1 - p)))
    aggregate.add_labelled(p, y)
    aggregate.add_label_delays(rng.exponential(3600.0, n))
    return aggregate


def _equal(a: EventAggregate, b: EventAggregate) -> bool:
    pairs = zip(a._histograms(), b._histograms(), strict=True)
    return all(
        np.array_equal(x.keys, y.keys) and np.array_equal(x.values, y.values) for x, y in pairs
    ) and (a.spiegelhalter_numerator, a.spiegelhalter_variance) == (
        b.spiegelhalter_numerator,
        b.spiegelhalter_variance,
    )


def test_small_aggregates_are_compressed_and_large_ones_stored_raw() -> None:
    small, large = _aggregate(50), _aggregate(20_000)
    small_blob, large_blob = small.to_bytes(), large.to_bytes()
    assert small_blob[:4] == b"CAG1" and large_blob[:4] == b"CAG2"
    raw_size = len(large_blob) - 4
    assert raw_size >= aggregates.COMPRESS_BELOW_BYTES
    # The raw form is exactly the layout the compressed form inflates to.
    assert zlib.decompress(small_blob[4:])[:16] == struct.pack(
        "<dd", small.spiegelhalter_numerator, small.spiegelhalter_variance
    )
    assert _equal(EventAggregate.from_bytes(small_blob), small)
    assert _equal(EventAggregate.from_bytes(large_blob), large)


def test_a_large_aggregate_written_compressed_by_an_earlier_version_still_reads() -> None:
    large = _aggregate(20_000, seed=1)
    raw = large.to_bytes()[4:]
    earlier = b"CAG1" + zlib.compress(raw, level=1)  # how every blob was written before
    assert _equal(EventAggregate.from_bytes(earlier), large)


def test_an_unknown_magic_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="bad magic"):
        EventAggregate.from_bytes(b"CAG9" + b"\0" * 64)
