"""Which models and versions ingest accepts: an allow-list and caps on their number.

Every model version becomes series (one per segment value and window), results on
every window run and samples on every scrape, so one producer sending junk model ids
could flood Prometheus and stall every window job. ``ingest.models`` (globs) says which
model ids are accepted at all; ``ingest.max_models`` and
``ingest.max_versions_per_model`` cap how many distinct ones are. A message past either
is dead-lettered, as ``model_not_allowed`` or ``over_budget`` (docs/messages.md,
"Cardinality budgets").

The budget also keeps each model to one kind and its classes within a cap: a model is
binary or multi-class, as its first prediction was (a prediction of the other kind is
dead-lettered as ``kind_mismatch``), and a multi-class model's distinct classes stay
within ``ingest.multiclass.max_classes`` (``too_many_classes`` for a prediction that
would bring in more).

What is already known stays accepted: the budget starts from the model versions the
store has seen predictions of within the event retention
(``store.aggregates.active_model_versions``), so a restart never turns away a model
that was accepted before it, even if the caps were lowered since.

>>> budget = CardinalityBudget(models=["fraud-*"], max_models=1, max_versions_per_model=1)
>>> budget.admit("fraud-eu", "v1"), budget.admit("fraud-eu", "v1")
(None, None)
>>> budget.admit("fraud-eu", "v2"), budget.admit("fraud-us", "v1"), budget.admit("spam", "v1")
('over_budget', 'over_budget', 'model_not_allowed')
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence

from monitor.core.records import Label, Prediction
from monitor.ingest.validation import InvalidMessage
from monitor.settings import IngestSettings

MODEL_NOT_ALLOWED = "model_not_allowed"
OVER_BUDGET = "over_budget"
REASONS = (MODEL_NOT_ALLOWED, OVER_BUDGET)
#: Reasons of ``validation.REASONS`` the budget gives too.
KIND_MISMATCH = "kind_mismatch"
TOO_MANY_CLASSES = "too_many_classes"


class CardinalityBudget:
    """Admits (model id, version) pairs in the order ingest meets them.

    ``models``: glob patterns (``fnmatch``, case-sensitive) of the accepted model ids;
    None accepts every id. ``known``: pairs accepted before (from the store), admitted
    whatever the caps; those of models the allow-list no longer matches are left out.
    """

    def __init__(
        self,
        *,
        models: Sequence[str] | None = None,
        max_models: int = 200,
        max_versions_per_model: int = 50,
        known: Iterable[tuple[str, str]] = (),
        max_classes: int = 100,
        known_classes: Iterable[tuple[str, str]] = (),
    ) -> None:
        # One regular expression for all patterns: a rejected id is matched on every
        # message, and is not cached (junk ids are what this guards against).
        self._allowed = (
            None
            if models is None
            else re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in models))
        )
        self._max_models = max_models
        self._max_versions = max_versions_per_model
        self._versions: dict[str, set[str]] = {}
        for model_id, version in known:
            if self.allows(model_id):
                self._versions.setdefault(model_id, set()).add(version)
        self._max_classes = max_classes
        #: Per multi-class model, its classes; a model known without any is binary.
        self._classes: dict[str, set[str]] = {}
        for model_id, name in known_classes:
            self._classes.setdefault(model_id, set()).add(name)
        self._binary = {model_id for model_id in self._versions if model_id not in self._classes}

    @classmethod
    def configured(
        cls,
        ingest: IngestSettings,
        known: Iterable[tuple[str, str]] = (),
        known_classes: Iterable[tuple[str, str]] = (),
    ) -> CardinalityBudget:
        return cls(
            models=ingest.models,
            max_models=ingest.max_models,
            max_versions_per_model=ingest.max_versions_per_model,
            known=known,
            max_classes=ingest.multiclass.max_classes,
            known_classes=known_classes,
        )

    @property
    def models(self) -> int:
        """Distinct models accepted (known or admitted)."""
        return len(self._versions)

    @property
    def model_versions(self) -> int:
        """Distinct (model, version) pairs accepted."""
        return sum(len(versions) for versions in self._versions.values())

    def allows(self, model_id: str) -> bool:
        return self._allowed is None or self._allowed.match(model_id) is not None

    def admit(self, model_id: str, model_version: str) -> str | None:
        """None if a prediction of this model version is accepted (and from now on
        counted), else the reason it is not."""
        versions = self._versions.get(model_id)
        if versions is not None and model_version in versions:
            return None  # the common case: one dict and one set lookup
        if not self.allows(model_id):
            return MODEL_NOT_ALLOWED
        if versions is None:
            if len(self._versions) >= self._max_models:
                return OVER_BUDGET
            self._versions[model_id] = {model_version}
            return None
        if len(versions) >= self._max_versions:
            return OVER_BUDGET
        versions.add(model_version)
        return None

    def admit_label(self, model_id: str) -> str | None:
        """A label only joins a prediction, so only the allow-list applies: a label of
        a model over budget waits for a prediction that is never stored, and is
        counted as ``no_prediction`` after the label horizon, like any orphan."""
        return None if self.allows(model_id) else MODEL_NOT_ALLOWED

    def check(self, record: Prediction | Label) -> None:
        """Raise :class:`InvalidMessage` (reason and detail) if ``record`` is past the
        budget; a prediction within it is counted."""
        if type(record) is Prediction:
            versions = self._versions.get(record.model_id)
            if (
                versions is not None
                and record.model_version in versions
                and record.probabilities is None
                and record.model_id in self._binary
            ):
                return  # the common case, in few steps: this runs for every prediction
            self._check_kind(record)
            reason = self.admit(record.model_id, record.model_version)
            if reason is None and record.probabilities is not None:
                self._classes.setdefault(record.model_id, set()).update(record.probabilities)
            elif reason is None:
                self._binary.add(record.model_id)
        else:
            reason = self.admit_label(record.model_id)
        if reason is None:
            return
        model = repr(record.model_id[:80])
        if reason == MODEL_NOT_ALLOWED:
            raise InvalidMessage(reason, f"model_id {model} matches none of ingest.models")
        if record.model_id in self._versions:
            detail = (
                f"model {model} already has {self._max_versions} versions "
                "(ingest.max_versions_per_model)"
            )
        else:
            detail = f"{self._max_models} models are accepted already (ingest.max_models)"
        raise InvalidMessage(reason, detail)

    def _check_kind(self, record: Prediction) -> None:
        """Raise if the prediction is not of its model's kind, or would bring the
        model's classes past the cap; nothing is counted here."""
        model_id = record.model_id
        probabilities = record.probabilities
        if probabilities is None:
            if model_id in self._classes:
                raise InvalidMessage(
                    KIND_MISMATCH,
                    f"model {model_id[:80]!r} is multi-class: its predictions carry probabilities",
                )
            return
        if model_id in self._binary:
            raise InvalidMessage(
                KIND_MISMATCH,
                f"model {model_id[:80]!r} is binary: its predictions carry probability "
                "or raw_score, not probabilities",
            )
        known = self._classes.get(model_id)
        if known is None:
            if len(probabilities) > self._max_classes:
                raise self._too_many(model_id, len(probabilities))
            return
        if known.issuperset(probabilities):
            return  # the common case
        together = len(known.union(probabilities))
        if together > self._max_classes:
            raise self._too_many(model_id, together)

    def _too_many(self, model_id: str, count: int) -> InvalidMessage:
        return InvalidMessage(
            TOO_MANY_CLASSES,
            f"model {model_id[:80]!r} would have {count} classes > "
            f"ingest.multiclass.max_classes ({self._max_classes})",
        )
