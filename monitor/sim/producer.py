"""Produces a scenario's traffic into Kafka in real time, rate limited and bounded.

Predictions are stamped with the wall clock when produced; each label is produced when
its delay has passed (so a run must last longer than the delays for labels to arrive;
labels still pending at the end are counted and not sent). Some labels are sent before
their prediction, some never; a share of messages is malformed on purpose.
"""

from __future__ import annotations

import heapq
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from kafka import KafkaProducer

from monitor.settings import TopicSettings
from monitor.sim.scenario import Events, Scenario, generate

TICK_S = 0.1
#: Bad input of each kind the ingest validator names (docs/messages.md, "Dead letters").
MALFORMED: tuple[bytes, ...] = (
    b'{"event_id": "broken", "model_id": ',  # unparseable_json
    b'["not", "an", "object"]',  # not_an_object
    b'{"model_id": "m", "model_version": "v1", "timestamp": 1, "probability": 0.5}',
    b'{"event_id": "x", "model_id": "m", "model_version": "v1", "timestamp": 1, '
    b'"probability": 1.7}',  # bad_probability
    b'{"event_id": "x", "model_id": "m", "model_version": "v1", "timestamp": 1, '
    b'"raw_score": NaN}',  # not JSON either: NaN is not a JSON number
    b'{"event_id": "x", "model_id": "m", "label": 2, "timestamp": 1}',  # bad_label
    b'{"event_id": "x", "model_id": "m", "model_version": "v1", "timestamp": "yesterday", '
    b'"probability": 0.5}',  # bad_timestamp
)


#: A deployed recalibration: (raw scores, served probabilities) -> new probabilities.
Deployed = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class SimulationStats:
    predictions: int = 0
    labels: int = 0
    labels_early: int = 0
    labels_never: int = 0
    labels_pending_at_end: int = 0
    malformed: int = 0


class Simulator:
    def __init__(
        self,
        scenario: Scenario,
        send: Callable[[str, bytes], Any],
        topics: TopicSettings,
        *,
        rate: float,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        run_id: str | None = None,
    ) -> None:
        """``run_id`` goes into every event id (default: a new random one): ids of two
        runs against one store never collide, so a second run's events are not taken
        for replays of the first's and dropped."""
        self._scenario = scenario
        self._run_id = run_id if run_id is not None else secrets.token_hex(4)
        self._send = send
        self._topics = topics
        self._rate = rate
        self._rng = np.random.default_rng(seed)
        self._clock = clock
        self._labels: list[tuple[float, int, bytes]] = []  # (due, tiebreak, payload)
        self._next_id = 0
        self.stats = SimulationStats()
        weights = np.array([m.weight for m in scenario.models])
        self._shares = weights / weights.sum()
        #: (segment, calibrator version, correction of p): a deployed recalibration.
        self._calibrator: tuple[dict[str, str], str, Deployed] | None = None

    def set_calibrator(
        self,
        segment: Mapping[str, str],
        version: str,
        correct: Deployed,
    ) -> None:
        """From now on, events of ``segment`` are served ``correct(raw_score, probability)``
        as ``calibrator_version`` ``version``: a deployed recalibration (a correction of
        the probability, or a new calibrator of the raw score). Safe to call from
        another thread (one reference swapped)."""
        self._calibrator = (dict(segment), version, correct)

    def run(self, *, duration_s: float | None, count: int | None, stop: Callable[[], bool]) -> None:
        """Produce until ``duration_s`` passes, ``count`` predictions are sent, or stop()."""
        start = self._clock()
        owed = 0.0
        while not stop():
            now = self._clock()
            elapsed = now - start
            if duration_s is not None and elapsed >= duration_s:
                break
            if count is not None and self.stats.predictions >= count:
                break
            owed += self._rate * TICK_S
            n = int(owed)
            owed -= n
            if count is not None:
                n = min(n, count - self.stats.predictions)
            self._produce_predictions(n, now, elapsed)
            self._produce_due_labels(now)
            time.sleep(max(0.0, TICK_S - (self._clock() - now)))
        self.stats.labels_pending_at_end = len(self._labels)

    def _produce_predictions(self, n: int, now: float, elapsed: float) -> None:
        if n == 0:
            return
        per_model = self._rng.multinomial(n, self._shares)
        for model, k in zip(self._scenario.models, per_model, strict=True):
            if k:
                self._produce_events(
                    generate(self._rng, self._scenario, model, int(k), elapsed), now
                )

    def _produce_events(self, events: Events, now: float) -> None:
        spec = self._scenario.labels
        model = events.model
        delays = spec.median_delay * np.exp(
            spec.delay_sigma * self._rng.standard_normal(events.label.size)
        )
        fate = self._rng.uniform(size=events.label.size)
        probability, calibrated = self._served(events)
        for i in range(events.label.size):
            if self._rng.uniform() < self._scenario.malformed:
                self._send(self._topics.raw_scores, MALFORMED[self._next_id % len(MALFORMED)])
                self.stats.malformed += 1
            event_id = f"sim-{self._run_id}-{self._next_id}"
            self._next_id += 1
            if events.probabilities is not None:
                self._produce_multiclass(events, i, event_id, now, float(delays[i]), fate[i])
                continue
            prediction = {
                "event_id": event_id,
                "model_id": model.model_id,
                "model_version": model.model_version,
                "timestamp": int(now * 1000),
                "raw_score": float(events.raw_score[i]),
                "probability": float(probability[i]),
            }
            if calibrated[i] is not None:
                prediction["calibrator_version"] = calibrated[i]
            if events.segments[i]:
                prediction["segment"] = events.segments[i]
            label = {
                "event_id": event_id,
                "model_id": model.model_id,
                "label": int(events.label[i]),
            }
            if fate[i] < spec.never:
                self.stats.labels_never += 1
            elif fate[i] < spec.never + spec.before_prediction:
                self._send(
                    self._topics.labels, orjson.dumps({**label, "timestamp": int(now * 1000)})
                )
                self.stats.labels += 1
                self.stats.labels_early += 1
            else:
                due = now + float(delays[i])
                payload = orjson.dumps({**label, "timestamp": int(due * 1000)})
                heapq.heappush(self._labels, (due, self._next_id, payload))
            self._send_prediction(prediction)

    def _produce_multiclass(
        self, events: Events, i: int, event_id: str, now: float, delay: float, fate: float
    ) -> None:
        """A multi-class event: class probabilities, and the label's class name."""
        model = events.model
        assert model.classes is not None and events.probabilities is not None
        prediction: dict[str, Any] = {
            "event_id": event_id,
            "model_id": model.model_id,
            "model_version": model.model_version,
            "timestamp": int(now * 1000),
            "probabilities": dict(
                zip(model.classes, events.probabilities[i].tolist(), strict=True)
            ),
        }
        if events.segments[i]:
            prediction["segment"] = events.segments[i]
        label = {
            "event_id": event_id,
            "model_id": model.model_id,
            "label": model.classes[int(events.label[i])],
        }
        self._schedule_label(label, now, delay, fate)
        self._send(self._topics.probabilities, orjson.dumps(prediction))
        self.stats.predictions += 1

    def _schedule_label(self, label: dict[str, Any], now: float, delay: float, fate: float) -> None:
        spec = self._scenario.labels
        if fate < spec.never:
            self.stats.labels_never += 1
        elif fate < spec.never + spec.before_prediction:
            self._send(self._topics.labels, orjson.dumps({**label, "timestamp": int(now * 1000)}))
            self.stats.labels += 1
            self.stats.labels_early += 1
        else:
            due = now + delay
            payload = orjson.dumps({**label, "timestamp": int(due * 1000)})
            heapq.heappush(self._labels, (due, self._next_id, payload))

    def _served(self, events: Events) -> tuple[np.ndarray, list[str | None]]:
        """The probabilities served, and each event's calibrator version (None: none)."""
        deployed = self._calibrator
        if deployed is None:
            return events.probability, [None] * events.label.size
        segment, version, correct = deployed
        chosen = np.array(
            [all(s.get(k) == v for k, v in segment.items()) for s in events.segments], dtype=bool
        )
        probability = events.probability.copy()
        if chosen.any():
            probability[chosen] = correct(events.raw_score[chosen], probability[chosen])
        return probability, [version if c else None for c in chosen]

    def _send_prediction(self, prediction: dict[str, Any]) -> None:
        # Raw score and probability in one message when they share a topic, else in two.
        if self._topics.raw_scores == self._topics.probabilities:
            self._send(self._topics.raw_scores, orjson.dumps(prediction))
        else:
            raw = {k: v for k, v in prediction.items() if k != "probability"}
            calibrated = {k: v for k, v in prediction.items() if k != "raw_score"}
            self._send(self._topics.raw_scores, orjson.dumps(raw))
            self._send(self._topics.probabilities, orjson.dumps(calibrated))
        self.stats.predictions += 1

    def _produce_due_labels(self, now: float) -> None:
        while self._labels and self._labels[0][0] <= now:
            _, _, payload = heapq.heappop(self._labels)
            self._send(self._topics.labels, payload)
            self.stats.labels += 1


def kafka_sender(options: dict[str, Any]) -> tuple[Callable[[str, bytes], Any], KafkaProducer]:
    producer = KafkaProducer(linger_ms=20, **options)
    return producer.send, producer
