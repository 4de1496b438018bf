"""Severity suggestion: the policy's severity table, as rules over alert labels.

These tests are the policy. Each clause of the table must be reachable from the
default rules, each operator must mean exactly one thing, and each configuration
mistake must fail at load with a message that names the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from router.core.alerts import Alert, AlertStatus, Source, Truncation
from router.core.severity import (
    DEFAULT_RULES,
    POLICY_CLAUSES,
    UNSEEN_FINGERPRINT,
    Condition,
    Evidence,
    Rule,
    Severity,
    SeverityConfig,
    Suggestion,
    classify,
    clause_phrases,
    pagerduty_severity,
    suggest,
)

CRITICAL, HIGH, MEDIUM, LOW = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MEDIUM,
    Severity.LOW,
)


def alert(
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    fingerprint: str = "f1",
) -> Alert:
    return Alert(
        source=Source.ALERTMANAGER,
        group_key="g",
        fingerprint=fingerprint,
        status=AlertStatus.FIRING,
        starts_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
    )


def rule(
    name: str = "r",
    severity: str = "critical",
    clause: str = "extreme or complete production outage",
    match: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "severity": severity,
        "clause": clause,
        "match": match if match is not None else [{"label": "x", "exists": True}],
    }


def config(*rules: dict[str, Any], default: str = "low") -> SeverityConfig:
    return SeverityConfig.model_validate({"default": default, "rules": list(rules)})


def load_error(*rules: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as info:
        config(*rules)
    return str(info.value)


EXAMPLE_YAML = """
severity:
  default: low
  rules:
    - name: data-loss
      severity: critical
      clause: "customer or other critical data lost or corrupted"
      match:
        - {label: data_loss, equals: "true"}
        - {annotation: users_affected_pct, gt: 50}
        - {label: service, regex: "^(api|web)$"}
        - {label: region, in: [eu, us]}
        - {label: impact, exists: true}
"""


# --- the policy table -------------------------------------------------------------


def test_policy_clauses_are_the_policy_table_verbatim() -> None:
    assert POLICY_CLAUSES == {
        CRITICAL: "extreme or complete production outage; significantly degraded "
        "experience for more than 50% of users; customer or other critical data "
        "lost or corrupted",
        HIGH: "partial outage of some production functionality or in some regions; "
        "degraded experience for several customers with no workaround; suspected "
        "severe security breach",
        MEDIUM: "non-critical functionality lost or degraded for some customers, a "
        "short-term workaround possible; unauthorized activity detected",
        LOW: "no current or known customer impact",
    }


def test_clause_phrases_split_the_row_on_semicolons_only() -> None:
    assert clause_phrases(MEDIUM) == (
        "non-critical functionality lost or degraded for some customers, "
        "a short-term workaround possible",
        "unauthorized activity detected",
    )
    assert len(clause_phrases(CRITICAL)) == 3
    assert clause_phrases(LOW) == ("no current or known customer impact",)


def test_severity_ranks_critical_highest_so_max_and_sorted_work() -> None:
    assert [s.rank for s in (LOW, MEDIUM, HIGH, CRITICAL)] == [0, 1, 2, 3]
    assert max([LOW, CRITICAL, MEDIUM, HIGH]) is CRITICAL
    assert max([LOW, MEDIUM]) is MEDIUM  # alphabetically "medium" < "low" is False
    assert sorted([MEDIUM, CRITICAL, LOW, HIGH]) == [LOW, MEDIUM, HIGH, CRITICAL]
    assert HIGH > MEDIUM and LOW < HIGH and CRITICAL >= CRITICAL and LOW <= LOW
    # plain strings naming a severity compare by rank too, whichever side they are on
    # the string on the left exercises the reflected comparison
    assert LOW < "medium" and "medium" > LOW and "critical" > HIGH  # noqa: SIM300
    assert Severity("high") is HIGH and str(HIGH) == "high"


def test_severity_refuses_to_order_against_unknown_strings() -> None:
    with pytest.raises(TypeError):
        _ = LOW < 3
    with pytest.raises(TypeError):
        _ = HIGH < "urgent"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [(CRITICAL, "critical"), (HIGH, "error"), (MEDIUM, "warning"), (LOW, "info")],
)
def test_pagerduty_severity(severity: Severity, expected: str) -> None:
    assert pagerduty_severity(severity) == expected


# --- operators ----------------------------------------------------------------------

OPERATOR_CASES: list[tuple[dict[str, Any], dict[str, str], dict[str, str], bool]] = [
    # equals: exact, case-sensitive; a missing key reads as "" (Alertmanager matchers)
    ({"label": "env", "equals": "prod"}, {"env": "prod"}, {}, True),
    ({"label": "env", "equals": "prod"}, {"env": "Prod"}, {}, False),
    ({"label": "env", "equals": "prod"}, {}, {}, False),
    ({"label": "env", "equals": ""}, {}, {}, True),
    # the label and annotation namespaces are separate
    ({"label": "env", "equals": "prod"}, {}, {"env": "prod"}, False),
    ({"annotation": "env", "equals": "prod"}, {}, {"env": "prod"}, True),
    ({"annotation": "env", "equals": "prod"}, {"env": "prod"}, {}, False),
    # not_equals
    ({"label": "env", "not_equals": "staging"}, {"env": "prod"}, {}, True),
    ({"label": "env", "not_equals": "staging"}, {"env": "staging"}, {}, False),
    ({"label": "env", "not_equals": "staging"}, {}, {}, True),
    # regex: a full match, not a search
    ({"label": "svc", "regex": "api|web"}, {"svc": "web"}, {}, True),
    ({"label": "svc", "regex": "api|web"}, {"svc": "api-gateway"}, {}, False),
    ({"label": "svc", "regex": "api"}, {"svc": "legacy-api"}, {}, False),
    ({"label": "svc", "regex": "^(api|web)$"}, {"svc": "api"}, {}, True),
    ({"label": "svc", "regex": "(?i)api"}, {"svc": "API"}, {}, True),
    # in
    ({"label": "region", "in": ["eu", "us"]}, {"region": "us"}, {}, True),
    ({"label": "region", "in": ["eu", "us"]}, {"region": "ap"}, {}, False),
    ({"label": "region", "in": ["eu", "us"]}, {}, {}, False),
    # exists: present and not empty (an empty label is an absent label)
    ({"label": "impact", "exists": True}, {"impact": "db"}, {}, True),
    ({"label": "impact", "exists": True}, {"impact": ""}, {}, False),
    ({"label": "impact", "exists": True}, {}, {}, False),
    ({"label": "impact", "exists": False}, {}, {}, True),
    ({"label": "impact", "exists": False}, {"impact": ""}, {}, True),
    ({"label": "impact", "exists": False}, {"impact": "db"}, {}, False),
    # numeric comparisons: float, a trailing % stripped, non-numbers never match
    ({"annotation": "pct", "gt": 50}, {}, {"pct": "62"}, True),
    ({"annotation": "pct", "gt": 50}, {}, {"pct": "50"}, False),
    ({"annotation": "pct", "gt": 50}, {}, {"pct": "50.5%"}, True),
    ({"annotation": "pct", "gt": 50}, {}, {"pct": " 62 % "}, True),
    ({"annotation": "pct", "gt": 50}, {}, {"pct": "lots"}, False),
    ({"annotation": "pct", "gt": 50}, {}, {"pct": "62%%"}, False),
    ({"annotation": "pct", "gt": 50}, {}, {"pct": "nan"}, False),
    ({"annotation": "pct", "gt": 50}, {}, {}, False),
    ({"annotation": "pct", "gte": 50}, {}, {"pct": "50"}, True),
    ({"annotation": "pct", "gte": 50}, {}, {"pct": "49.9"}, False),
    ({"annotation": "pct", "lt": 1.5}, {}, {"pct": "1.4"}, True),
    ({"annotation": "pct", "lt": 1.5}, {}, {"pct": "1.5"}, False),
    ({"annotation": "pct", "lte": 1.5}, {}, {"pct": "1.5"}, True),
    ({"annotation": "pct", "lte": 1.5}, {}, {"pct": "-"}, False),
    ({"label": "pct", "lte": 0}, {"pct": "-3"}, {}, True),
]


@pytest.mark.parametrize(("condition", "labels", "annotations", "expected"), OPERATOR_CASES)
def test_each_operator(
    condition: dict[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
    expected: bool,
) -> None:
    cfg = config(rule(name="only", match=[condition]))
    got = suggest([alert(labels, annotations)], cfg)
    assert (got.rule == "only") is expected


def test_all_conditions_of_a_rule_must_hold() -> None:
    both: list[dict[str, Any]] = [
        {"label": "env", "equals": "prod"},
        {"annotation": "pct", "gt": 50},
    ]
    cfg = config(rule(name="both", match=both))
    assert suggest([alert({"env": "prod"}, {"pct": "60"})], cfg).rule == "both"
    assert suggest([alert({"env": "prod"}, {"pct": "40"})], cfg).rule is None
    assert suggest([alert({"env": "dev"}, {"pct": "60"})], cfg).rule is None
    # conditions are per alert: two alerts each holding half do not add up to a match
    halves = [alert({"env": "prod"}, fingerprint="a"), alert({}, {"pct": "60"}, "b")]
    assert suggest(halves, cfg).rule is None


# --- choosing among rules and alerts --------------------------------------------------


def test_first_matching_rule_wins_per_alert_even_if_a_later_one_is_higher() -> None:
    cfg = config(
        rule(
            name="warn",
            severity="medium",
            clause="unauthorized activity detected",
            match=[{"label": "security", "exists": True}],
        ),
        rule(name="crit", match=[{"label": "security", "equals": "breach"}]),
    )
    got = suggest([alert({"security": "breach"})], cfg)
    assert (got.severity, got.rule) == (MEDIUM, "warn")


def test_highest_severity_wins_across_a_pages_alerts() -> None:
    cfg = config(
        rule(
            name="warn",
            severity="medium",
            clause="unauthorized activity detected",
            match=[{"label": "kind", "equals": "auth"}],
        ),
        rule(name="down", match=[{"label": "kind", "equals": "down"}]),
    )
    alerts = [
        alert({"kind": "auth"}, fingerprint="a"),
        alert({"kind": "down"}, fingerprint="b"),
        alert({}, fingerprint="c"),
    ]
    got = suggest(alerts, cfg)
    assert (got.severity, got.rule) == (CRITICAL, "down")
    assert [e.fingerprint for e in got.evidence] == ["b"]


def test_a_tie_in_severity_goes_to_the_earlier_rule_not_the_earlier_alert() -> None:
    cfg = config(
        rule(
            name="first",
            severity="high",
            clause="suspected severe security breach",
            match=[{"label": "k", "equals": "1"}],
        ),
        rule(
            name="second",
            severity="high",
            clause="partial outage",
            match=[{"label": "k", "equals": "2"}],
        ),
    )
    alerts = [alert({"k": "2"}, fingerprint="a"), alert({"k": "1"}, fingerprint="b")]
    got = suggest(alerts, cfg)
    assert got.rule == "first"
    assert got.evidence[0].fingerprint == "b"


def test_the_same_rule_on_several_alerts_keeps_the_first_alerts_evidence() -> None:
    cfg = config(rule(name="down", match=[{"label": "down", "equals": "yes"}]))
    alerts = [alert({"down": "yes"}, fingerprint=f) for f in ("a", "b")]
    assert suggest(alerts, cfg).evidence[0].fingerprint == "a"


def test_accepts_any_iterable_of_alerts_including_a_generator() -> None:
    cfg = config(rule(name="down", match=[{"label": "down", "equals": "yes"}]))
    got = suggest((a for a in [alert({"down": "yes"})]), cfg)
    assert got.rule == "down"


def test_alerts_that_are_not_pageable_or_resolved_are_still_evaluated() -> None:
    cfg = config(rule(name="down", match=[{"label": "down", "equals": "yes"}]))
    quiet = alert({"down": "yes"}).model_copy(
        update={"pageable": False, "status": AlertStatus.RESOLVED}
    )
    assert suggest([quiet], cfg).rule == "down"  # filtering is the caller's job


def test_nothing_matches_gives_the_default_low_with_the_policys_low_clause() -> None:
    cfg = config(rule(name="down", match=[{"label": "down", "equals": "yes"}]))
    got = suggest([alert({"down": "no"})], cfg)
    assert got == Suggestion(severity=LOW, clause="no current or known customer impact", rule=None)
    assert got.evidence == ()
    assert suggest([], cfg) == got  # an empty page is not evidence of anything


def test_a_non_low_default_carries_its_whole_policy_row() -> None:
    cfg = config(rule(name="down", match=[{"label": "down", "equals": "yes"}]), default="medium")
    got = suggest([alert()], cfg)
    assert (got.severity, got.clause, got.rule) == (MEDIUM, POLICY_CLAUSES[MEDIUM], None)


def test_an_unmatched_alert_counts_at_the_default_severity() -> None:
    low_rule = rule(
        name="info",
        severity="low",
        clause="no current or known customer impact",
        match=[{"label": "severity", "equals": "info"}],
    )
    # the default is medium: the alert nothing matched outranks the one that matched low
    cfg = config(low_rule, default="medium")
    alerts = [alert({"severity": "info"}, fingerprint="a"), alert(fingerprint="b")]
    assert (suggest(alerts, cfg).severity, suggest(alerts, cfg).rule) == (MEDIUM, None)
    # at equal severity a rule (which has evidence) beats the default
    cfg = config(low_rule, default="low")
    assert suggest(alerts, cfg).rule == "info"


def test_classify_returns_one_alerts_own_suggestion() -> None:
    cfg = config(rule(name="down", match=[{"label": "down", "equals": "yes"}]))
    assert classify(alert({"down": "yes"}), cfg).rule == "down"
    assert classify(alert(), cfg).rule is None


# --- evidence and explanation ----------------------------------------------------------


def example_config() -> SeverityConfig:
    return SeverityConfig.model_validate(yaml.safe_load(EXAMPLE_YAML)["severity"])


EXAMPLE_ALERT = alert(
    {"data_loss": "true", "service": "api", "region": "eu", "impact": "orders"},
    {"users_affected_pct": "62"},
    fingerprint="fp-9",
)


def test_the_documented_yaml_loads_and_matches() -> None:
    cfg = example_config()
    assert cfg.default is LOW
    assert [r.name for r in cfg.rules] == ["data-loss"]
    got = suggest([EXAMPLE_ALERT], cfg)
    assert (got.severity, got.clause, got.rule) == (
        CRITICAL,
        "customer or other critical data lost or corrupted",
        "data-loss",
    )


def test_evidence_records_each_condition_with_the_value_seen() -> None:
    got = suggest([EXAMPLE_ALERT], example_config())
    assert got.evidence == (
        Evidence(
            kind="label",
            key="data_loss",
            value="true",
            operator="equals",
            condition='data_loss = "true"',
            fingerprint="fp-9",
        ),
        Evidence(
            kind="annotation",
            key="users_affected_pct",
            value="62",
            operator="gt",
            condition="users_affected_pct > 50",
            fingerprint="fp-9",
        ),
        Evidence(
            kind="label",
            key="service",
            value="api",
            operator="regex",
            condition='service =~ "^(api|web)$"',
            fingerprint="fp-9",
        ),
        Evidence(
            kind="label",
            key="region",
            value="eu",
            operator="in",
            condition='region in ["eu", "us"]',
            fingerprint="fp-9",
        ),
        Evidence(
            kind="label",
            key="impact",
            value="orders",
            operator="exists",
            condition="impact exists",
            fingerprint="fp-9",
        ),
    )


def test_condition_text_for_every_operator() -> None:
    def text(**kwargs: Any) -> str:
        return Condition.model_validate(kwargs).text

    assert text(label="env", not_equals="dev") == 'env != "dev"'
    assert text(label="impact", exists=False) == "impact absent"
    assert text(annotation="p", gte=0.5) == "p >= 0.5"
    assert text(annotation="p", lt=10) == "p < 10"
    assert text(annotation="p", lte=-2.25) == "p <= -2.25"


def test_explain_names_the_severity_the_clause_the_rule_and_the_evidence() -> None:
    cfg = config(
        rule(
            name="data-loss",
            clause="customer or other critical data lost or corrupted",
            match=[
                {"label": "data_loss", "equals": "true"},
                {"annotation": "users_affected_pct", "gt": 50},
            ],
        )
    )
    got = suggest([EXAMPLE_ALERT], cfg)
    assert got.explain() == (
        'critical — "customer or other critical data lost or corrupted" '
        '(rule data-loss: label data_loss = "true", '
        "annotation users_affected_pct = 62 > 50)"
    )


def test_explain_shows_the_value_seen_for_non_equality_operators() -> None:
    got = suggest([EXAMPLE_ALERT], example_config())
    text = got.explain()
    assert 'label service = "api" =~ "^(api|web)$"' in text
    assert 'label region = "eu" in ["eu", "us"]' in text
    assert 'label impact = "orders"' in text
    pct = alert({}, {"p": "62%"})
    got = suggest([pct], config(rule(name="p", match=[{"annotation": "p", "gt": 50}])))
    assert "annotation p = 62% > 50" in got.explain()
    gone = suggest([alert()], config(rule(name="g", match=[{"label": "x", "exists": False}])))
    assert "label x absent" in gone.explain()


def test_explain_for_the_default_says_no_rule_matched() -> None:
    got = suggest([alert()], config())
    assert got.explain() == (
        'low — "no current or known customer impact" (default: no severity rule matched)'
    )


def test_suggestions_and_evidence_are_immutable_and_serialisable() -> None:
    got = suggest([EXAMPLE_ALERT], example_config())
    with pytest.raises(ValueError):
        got.severity = LOW
    with pytest.raises(ValueError):
        got.evidence[0].value = "false"
    assert Suggestion.model_validate_json(got.model_dump_json()) == got


# --- validation: every mistake fails at load, naming the rule ------------------------


def test_clause_must_be_a_phrase_of_that_severitys_row() -> None:
    message = load_error(rule(name="oops", severity="high", clause="data lost or corrupted"))
    assert "severity rule 'oops'" in message
    assert '"data lost or corrupted" is not a high clause of the policy' in message
    assert '"suspected severe security breach"' in message  # the allowed phrases listed


def test_clause_may_not_span_two_phrases_or_be_empty() -> None:
    message = load_error(rule(name="span", clause="production outage; significantly"))
    assert "severity rule 'span'" in message and "is not a critical clause" in message
    message = load_error(rule(name="blank", clause="  "))
    assert "severity rule 'blank'" in message and "clause must not be empty" in message


def test_clause_matching_ignores_case_and_reports_the_policys_full_phrase() -> None:
    cfg = config(rule(severity="high", clause="PARTIAL OUTAGE"))
    assert cfg.rules[0].clause == (
        "partial outage of some production functionality or in some regions"
    )


def test_condition_needs_exactly_one_of_label_or_annotation() -> None:
    message = load_error(rule(name="nokey", match=[{"equals": "x"}]))
    assert "severity rule 'nokey'" in message
    assert "a condition needs exactly one of 'label' or 'annotation'" in message
    message = load_error(
        rule(name="twokeys", match=[{"label": "a", "annotation": "a", "equals": "x"}])
    )
    assert "severity rule 'twokeys'" in message
    assert "exactly one of 'label' or 'annotation', not both" in message


def test_condition_needs_exactly_one_operator() -> None:
    message = load_error(rule(name="noop", match=[{"label": "a"}]))
    assert "severity rule 'noop'" in message
    assert "needs one operator: equals, not_equals, regex, in, exists, gt, gte, lt, lte" in message
    message = load_error(rule(name="twoops", match=[{"label": "a", "gt": 1, "lt": 5}]))
    assert "severity rule 'twoops'" in message
    assert "has 2 operators (gt, lt); use one per condition" in message


def test_invalid_regex_names_the_rule() -> None:
    message = load_error(rule(name="bad-re", match=[{"label": "a", "regex": "(api"}]))
    assert "severity rule 'bad-re'" in message
    assert 'invalid regex "(api"' in message


def test_string_operators_refuse_unquoted_yaml_scalars() -> None:
    cfg = yaml.safe_load(
        "rules: [{name: b, severity: critical, clause: data lost, "
        "match: [{label: data_loss, equals: true}]}]"
    )
    with pytest.raises(ValueError) as info:
        SeverityConfig.model_validate(cfg)
    assert "severity rule 'b'" in str(info.value)
    assert "equals must be a string; quote it in YAML" in str(info.value)
    message = load_error(rule(name="nums", match=[{"label": "code", "in": ["500", 503]}]))
    assert "severity rule 'nums'" in message and "in must be a list of strings" in message


def test_numeric_operators_refuse_booleans_and_text() -> None:
    message = load_error(rule(name="boolgt", match=[{"label": "a", "gt": True}]))
    assert "severity rule 'boolgt'" in message and "gt must be a number" in message
    message = load_error(rule(name="textgt", match=[{"label": "a", "gt": "fifty"}]))
    assert "severity rule 'textgt'" in message and "gt must be a number" in message


def test_in_needs_at_least_one_value_and_keys_must_not_be_empty() -> None:
    message = load_error(rule(name="empty-in", match=[{"label": "a", "in": []}]))
    assert "severity rule 'empty-in'" in message and "in needs at least one value" in message
    message = load_error(rule(name="empty-key", match=[{"label": "", "exists": True}]))
    assert "severity rule 'empty-key'" in message and "label must not be empty" in message


def test_a_rule_needs_at_least_one_condition() -> None:
    message = load_error(rule(name="catchall", match=[]))
    assert "severity rule 'catchall'" in message
    assert "needs at least one condition; use 'default' for a catch-all" in message


def test_unknown_keys_and_severities_fail_naming_the_rule() -> None:
    message = load_error(rule(name="typo", match=[{"label": "a", "equal": "x"}]))
    assert "severity rule 'typo'" in message
    assert "match.0.equal: Extra inputs are not permitted" in message
    message = load_error(rule(name="sev", severity="urgent"))
    assert "severity rule 'sev'" in message
    assert "severity: Input should be 'critical', 'high', 'medium' or 'low'" in message
    with pytest.raises(ValueError, match="defaults"):
        SeverityConfig.model_validate({"defaults": "low"})


def test_rule_names_must_be_unique_and_present() -> None:
    message = load_error(rule(name="twice"), rule(name="other"), rule(name="twice"))
    assert "duplicate severity rule name 'twice'" in message
    message = load_error(rule(name=""))
    assert "rule name must not be empty" in message


def test_rules_can_be_built_in_python_too() -> None:
    built = Rule(
        name="py",
        severity=HIGH,
        clause="suspected severe security breach",
        match=(Condition(label="security", equals="breach"),),
    )
    cfg = SeverityConfig(rules=(built,))
    assert suggest([alert({"security": "breach"})], cfg).rule == "py"
    in_condition = Condition.model_validate({"label": "region", "in_": ["eu"]})
    assert in_condition.text == 'region in ["eu"]'


# --- the default rules: the whole policy table over documented labels ----------------


# The policy's severity table, written out here rather than read from the code under
# test, so a changed or lost clause fails.
POLICY_TABLE = {
    (CRITICAL, "extreme or complete production outage"),
    (CRITICAL, "significantly degraded experience for more than 50% of users"),
    (CRITICAL, "customer or other critical data lost or corrupted"),
    (HIGH, "partial outage of some production functionality or in some regions"),
    (HIGH, "degraded experience for several customers with no workaround"),
    (HIGH, "suspected severe security breach"),
    (MEDIUM, "non-critical functionality lost or degraded for some customers, "
             "a short-term workaround possible"),
    (MEDIUM, "unauthorized activity detected"),
    (LOW, "no current or known customer impact"),
}  # fmt: skip


def test_default_rules_reach_every_clause_of_the_policy_table() -> None:
    reached = {(r.severity, r.clause) for r in DEFAULT_RULES.rules}
    assert reached == POLICY_TABLE
    assert {(s, phrase) for s in Severity for phrase in clause_phrases(s)} == POLICY_TABLE
    assert DEFAULT_RULES.default is LOW


def test_default_rules_are_ordered_from_critical_down_so_first_match_is_highest() -> None:
    order = [r.severity for r in DEFAULT_RULES.rules]
    first = {s: order.index(s) for s in (CRITICAL, HIGH, MEDIUM, LOW)}
    last = {s: len(order) - 1 - order[::-1].index(s) for s in (CRITICAL, HIGH, MEDIUM, LOW)}
    assert last[CRITICAL] < first[HIGH] and last[HIGH] < first[MEDIUM]
    assert last[MEDIUM] < first[LOW]


def test_default_rules_survive_a_dump_to_yaml_and_back() -> None:
    dumped = yaml.safe_dump(DEFAULT_RULES.model_dump(mode="json", exclude_none=True))
    assert "in_" not in dumped and "in:" in dumped
    assert SeverityConfig.model_validate(yaml.safe_load(dumped)) == DEFAULT_RULES


DEFAULT_CASES: list[tuple[dict[str, str], dict[str, str], Severity, str]] = [
    (
        {"alertname": "ApiDown", "severity": "critical"},
        {"summary": "API is down"},
        CRITICAL,
        "extreme or complete production outage",
    ),
    (
        {"alertname": "Down", "severity": "page"},
        {},
        CRITICAL,
        "extreme or complete production outage",
    ),
    (
        {"alertname": "Down", "outage": "complete"},
        {},
        CRITICAL,
        "extreme or complete production outage",
    ),
    (
        {"alertname": "HighErrorRate", "severity": "warning"},
        {"users_affected_pct": "73%"},
        CRITICAL,
        "significantly degraded experience for more than 50% of users",
    ),
    (
        {"alertname": "HighErrorRate", "users_affected_pct": "51"},
        {},
        CRITICAL,
        "significantly degraded experience for more than 50% of users",
    ),
    (
        {"alertname": "ReplicaCorrupt", "severity": "warning", "data_loss": "true"},
        {},
        CRITICAL,
        "customer or other critical data lost or corrupted",
    ),
    (
        {"alertname": "EuDown", "outage": "partial"},
        {},
        HIGH,
        "partial outage of some production functionality or in some regions",
    ),
    (
        {"alertname": "ExportFailing", "severity": "error"},
        {},
        HIGH,
        "partial outage of some production functionality or in some regions",
    ),
    (
        {"alertname": "ExportFailing", "workaround": "false", "customers_affected": "3"},
        {},
        HIGH,
        "degraded experience for several customers with no workaround",
    ),
    (
        {"alertname": "ExportFailing", "workaround": "false"},
        {"customers_affected": "acme, globex"},
        HIGH,
        "degraded experience for several customers with no workaround",
    ),
    (
        {"alertname": "Exfiltration", "security": "breach", "severity": "warning"},
        {},
        HIGH,
        "suspected severe security breach",
    ),
    (
        {"alertname": "SlowReports", "severity": "warning"},
        {},
        MEDIUM,
        "non-critical functionality lost or degraded for some customers, "
        "a short-term workaround possible",
    ),
    (
        {"alertname": "BruteForce", "security": "unauthorized_activity"},
        {},
        MEDIUM,
        "unauthorized activity detected",
    ),
    ({"alertname": "Watchdog", "severity": "info"}, {}, LOW, "no current or known customer impact"),
    ({"alertname": "Unlabelled"}, {}, LOW, "no current or known customer impact"),
    # a workaround exists, or nobody is named as affected: not the high clause
    (
        {"alertname": "ExportFailing", "workaround": "true", "customers_affected": "3"},
        {},
        LOW,
        "no current or known customer impact",
    ),
    (
        {"alertname": "ExportFailing", "workaround": "false"},
        {},
        LOW,
        "no current or known customer impact",
    ),
    # half the users is not "more than 50%"
    (
        {"alertname": "Errors"},
        {"users_affected_pct": "50"},
        LOW,
        "no current or known customer impact",
    ),
]


@pytest.mark.parametrize(("labels", "annotations", "severity", "clause"), DEFAULT_CASES)
def test_default_rules_classify_alertmanager_alerts(
    labels: dict[str, str], annotations: dict[str, str], severity: Severity, clause: str
) -> None:
    got = suggest([alert(labels, annotations)], DEFAULT_RULES)
    assert (got.severity, got.clause) == (severity, clause)
    assert got.clause in POLICY_CLAUSES[severity]


def test_default_rules_never_suggest_lower_than_the_alerts_own_severity_label() -> None:
    # a breach alert its author marked critical stays critical: under-paging is worse
    got = suggest([alert({"severity": "critical", "security": "breach"})], DEFAULT_RULES)
    assert (got.severity, got.rule) == (CRITICAL, "severity-critical")


def test_default_rules_take_the_worst_alert_of_a_page() -> None:
    page = [
        alert({"alertname": "Watchdog", "severity": "info"}, fingerprint="a"),
        alert({"alertname": "EuDown", "outage": "partial"}, fingerprint="b"),
        alert({"alertname": "BruteForce", "security": "unauthorized_activity"}, fingerprint="c"),
    ]
    got = suggest(page, DEFAULT_RULES)
    assert (got.severity, got.rule) == (HIGH, "partial-outage")
    assert got.explain() == (
        'high — "partial outage of some production functionality or in some regions" '
        '(rule partial-outage: label outage = "partial")'
    )


def test_the_worst_alert_by_order_carries_the_suggestion_of_them_all() -> None:
    """What lets a page find its suggestion in one indexed row: over any alerts,
    ``suggest`` equals the suggestion of the one with the lowest ``order`` (the first of
    equals)."""
    import random

    from router.core.page import PageAlerts
    from router.core.severity import order

    values = {
        "severity": ["critical", "page", "high", "error", "warning", "info", "none", "x"],
        "outage": ["complete", "partial", "no"],
        "data_loss": ["true", "false"],
        "security": ["breach", "unauthorized_activity", "scan"],
        "users_affected_pct": ["10", "62%", "51", "oops"],
        "workaround": ["false", "true"],
        "customers_affected": ["3", ""],
    }
    rng = random.Random(9)
    for trial in range(300):
        alerts = []
        for i in range(rng.randint(1, 8)):
            labels = {k: rng.choice(v) for k, v in values.items() if rng.random() < 0.3}
            alerts.append(
                Alert(
                    source=Source.ALERTMANAGER,
                    group_key="g",
                    fingerprint=f"{trial}-{i}",
                    status=AlertStatus.FIRING,
                    starts_at=datetime(2024, 5, 1, tzinfo=UTC),
                    labels={"alertname": "A", **labels},
                )
            )
        worst = min(alerts, key=lambda a: order(a, DEFAULT_RULES))
        assert suggest([worst], DEFAULT_RULES) == suggest(alerts, DEFAULT_RULES), alerts
        view = PageAlerts.of(alerts, 10, DEFAULT_RULES)
        assert view.suggestion(DEFAULT_RULES) == suggest(alerts, DEFAULT_RULES)


# --- alerts the sender cut (max_alerts) -------------------------------------------------

OUTAGE_BY_SERVICE = config(
    rule("payments-outage", "critical", match=[{"label": "service", "equals": "payments"}]),
    rule(
        "warning",
        "medium",
        "unauthorized activity detected",
        match=[{"label": "severity", "equals": "warning"}],
    ),
)


def test_unseen_alerts_count_by_the_rule_their_shared_labels_decide() -> None:
    # No alert that was sent fires: what the cut ones certainly carry still tells.
    unseen = Truncation(count=7, labels={"service": "payments", "alertname": "Down"})
    suggestion = suggest([], OUTAGE_BY_SERVICE, unseen)
    assert (suggestion.severity, suggestion.rule) == (CRITICAL, "payments-outage")
    [evidence] = suggestion.evidence
    assert (evidence.key, evidence.value, evidence.fingerprint) == (
        "service", "payments", UNSEEN_FINGERPRINT,
    )  # fmt: skip


def test_unseen_alerts_say_nothing_when_an_earlier_rule_is_undecided() -> None:
    # The first rule tests a label the group does not share: a cut alert might match
    # it first (medium), or not (critical). Nothing certain, so no evidence.
    rules = config(
        rule(
            "warning",
            "medium",
            "unauthorized activity detected",
            match=[{"label": "severity", "equals": "warning"}],
        ),
        rule("payments-outage", "critical", match=[{"label": "service", "equals": "payments"}]),
    )
    unseen = Truncation(count=7, labels={"service": "payments"})
    assert suggest([], rules, unseen) == suggest([], rules)


def test_unseen_alerts_never_lower_what_the_sent_alerts_show() -> None:
    sent = alert({"service": "payments", "severity": "warning"})
    unseen = Truncation(count=3, labels={"severity": "warning"})
    with_unseen = suggest([sent], OUTAGE_BY_SERVICE, unseen)
    assert with_unseen == suggest([sent], OUTAGE_BY_SERVICE)
    assert with_unseen.severity is CRITICAL
    assert suggest([sent], OUTAGE_BY_SERVICE, Truncation(count=0, labels={})) == with_unseen
