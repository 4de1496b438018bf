"""Which alerts the policy keeps away from the pager.

"A vulnerability that is not being actively exploited is not an incident: it follows
the normal remediation process." Such alerts are recorded (nothing accepted is
dropped) but marked ``pageable=False``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from router.core.alerts import Alert
from router.core.strict import Strict


class RemediationRule(Strict):
    """Alerts whose labels include all of ``match`` follow normal remediation,
    unless their labels also include all of ``exploited``."""

    match: dict[str, str] = Field(min_length=1)
    exploited: dict[str, str] = Field(default_factory=dict)


class TriageConfig(Strict):
    remediation_only: list[RemediationRule] = Field(
        default_factory=lambda: [
            RemediationRule(match={"category": "vulnerability"}, exploited={"exploited": "true"})
        ]
    )


def _has_all(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


def is_remediation_only(alert: Alert, config: TriageConfig) -> bool:
    for rule in config.remediation_only:
        if _has_all(alert.labels, rule.match):
            return not (rule.exploited and _has_all(alert.labels, rule.exploited))
    return False


def triage(alerts: Iterable[Alert], config: TriageConfig) -> list[Alert]:
    return [
        alert.model_copy(update={"pageable": False})
        if is_remediation_only(alert, config)
        else alert
        for alert in alerts
    ]
