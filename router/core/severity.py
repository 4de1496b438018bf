"""Suggested severity: the policy's severity table, evidenced by alert labels.

The policy classifies incidents into four severities, each described by one or more
clauses ("partial outage of some production functionality or in some regions", ...).
The IC classifies; the router only *suggests*, and must say which clause it matched
and why. Operators write ordered rules (YAML section ``severity:``)::

    severity:
      default: low
      rules:
        - name: data-loss
          severity: critical
          clause: "customer or other critical data lost or corrupted"
          match:
            - {label: data_loss, equals: "true"}
            - {annotation: users_affected_pct, gt: 50}

Semantics:

* a rule matches an alert when *all* its conditions hold;
* per alert, the first matching rule in config order wins; an alert that no rule
  matches counts at the ``default`` severity;
* across a page's alerts the highest severity wins; on a tie the earlier rule in the
  config wins (a rule beats the default), then the earlier alert;
* a missing label or annotation reads as the empty string, as in Alertmanager
  matchers (so ``not_equals`` matches it); ``exists`` means present and non-empty.

Suggestions and their evidence carry label values, which may be confidential: they
go to the configured incident destinations, never to logs.

This module is domain core: it imports no adapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from router.core.alerts import Alert, AlertStatus, Source, Truncation
from router.core.strict import Strict, describe_errors

__all__ = [
    "DEFAULT_RULES",
    "POLICY_CLAUSES",
    "Condition",
    "Evidence",
    "Rule",
    "Severity",
    "SeverityConfig",
    "Suggestion",
    "classify",
    "clause_phrases",
    "pagerduty_severity",
    "suggest",
]


class Severity(StrEnum):
    """The policy's severity classes. They order by rank: ``max()`` is the worst.

    Comparison is by rank, never alphabetical; a plain string naming a severity
    compares by rank too, and any other string is a ``TypeError``.
    """

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for low up to 3 for critical."""
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        theirs = _as_severity(other)
        return NotImplemented if theirs is None else self.rank < theirs.rank

    def __le__(self, other: object) -> bool:
        theirs = _as_severity(other)
        return NotImplemented if theirs is None else self.rank <= theirs.rank

    def __gt__(self, other: object) -> bool:
        theirs = _as_severity(other)
        return NotImplemented if theirs is None else self.rank > theirs.rank

    def __ge__(self, other: object) -> bool:
        theirs = _as_severity(other)
        return NotImplemented if theirs is None else self.rank >= theirs.rank


_RANK: dict[Severity, int] = {
    Severity.LOW: 0,
    Severity.MEDIUM: 1,
    Severity.HIGH: 2,
    Severity.CRITICAL: 3,
}


def _as_severity(other: object) -> Severity | None:
    if isinstance(other, Severity):
        return other
    if isinstance(other, str):
        try:
            return Severity(other)
        except ValueError:
            # str's own (alphabetical) comparison would answer; refuse instead
            raise TypeError(f"cannot order a Severity against {other!r}") from None
    return None


# The policy's severity table, verbatim (docs/design.md, "The policy it carries out").
POLICY_CLAUSES: dict[Severity, str] = {
    Severity.CRITICAL: (
        "extreme or complete production outage; "
        "significantly degraded experience for more than 50% of users; "
        "customer or other critical data lost or corrupted"
    ),
    Severity.HIGH: (
        "partial outage of some production functionality or in some regions; "
        "degraded experience for several customers with no workaround; "
        "suspected severe security breach"
    ),
    Severity.MEDIUM: (
        "non-critical functionality lost or degraded for some customers, "
        "a short-term workaround possible; "
        "unauthorized activity detected"
    ),
    Severity.LOW: "no current or known customer impact",
}


def clause_phrases(severity: Severity) -> tuple[str, ...]:
    """The separate clauses of one row of the policy table (split on ``;``)."""
    return tuple(p.strip() for p in POLICY_CLAUSES[severity].split(";"))


_PAGERDUTY: dict[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "info",
}


def pagerduty_severity(severity: Severity) -> str:
    """The PagerDuty Events v2 ``payload.severity`` for a policy severity."""
    return _PAGERDUTY[severity]


# --- configuration -------------------------------------------------------------------

Operator = Literal["equals", "not_equals", "regex", "in", "exists", "gt", "gte", "lt", "lte"]
_OPERATORS: tuple[Operator, ...] = (
    "equals",
    "not_equals",
    "regex",
    "in",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
)
_NUMERIC_SYMBOL: dict[str, str] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _yaml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number_text(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _parse_number(value: str) -> float | None:
    """A label value as a number: float syntax, one trailing ``%`` allowed."""
    text = value.strip()
    if text.endswith("%"):
        text = text[:-1].rstrip()
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


class Condition(Strict):
    """One test on one label or annotation of an alert: exactly one key, one operator."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    label: str | None = None
    annotation: str | None = None

    equals: str | None = None
    not_equals: str | None = None
    regex: re.Pattern[str] | None = None  # compiled at load; must match the whole value
    in_: tuple[str, ...] | None = Field(default=None, alias="in")
    exists: bool | None = None  # true: present and non-empty; false: absent or empty
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @field_validator("label", "annotation")
    @classmethod
    def _key_not_empty(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(f"{info.field_name} must not be empty")
        return value

    @field_validator("equals", "not_equals", mode="before")
    @classmethod
    def _string_operand(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and not isinstance(value, str):
            name = info.field_name
            raise ValueError(
                f'{name} must be a string; quote it in YAML ({name}: "{_yaml_scalar(value)}")'
            )
        return value

    @field_validator("in_", mode="before")
    @classmethod
    def _string_list(cls, value: object) -> object:
        if value is None:
            return value
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError('in must be a list of strings; quote each value in YAML ("503")')
        if not value:
            raise ValueError("in needs at least one value")
        return value

    @field_validator("regex", mode="before")
    @classmethod
    def _compile(cls, value: object) -> object:
        if value is None or isinstance(value, re.Pattern):
            return value
        if not isinstance(value, str):
            raise ValueError("regex must be a string")
        try:
            return re.compile(value)
        except re.error as exc:
            raise ValueError(f'invalid regex "{value}": {exc}') from None

    @field_validator("gt", "gte", "lt", "lte", mode="before")
    @classmethod
    def _number_operand(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{info.field_name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{info.field_name} must be a finite number")
        return value

    @model_validator(mode="after")
    def _one_key_one_operator(self) -> Self:
        if (self.label is None) == (self.annotation is None):
            both = ", not both" if self.label is not None else ""
            raise ValueError(f"a condition needs exactly one of 'label' or 'annotation'{both}")
        used = [op for op in _OPERATORS if self._operand(op) is not None]
        if not used:
            raise ValueError(
                f"a condition on {self.kind} {self.key!r} needs one operator: "
                + ", ".join(_OPERATORS)
            )
        if len(used) > 1:
            raise ValueError(
                f"a condition on {self.kind} {self.key!r} has {len(used)} operators "
                f"({', '.join(used)}); use one per condition"
            )
        return self

    def _operand(self, op: Operator) -> object:
        return self.in_ if op == "in" else getattr(self, op)

    @property
    def kind(self) -> Literal["label", "annotation"]:
        return "label" if self.label is not None else "annotation"

    @property
    def key(self) -> str:
        return self.label if self.label is not None else (self.annotation or "")

    @property
    def operator(self) -> Operator:
        return next(op for op in _OPERATORS if self._operand(op) is not None)

    @property
    def text(self) -> str:
        """The condition as a person reads it, e.g. ``users_affected_pct > 50``."""
        key, op = self.key, self.operator
        if op == "equals":
            return f'{key} = "{self.equals}"'
        if op == "not_equals":
            return f'{key} != "{self.not_equals}"'
        if op == "regex":
            assert self.regex is not None
            return f'{key} =~ "{self.regex.pattern}"'
        if op == "in":
            values = ", ".join(f'"{v}"' for v in self.in_ or ())
            return f"{key} in [{values}]"
        if op == "exists":
            return f"{key} exists" if self.exists else f"{key} absent"
        threshold = getattr(self, op)
        return f"{key} {_NUMERIC_SYMBOL[op]} {_number_text(threshold)}"

    def holds(self, value: str) -> bool:
        """Whether the condition holds for a value ("" when the key is missing)."""
        op = self.operator
        if op == "equals":
            return value == self.equals
        if op == "not_equals":
            return value != self.not_equals
        if op == "regex":
            assert self.regex is not None
            return self.regex.fullmatch(value) is not None
        if op == "in":
            return value in (self.in_ or ())
        if op == "exists":
            return bool(value) == self.exists
        number = _parse_number(value)
        if number is None:
            return False
        threshold: float = getattr(self, op)
        if op == "gt":
            return number > threshold
        if op == "gte":
            return number >= threshold
        if op == "lt":
            return number < threshold
        return number <= threshold

    def evaluate(self, alert: Alert) -> Evidence | None:
        """Evidence when the condition holds for the alert, else None."""
        source = alert.labels if self.kind == "label" else alert.annotations
        value = source.get(self.key, "")
        if not self.holds(value):
            return None
        return Evidence(
            kind=self.kind,
            key=self.key,
            value=value,
            operator=self.operator,
            condition=self.text,
            fingerprint=alert.fingerprint,
        )


class Rule(Strict):
    """One rule: when all ``match`` conditions hold, suggest ``severity`` for ``clause``."""

    name: str
    severity: Severity
    # Must be (part of) one phrase of that severity's row; stored as the full phrase.
    clause: str
    match: tuple[Condition, ...]
    # An incident declared on this rule's evidence is confidential: #incident-response
    # sees only its id, commander and severity (the security rules set it).
    confidential: bool = False

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_rule(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        try:
            return handler(data)
        except ValidationError as exc:
            name = data.get("name") if isinstance(data, dict) else None
            who = f"{name!r}" if isinstance(name, str) and name.strip() else "(unnamed)"
            raise ValueError(
                f"severity rule {who}: {describe_errors(exc, '; ', unknown_key=False)}"
            ) from None

    @field_validator("name")
    @classmethod
    def _name_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("rule name must not be empty")
        return value

    @field_validator("clause")
    @classmethod
    def _clause_of_the_policy(cls, value: str, info: ValidationInfo) -> str:
        wanted = value.strip()
        if not wanted:
            raise ValueError("clause must not be empty")
        severity = info.data.get("severity")
        if not isinstance(severity, Severity):
            return value  # the severity's own error is reported instead
        for phrase in clause_phrases(severity):
            if wanted.casefold() in phrase.casefold():
                return phrase
        allowed = "; ".join(f'"{p}"' for p in clause_phrases(severity))
        raise ValueError(
            f'"{wanted}" is not a {severity} clause of the policy; use one of: {allowed}'
        )

    @field_validator("match")
    @classmethod
    def _some_condition(cls, value: tuple[Condition, ...]) -> tuple[Condition, ...]:
        if not value:
            raise ValueError("needs at least one condition; use 'default' for a catch-all")
        return value

    def matches(self, alert: Alert) -> tuple[Evidence, ...] | None:
        """The evidence of every condition when all hold, else None."""
        evidence = []
        for condition in self.match:
            found = condition.evaluate(alert)
            if found is None:
                return None
            evidence.append(found)
        return tuple(evidence)


class SeverityConfig(Strict):
    """The ``severity:`` section: ordered rules and the severity when none matches."""

    default: Severity = Severity.LOW
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(
                    f"duplicate severity rule name {rule.name!r}; rule names must be unique"
                )
            seen.add(rule.name)
        return self

    def confidential(self, rule: str | None) -> bool:
        """Whether an incident suggested by the rule named ``rule`` is confidential."""
        return rule is not None and any(r.confidential for r in self.rules if r.name == rule)

    @property
    def default_clause(self) -> str:
        """The default's clause: its whole row of the policy table (low has one phrase)."""
        return POLICY_CLAUSES[self.default]


# --- suggestion ----------------------------------------------------------------------


class Evidence(BaseModel):
    """One condition that held: which key of which alert, the value seen, the test."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["label", "annotation"]
    key: str
    value: str  # "" when the key is missing (only an ``exists: false`` etc. can hold)
    operator: Operator
    condition: str  # e.g. 'users_affected_pct > 50'
    fingerprint: str  # of the alert it was seen on

    def describe(self) -> str:
        """E.g. ``annotation users_affected_pct = 62 > 50`` or ``label x = "y"``."""
        subject = f"{self.kind} {self.key}"
        if self.operator == "exists":
            return f'{subject} = "{self.value}"' if self.value else f"{subject} absent"
        if self.operator == "equals":
            return f'{subject} = "{self.value}"'
        test = self.condition.removeprefix(f"{self.key} ")
        if self.operator in _NUMERIC_SYMBOL:
            return f"{subject} = {self.value.strip()} {test}"
        return f'{subject} = "{self.value}" {test}'


class Suggestion(BaseModel):
    """A suggested severity, the policy clause it matched, and why."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    clause: str
    rule: str | None = None  # None: no rule matched, this is the default
    evidence: tuple[Evidence, ...] = ()

    def explain(self) -> str:
        """One line for people, e.g.
        ``critical — "customer or other critical data lost or corrupted"
        (rule data-loss: label data_loss = "true")``.
        """
        head = f'{self.severity} — "{self.clause}"'
        if self.rule is None:
            return f"{head} (default: no severity rule matched)"
        reasons = ", ".join(e.describe() for e in self.evidence)
        return f"{head} (rule {self.rule}: {reasons})"


def _classify(alert: Alert, config: SeverityConfig) -> tuple[int, Suggestion]:
    """The alert's suggestion and the index of its rule (len(rules) for the default)."""
    for index, rule, tests in _compiled(config):
        seen: list[tuple[_Test, str]] = []
        for test in tests:
            kind, key, holds = test[0], test[1], test[2]
            value = (alert.labels if kind == "label" else alert.annotations).get(key, "")
            if not holds(value):
                break
            seen.append((test, value))
        else:
            evidence = tuple(
                Evidence(kind=t[0], key=t[1], value=value, operator=t[3], condition=t[4],
                         fingerprint=alert.fingerprint)
                for t, value in seen
            )  # fmt: skip
            return index, Suggestion(
                severity=rule.severity, clause=rule.clause, rule=rule.name, evidence=evidence
            )
    return len(config.rules), _default(config)


# Every alert of every delivery is classified, so each config's conditions are turned
# once into plain tests of a value (the models' own methods look the operator up on
# every call). By id; the config is kept so the id stays its own.
# (kind, key, test of the value, operator, the condition in words)
_Test = tuple[Literal["label", "annotation"], str, Callable[[str], bool], "Operator", str]
_COMPILED: dict[int, tuple[SeverityConfig, list[tuple[int, Rule, tuple[_Test, ...]]]]] = {}


def _compiled(config: SeverityConfig) -> list[tuple[int, Rule, tuple[_Test, ...]]]:
    found = _COMPILED.get(id(config))
    if found is not None and found[0] is config:
        return found[1]
    rules = [
        (index, rule, tuple((c.kind, c.key, _test(c), c.operator, c.text) for c in rule.match))
        for index, rule in enumerate(config.rules)
    ]
    _COMPILED[id(config)] = (config, rules)
    return rules


def _test(condition: Condition) -> Callable[[str], bool]:
    """``condition.holds`` as a closure over its operator and operand."""
    op = condition.operator
    if op == "equals":
        equals = condition.equals
        return lambda value: value == equals
    if op == "not_equals":
        not_equals = condition.not_equals
        return lambda value: value != not_equals
    if op == "in":
        allowed = frozenset(condition.in_ or ())
        return lambda value: value in allowed
    if op == "exists":
        wanted = bool(condition.exists)
        return lambda value: bool(value) == wanted
    return condition.holds  # regex and the numeric tests: rarer, and cheap enough


_ORDER_STEP = 1_000_000  # more than any config has rules


def _default(config: SeverityConfig) -> Suggestion:
    return Suggestion(severity=config.default, clause=config.default_clause)


def classify(alert: Alert, config: SeverityConfig) -> Suggestion:
    """One alert's suggestion: the first rule that matches it, else the default."""
    return _classify(alert, config)[1]


def ranked(alert: Alert, config: SeverityConfig) -> tuple[int, Suggestion]:
    """The alert's order and its own suggestion.

    The order is the alert's place in a page's suggestion, lower is worse: its
    severity, then its rule's place in the config. ``suggest`` over many alerts is
    the suggestion of the one with the lowest order (the earliest of equals), so the
    store can keep the order per alert and find a page's suggestion in one indexed
    row. Remembered for the alerts seen last: a step asks for the same alert twice
    (to store its order, and for a new page's suggestion)."""
    found = _RANKED.get(id(alert))
    if found is not None and found[0] is alert and found[1] is config:
        return found[2]
    index, suggestion = _classify(alert, config)
    result = (Severity.CRITICAL.rank - suggestion.severity.rank) * _ORDER_STEP + index, suggestion
    if len(_RANKED) >= _RANKED_SIZE:
        _RANKED.clear()
    _RANKED[id(alert)] = (alert, config, result)  # holding it: its id stays its own
    return result


_RANKED_SIZE = 4096
_RANKED: dict[int, tuple[Alert, SeverityConfig, tuple[int, Suggestion]]] = {}


def order(alert: Alert, config: SeverityConfig) -> int:
    """The alert's order (``ranked``)."""
    return ranked(alert, config)[0]


def suggest(
    alerts: Iterable[Alert], config: SeverityConfig, unseen: Truncation | None = None
) -> Suggestion:
    """The suggestion for a page: the worst of its alerts' suggestions.

    Ties in severity go to the earlier rule in the config (any rule before the
    default), then to the earlier alert. All given alerts count, pageable or not,
    firing or resolved: filtering is the caller's job. No alerts: the default.

    ``unseen``: alerts of the group that the sender cut from its message. All that
    is known of them is the labels they share (``Truncation.labels``), so they
    count as one more alert, judged only by the rules those labels decide.
    """
    candidates = [_classify(alert, config) for alert in alerts]
    if unseen is not None and unseen.count:
        found = _classify_shared(unseen, config)
        if found is not None:
            candidates.append(found)
    best: tuple[tuple[int, int], Suggestion] | None = None
    for index, suggestion in candidates:
        key = (-suggestion.severity.rank, index)
        if best is None or key < best[0]:
            best = (key, suggestion)
    return best[1] if best is not None else _default(config)


UNSEEN_FINGERPRINT = "(not sent)"


def _classify_shared(unseen: Truncation, config: SeverityConfig) -> tuple[int, Suggestion] | None:
    """The rule each unseen alert matches first, when the shared labels decide it.

    A rule is decided by the shared labels when each of its conditions tests a label
    among them: every unseen alert carries those values, so the rule holds (or fails)
    for all of them alike. Per alert the first matching rule wins, so the walk stops
    at the first rule that holds; a rule the labels do not decide (an annotation,
    another label) might hold for some unseen alerts and not others, and then nothing
    certain can be said.

    The alerts that were sent carry the same group labels, so whenever one of them is
    firing it already brings this evidence; it tells something new when none is."""
    # Only labels, annotations and the fingerprint are read by the conditions.
    alert = Alert.model_construct(
        source=Source.ALERTMANAGER,
        group_key="",
        fingerprint=UNSEEN_FINGERPRINT,
        status=AlertStatus.FIRING,
        starts_at=datetime.min.replace(tzinfo=UTC),
        labels=unseen.labels,
    )
    for index, rule in enumerate(config.rules):
        if not all(c.kind == "label" and c.key in unseen.labels for c in rule.match):
            return None
        evidence = rule.matches(alert)
        if evidence is not None:
            return index, Suggestion(
                severity=rule.severity, clause=rule.clause, rule=rule.name, evidence=evidence
            )
    return None  # no rule holds: the default, which the caller has already


# --- the default rules -----------------------------------------------------------------

# Data, not code: the rules an operator would otherwise write in the config's
# ``severity:`` section, shipped in the package (package data in pyproject.toml).
DEFAULT_RULES: SeverityConfig = SeverityConfig.model_validate(
    yaml.safe_load(resources.files("router.core").joinpath("severity_rules.yaml").read_text())
)
