"""How aggregates are stored: small ones zlib-compressed (CAG3), large ones raw (CAG4);
both read back to the same sums, and blobs written by earlier versions (CAG1, CAG2,
before the raw-score histogram of labelled events existed) still read."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from monitor.metrics import aggregates
from monitor.metrics.aggregates import EventAggregate

#: Blobs written by calmon a7b428c (format 1), from the events ``_earlier_events`` draws.
DATA = Path(__file__).parent / "data"


def _aggregate(n: int, seed: int = 0) -> EventAggregate:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    aggregate = EventAggregate.empty()
    aggregate.add_probabilities(p)
    aggregate.add_scores(np.log(p / (1 - p)))
    aggregate.add_labelled(p, y)
    aggregate.add_label_delays(rng.exponential(3600.0, n))
    aggregate.add_raw_labelled(np.log(p / (1 - p)), p, y)
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
    assert small_blob[:4] == b"CAG3" and large_blob[:4] == b"CAG4"
    raw_size = len(large_blob) - 4
    assert raw_size >= aggregates.COMPRESS_BELOW_BYTES
    # The raw form is exactly the layout the compressed form inflates to: the
    # Spiegelhalter sums, then how many histograms follow.
    assert zlib.decompress(small_blob[4:])[:20] == struct.pack(
        "<ddI", small.spiegelhalter_numerator, small.spiegelhalter_variance, 5
    )
    assert small.n_raw_labelled == 50
    assert _equal(EventAggregate.from_bytes(small_blob), small)
    assert _equal(EventAggregate.from_bytes(large_blob), large)


def _earlier_events() -> list[EventAggregate]:
    """The aggregates the blobs in ``data/`` hold, rebuilt from the same draws."""
    rng = np.random.default_rng(7)
    built = []
    for n in (40, 30):
        p = rng.uniform(size=n)
        y = (rng.uniform(size=n) < p).astype(int)
        aggregate = EventAggregate.empty()
        aggregate.add_probabilities(p)
        aggregate.add_scores(np.log(p / (1 - p)))
        aggregate.add_labelled(p, y)
        aggregate.add_label_delays(rng.exponential(60, n))
        built.append(aggregate)
    return built


@pytest.mark.parametrize("index, name", [(0, "cag1"), (1, "cag2")])
def test_blobs_an_earlier_version_wrote_still_read(index: int, name: str) -> None:
    blob = (DATA / f"aggregate_{name}.bin").read_bytes()
    assert blob[:4] == name.upper().encode()
    read = EventAggregate.from_bytes(blob)
    assert _equal(read, _earlier_events()[index])
    assert read.n_raw_labelled == 0 and read.raw_labelled.n_columns == 4
    # Merged with a new delta and written again (what compaction does), it is format 3.
    read.merge(_aggregate(10))
    again = EventAggregate.from_bytes(read.to_bytes())
    assert again.to_bytes()[:4] == b"CAG3" and again.n_raw_labelled == 10
    assert again.n_labelled == read.n_labelled


def test_a_large_aggregate_written_compressed_still_reads() -> None:
    large = _aggregate(20_000, seed=1)
    raw = large.to_bytes()[4:]
    compressed = b"CAG3" + zlib.compress(raw, level=1)
    assert _equal(EventAggregate.from_bytes(compressed), large)


def test_an_unknown_magic_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="bad magic"):
        EventAggregate.from_bytes(b"CAG9" + b"\0" * 64)


@pytest.mark.parametrize("n", [50, 20_000])  # compressed and raw
def test_a_reader_may_skip_histograms_and_read_the_labelled_cells_alone(n: int) -> None:
    stored = _aggregate(n)
    blob = stored.to_bytes()
    read = EventAggregate.from_bytes(blob, skip=frozenset({"raw_labelled", "scores"}))
    assert read.n_raw_labelled == 0 and read.n_scores == 0
    assert read.raw_labelled.n_columns == len(aggregates.RAW_LABELLED_COLUMNS)
    stored.raw_labelled = aggregates.SparseHistogram.empty(len(aggregates.RAW_LABELLED_COLUMNS))
    stored.scores = aggregates.SparseHistogram.empty(1)
    assert _equal(read, stored)
    labelled = aggregates.labelled_from_bytes(blob)
    assert np.array_equal(labelled.keys, stored.labelled.keys)
    assert np.array_equal(labelled.values, stored.labelled.values)
