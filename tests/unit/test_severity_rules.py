"""The severity suggestion, pinned: ordering by rank, each operator's meaning, the
words a condition is shown in, and the answers remembered for speed never leaking
between configs or alerts.

Written against the survivors of mutation testing (`make mutation`).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from router.core import severity as severity_module
from router.core.alerts import Alert, AlertStatus, Source
from router.core.severity import Condition, Severity, SeverityConfig, classify, ranked, suggest

ORDER = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


def alert(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
          fingerprint: str = "f1") -> Alert:  # fmt: skip
    return Alert(
        source=Source.ALERTMANAGER, group_key="g", fingerprint=fingerprint,
        status=AlertStatus.FIRING, starts_at=datetime(2026, 3, 2, tzinfo=UTC),
        labels={"alertname": "A", **(labels or {})}, annotations=annotations or {},
    )  # fmt: skip


def rule(name: str, level: str, clause: str, **condition: Any) -> dict[str, Any]:
    return {"name": name, "severity": level, "clause": clause, "match": [condition]}


# -- ordering -------------------------------------------------------------------------


@pytest.mark.rule("paging.suggested-severity")
@pytest.mark.parametrize(("a", "b"), list(itertools.product(ORDER, ORDER)))
def test_severities_order_by_rank_against_severities_and_their_names(
    a: Severity, b: Severity
) -> None:
    ra, rb = ORDER.index(a), ORDER.index(b)
    for other in (b, b.value):  # a plain name compares by rank, never alphabetically
        assert (a < other, a <= other, a > other, a >= other) == (
            ra < rb, ra <= rb, ra > rb, ra >= rb,
        )  # fmt: skip


@pytest.mark.rule("paging.suggested-severity")
def test_ordering_against_anything_else_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot order a Severity against 'urgent'"):
        _ = Severity.HIGH < "urgent"
    for op in ("__lt__", "__le__", "__gt__", "__ge__"):
        assert getattr(Severity.HIGH, op)(3) is NotImplemented
    with pytest.raises(TypeError):
        _ = Severity.HIGH >= 3  # type: ignore[operator]


# -- conditions ---------------------------------------------------------------------------


@pytest.mark.rule("paging.suggested-severity")
def test_each_operator_means_one_thing_on_the_value_or_its_absence() -> None:
    def holds(value: str, **operator: Any) -> bool:
        return Condition(label="k", **operator).holds(value)

    assert holds("x", not_equals="y") and not holds("y", not_equals="y")
    assert holds("", not_equals="y")  # absent is not equal
    assert holds("eu", in_=("eu", "us")) and not holds("ap", in_=("eu", "us"))
    assert holds("v", exists=True) and not holds("", exists=True)
    assert holds("", exists=False) and not holds("v", exists=False)
    assert holds("x", equals="x") and not holds("X", equals="x")
    assert holds("api-12", regex="api-\\d+") and not holds("api-12x", regex="api-\\d+")
    assert holds("62%", gt=50) and holds("62 %", gte=62) and not holds("62", lt=62)
    assert holds("62", lte=62) and not holds("sixty", gt=1) and not holds("nan", lte=1)


@pytest.mark.rule("paging.suggested-severity")
def test_evidence_names_the_key_the_value_seen_and_reads_annotations_too() -> None:
    on_annotation = Condition(annotation="users_affected_pct", gt=50)
    seen = alert({"users_affected_pct": "10"}, {"users_affected_pct": "62%"}, "fp9")
    evidence = on_annotation.evaluate(seen)
    assert evidence is not None
    assert (evidence.kind, evidence.key, evidence.value, evidence.operator) == (
        "annotation", "users_affected_pct", "62%", "gt",
    )  # fmt: skip
    assert (evidence.condition, evidence.fingerprint) == ("users_affected_pct > 50", "fp9")
    assert Condition(label="users_affected_pct", gt=50).evaluate(seen) is None
    absent = Condition(label="team", exists=False).evaluate(alert())
    assert absent is not None and absent.value == ""


@pytest.mark.rule("paging.suggested-severity")
def test_a_condition_reads_as_a_person_would_write_it() -> None:
    assert Condition(label="pct", gt=1e15).text == "pct > 1000000000000000.0"
    assert Condition(label="pct", gt=999_999_999_999_999).text == "pct > 999999999999999"
    assert Condition(label="pct", lte=0.5).text == "pct <= 0.5"


@pytest.mark.rule("paging.suggested-severity")
@pytest.mark.parametrize(("value", "shown"), [(True, "true"), (False, "false"), (503, "503")])
def test_a_non_string_operand_says_how_to_quote_it(value: object, shown: str) -> None:
    with pytest.raises(ValidationError) as error:
        Condition.model_validate({"label": "code", "equals": value})
    assert f'equals must be a string; quote it in YAML (equals: "{shown}")' in str(error.value)


@pytest.mark.rule("paging.suggested-severity")
def test_a_bad_rule_is_reported_by_name_with_each_field_at_fault() -> None:
    with pytest.raises(ValidationError) as error:
        SeverityConfig.model_validate({"rules": [{"name": "bad", "severity": "high"}]})
    assert "severity rule 'bad': clause: Field required; match: Field required" in str(error.value)
    with pytest.raises(ValidationError) as error:
        SeverityConfig.model_validate({"rules": [rule("two", "high", "breach", label="a")]})
    assert "severity rule 'two': match.0: a condition on label 'a' needs one operator" in str(
        error.value
    )  # "Value error, " is pydantic's prefix, not ours: it is dropped
    with pytest.raises(ValidationError) as error:
        SeverityConfig.model_validate({"rules": ["nonsense"]})
    assert "severity rule (unnamed): Input should be" in str(error.value)


# -- across alerts and rules ----------------------------------------------------------------


@pytest.mark.rule("paging.suggested-severity")
def test_the_worst_severity_wins_across_alerts_even_from_a_later_rule() -> None:
    config = SeverityConfig.model_validate({"rules": [
        rule("high-first", "high", "suspected severe security breach", label="a", exists=True),
        rule("critical-later", "critical", "extreme", label="b", exists=True),
    ]})  # fmt: skip
    high, critical = alert({"a": "1"}, fingerprint="h"), alert({"b": "1"}, fingerprint="c")
    assert ranked(critical, config)[0] < ranked(high, config)[0]
    assert suggest([high, critical], config).rule == "critical-later"


@pytest.mark.rule("paging.suggested-severity")
def test_a_remembered_answer_is_never_used_for_another_config_or_alert() -> None:
    """The suggestion is remembered per alert and the compiled rules per config, by
    ``id()``: an id can be reused once its object is gone, so the object is checked."""
    one = SeverityConfig.model_validate(
        {"rules": [rule("one", "high", "breach", label="k", equals="v")]}
    )
    two = SeverityConfig.model_validate(
        {"rules": [rule("two", "critical", "extreme", label="k", equals="v")]}
    )
    seen = alert({"k": "v"})
    assert ranked(seen, one)[1].rule == "one"
    assert ranked(seen, two)[1].rule == "two"  # same alert, another config
    # an entry left by an object whose id this alert (or config) now has
    other = alert({"k": "v"}, fingerprint="other")
    severity_module._RANKED[id(seen)] = (other, one, (0, classify(other, two)))
    assert ranked(seen, one)[1].rule == "one"
    severity_module._COMPILED[id(one)] = (two, severity_module._compiled(two))
    assert classify(alert({"k": "v"}, fingerprint="new"), one).rule == "one"
