"""Rows that repeat an event: merged as the store merges them, so that ``calmon
evaluate`` counts an event once, as ``calmon backfill`` and ingest do.

The store's rules (``store/write/one_by_one.py``, docs/messages.md): ``(model_id,
event_id)`` names an event; its first prediction fixes the model version, the time and
the segment; a raw score or a probability is taken from the first row that has one (a
later row fills a field still empty, never overwrites one); the first label that is
not past the horizon wins (a label without ``label_timestamp`` is stamped with its own
row's time, as backfill stamps it).

Finding the repeats costs little when there are none, the usual case: each row's key is
reduced to a 64-bit hash while the file is read (array operations over the string
buffers, eight bytes at a time), and one sort of the hashes at the end finds the keys
seen twice (8 bytes a row). Only then is the file read a second time, the
rows of those hashes set aside and merged by their exact keys: a hash collision costs
the second reading, never a wrong merge.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.offline.events import NO_LABEL, NO_TIME, Events

_BASE = np.uint64(0x100000001B3)  # odd: the polynomial's base
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * _MIX_1
        h = (h ^ (h >> np.uint64(27))) * _MIX_2
        return h ^ (h >> np.uint64(31))


#: A word's first r bytes (little-endian: its low r bytes), r = 0..8.
_FIRST_BYTES = np.array([0, *((1 << (8 * r)) - 1 for r in range(1, 8)), 2**64 - 1], dtype=np.uint64)


def text_hashes(array: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string of ``array`` (a string or dictionary array), from
    its bytes read eight at a time: one gather per 8 bytes of the longest string, not
    one operation per byte."""
    if pa.types.is_dictionary(array.type):
        per_value = text_hashes(array.dictionary.cast(pa.string()))
        return per_value[np.asarray(array.indices, dtype=np.int64)]
    if not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    lengths = np.diff(offsets).astype(np.int64)
    hashes = lengths.astype(np.uint64) * _BASE
    if hashes.size == 0 or offsets[-1] == offsets[0]:
        return _mix(hashes)
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
    # Every byte offset as the start of a little-endian 8-byte word (unaligned reads).
    words = np.ndarray((padded.size - 7,), dtype="<u8", buffer=padded, strides=(1,))
    starts = (offsets[:-1] - offsets[0]).astype(np.int64)
    shortest = int(lengths.min())
    with np.errstate(over="ignore"):
        for at in range(0, int(lengths.max()), 8):
            if shortest >= at + 8:  # every string has a whole word here
                hashes = _step(hashes, words[starts + at])
                continue
            some = np.flatnonzero(lengths > at)
            tail = _FIRST_BYTES[np.minimum(lengths[some] - at, 8)]
            hashes[some] = _step(hashes[some], words[starts[some] + at] & tail)
    return _mix(hashes)


def _step(hashes: np.ndarray, word: np.ndarray) -> np.ndarray:
    mixed = (hashes ^ word) * _MIX_1
    return mixed ^ (mixed >> np.uint64(29))


def key_hashes(events: Events) -> np.ndarray:
    """A 64-bit hash of each event's ``(model_id, event_id)``."""
    with np.errstate(over="ignore"):
        return _mix(text_hashes(events.event_id) ^ (_mix(text_hashes(events.model_id)) * _BASE))


class KeyLog:
    """The key hashes of every row read, to find the keys read more than once."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []

    def add(self, events: Events) -> None:
        if len(events):
            self._parts.append(key_hashes(events))

    def repeated(self) -> np.ndarray:
        """The hashes seen more than once, sorted (usually none)."""
        if not self._parts:
            return np.empty(0, dtype=np.uint64)
        hashes = np.concatenate(self._parts)
        self._parts = []
        hashes.sort()
        return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


def among(events: Events, repeated: np.ndarray) -> np.ndarray:
    """Which events have a key hash in ``repeated`` (sorted)."""
    if repeated.size == 0 or not len(events):
        return np.zeros(len(events), dtype=bool)
    hashes = key_hashes(events)
    at = np.minimum(np.searchsorted(repeated, hashes), repeated.size - 1)
    return repeated[at] == hashes


def merge_repeats(events: Events, label_horizon_ms: int | None) -> Events:
    """One event per ``(model_id, event_id)`` of ``events`` (in file order), merged by
    the store's rules (the module docstring)."""
    if not len(events):
        return events
    order, starts = _grouped(events)
    first = order[starts]
    sizes = np.diff(np.append(starts, order.size))
    owner = np.repeat(first, sizes)  # for each row (in group order), its group's first row
    merged = events.take(first)
    merged.raw_score = _first_given(events.raw_score[order], starts)
    merged.probability = _first_given(events.probability[order], starts)
    label = events.label[order]
    label_time = events.label_time_ms[order]
    stamped = np.where(label_time == NO_TIME, events.time_ms[order], label_time)
    usable = label != NO_LABEL
    if label_horizon_ms is not None:
        usable &= stamped - events.time_ms[owner] <= label_horizon_ms
    winner = _first_where(usable, starts)
    has = winner >= 0
    merged.label = np.where(has, label[np.maximum(winner, 0)], NO_LABEL).astype(label.dtype)
    merged.label_time_ms = np.where(has, label_time[np.maximum(winner, 0)], NO_TIME)
    return merged


def _grouped(events: Events) -> tuple[np.ndarray, np.ndarray]:
    """Row positions grouped by exact key, file order within a group; group starts."""
    models = pc.dictionary_encode(events.model_id.cast(pa.string()))
    ids = pc.dictionary_encode(events.event_id.cast(pa.string()))
    model_codes = np.asarray(models.indices, dtype=np.int64)
    id_codes = np.asarray(ids.indices, dtype=np.int64)
    key = model_codes * len(ids.dictionary) + id_codes
    order = np.lexsort((events.rows, key))
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    return order, starts


def _first_where(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group, the position of its first True (-1: none)."""
    n = mask.size
    candidates = np.where(mask, np.arange(n), n)
    first = np.minimum.reduceat(candidates, starts)
    return np.where(first < n, first, -1)


def _first_given(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group, its first value that is not NaN (NaN: none)."""
    at = _first_where(~np.isnan(values), starts)
    return np.where(at >= 0, values[np.maximum(at, 0)], np.nan)
