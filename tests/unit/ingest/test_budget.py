"""The cardinality budget: allow-list globs, caps at their edges, what is known first."""

from __future__ import annotations

import pytest

from monitor.core.records import Label, Prediction
from monitor.ingest.budget import CardinalityBudget
from monitor.ingest.validation import InvalidMessage
from monitor.settings import IngestSettings


def test_the_allow_list_is_a_set_of_case_sensitive_globs() -> None:
    budget = CardinalityBudget(models=["fraud-*", "churn", "ab[12]"])
    assert [budget.allows(m) for m in ["fraud-eu", "fraud-", "churn", "ab1", "ab3"]] == [
        True, True, True, True, False,
    ]  # fmt: skip
    # Anchored at both ends, and case-sensitive on every platform.
    assert not any(budget.allows(m) for m in ["x-fraud-eu", "churned", "Churn", "fraud"])
    assert CardinalityBudget().allows("anything at all")


def test_models_are_capped_at_max_models_exactly() -> None:
    budget = CardinalityBudget(max_models=3)
    assert [budget.admit(f"m{i}", "v1") for i in range(4)] == [None, None, None, "over_budget"]
    assert budget.admit("m2", "v1") is None  # admitted ones stay admitted
    assert budget.admit("m3", "v1") == "over_budget"  # and rejected ones stay out
    assert (budget.models, budget.model_versions) == (3, 3)


def test_versions_are_capped_per_model_exactly() -> None:
    budget = CardinalityBudget(max_versions_per_model=2)
    assert [budget.admit("a", v) for v in ["v1", "v2", "v3"]] == [None, None, "over_budget"]
    assert budget.admit("b", "v1") is None and budget.admit("b", "v2") is None  # per model
    assert budget.admit("a", "v1") is None
    assert (budget.models, budget.model_versions) == (2, 4)


def test_known_versions_are_accepted_whatever_the_caps_unless_no_longer_allowed() -> None:
    known = [("a", "v1"), ("a", "v2"), ("a", "v3"), ("b", "v1"), ("old", "v1")]
    budget = CardinalityBudget(
        models=["a", "b", "c"], max_models=2, max_versions_per_model=2, known=known
    )
    assert (budget.models, budget.model_versions) == (2, 4)  # "old" is not allowed any more
    assert [budget.admit("a", v) for v in ["v1", "v2", "v3"]] == [None, None, None]
    assert budget.admit("a", "v4") == "over_budget"
    assert budget.admit("c", "v1") == "over_budget"  # two models known already
    assert budget.admit("old", "v1") == "model_not_allowed"


def test_labels_face_only_the_allow_list() -> None:
    budget = CardinalityBudget(models=["a*"], max_models=1)
    budget.check(Prediction("a1", "e", "v1", 0, probability=0.5))
    budget.check(Label("a2", "e", 1, 0))  # a2 is over budget, but a label adds no series
    with pytest.raises(InvalidMessage, match="model_not_allowed: model_id 'b' matches none"):
        budget.check(Label("b", "e", 1, 0))


def test_check_names_the_setting_that_refused() -> None:
    budget = CardinalityBudget.configured(
        IngestSettings(max_models=1, max_versions_per_model=1), known=[("a", "v1")]
    )
    with pytest.raises(InvalidMessage) as raised:
        budget.check(Prediction("a", "e", "v2", 0, probability=0.5))
    assert raised.value.reason == "over_budget"
    assert "already has 1 versions (ingest.max_versions_per_model)" in raised.value.detail
    with pytest.raises(InvalidMessage) as raised:
        budget.check(Prediction("b", "e", "v1", 0, probability=0.5))
    assert "1 models are accepted already (ingest.max_models)" in raised.value.detail
    assert budget.model_versions == 1  # nothing refused was counted


def _classes(model: str, *names: str, version: str = "v1") -> Prediction:
    return Prediction(model, "e", version, 0, probabilities={n: 1 / len(names) for n in names})


def _reason(budget: CardinalityBudget, record: Prediction) -> str | None:
    try:
        budget.check(record)
    except InvalidMessage as problem:
        return problem.reason
    return None


def test_a_model_keeps_the_kind_of_its_first_prediction() -> None:
    budget = CardinalityBudget()
    assert _reason(budget, _classes("intent", "a", "b")) is None
    assert _reason(budget, Prediction("intent", "e", "v2", 0, probability=0.5)) == "kind_mismatch"
    assert _reason(budget, Prediction("fraud", "e", "v1", 0, raw_score=1.0)) is None
    assert _reason(budget, _classes("fraud", "a", "b")) == "kind_mismatch"
    assert budget.model_versions == 2  # the refused ones are not counted


def test_a_models_classes_are_capped_across_its_predictions() -> None:
    budget = CardinalityBudget(max_classes=4)
    assert _reason(budget, _classes("intent", "a", "b", "c")) is None
    assert _reason(budget, _classes("intent", "a", "d", version="v2")) is None  # 4 classes
    assert _reason(budget, _classes("intent", "b", "e")) == "too_many_classes"
    assert _reason(budget, _classes("intent", "d", "c", "b", "a")) is None  # all known
    assert _reason(budget, _classes("other", "1", "2", "3", "4", "5")) == "too_many_classes"
    assert _reason(budget, _classes("other", "1", "2")) is None  # nothing was kept of it


def test_known_classes_start_the_count_and_the_kinds() -> None:
    budget = CardinalityBudget.configured(
        IngestSettings(multiclass={"max_classes": 2}),
        known=[("intent", "v1"), ("fraud", "v1")],
        known_classes=[("intent", "a"), ("intent", "b"), ("intent", "c")],
    )
    assert _reason(budget, _classes("intent", "c", "b")) is None  # known, though over the cap
    with pytest.raises(
        InvalidMessage, match=r"would have 4 classes > ingest\.multiclass\.max_classes"
    ):
        budget.check(_classes("intent", "a", "z"))
    assert _reason(budget, Prediction("intent", "e", "v1", 0, probability=0.5)) == "kind_mismatch"
    assert _reason(budget, _classes("fraud", "a", "b")) == "kind_mismatch"
