"""The new config sections are strict: unknown keys and bad values fail with exact messages."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from router.adapters.google.config import DocConfig
from router.adapters.pagerduty.config import PagerDutyOncallConfig, provider_problems
from router.adapters.statuspage.config import DEFAULT_COMPONENT_STATUS, StatuspageConfig
from router.config import describe_validation_error
from router.core.severity import Severity

DOC = {"template_document_id": "TEMPLATE0123456789", "folder_id": "FOLDER0123456789"}
SP = {"page_id": "gytm4qzbx9t6"}
PD = {"schedules": {"eng-primary": "PI7DH85"}}


def rejected(model: type[BaseModel], document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as failure:
        model.model_validate(document)
    return describe_validation_error(failure.value)


def test_doc_defaults_share_with_the_responders_only() -> None:
    config = DocConfig.model_validate(DOC)
    assert (config.share_with_link, config.notify_by_email) == (False, True)
    assert config.drive_api_url == "https://www.googleapis.com/drive/v3/"
    assert config.docs_api_url == "https://docs.googleapis.com/"
    assert config.token_uri is None
    assert DocConfig.model_validate(DOC | {"docs_api_url": "http://127.0.0.1:1"}).docs_api_url == (
        "http://127.0.0.1:1/"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"share_with_anyone": True}, "share_with_anyone: unknown key"),
        (
            {"folder_id": "https://drive.google.com/x"},
            "folder_id: must be a Drive id (the part of the URL after /d/ or /folders/)",
        ),
        (
            {"token_uri": "oauth2.googleapis.com/token"},
            "token_uri: must start with https:// (or http:// for a local stand-in)",
        ),
        (
            {"name_template": "{incident} {severity}"},
            "name_template: may use only {incident} and {title} ('severity')",
        ),
        (
            {"share_with_link": "sometimes"},
            "share_with_link: Input should be a valid boolean, unable to interpret input",
        ),
    ],
)
def test_doc_config_is_strict(changes: dict[str, Any], message: str) -> None:
    assert rejected(DocConfig, DOC | changes) == message


def test_doc_config_needs_its_ids() -> None:
    assert (
        rejected(DocConfig, {}) == "template_document_id: Field required\nfolder_id: Field required"
    )


def test_statuspage_defaults_map_every_severity() -> None:
    config = StatuspageConfig.model_validate(SP)
    assert config.api_url == "https://api.statuspage.io/v1"
    assert config.component_status == DEFAULT_COMPONENT_STATUS
    partial = StatuspageConfig.model_validate(
        SP | {"component_status": {"low": "degraded_performance"}}
    )
    assert partial.component_status[Severity.LOW] == "degraded_performance"
    assert partial.component_status[Severity.CRITICAL] == "major_outage"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"components": ["8kbf7d35c070"]}, "components: unknown key"),
        ({"page_id": "My Page"}, "page_id: must be a Statuspage page id like gytm4qzbx9t6"),
        (
            {"component_ids": ["API"]},
            "component_ids: must be Statuspage component ids like 8kbf7d35c070 ('API')",
        ),
        (
            {"component_status": {"severe": "major_outage"}},
            "component_status.severe.[key]: Input should be 'critical', 'high', 'medium' or 'low'",
        ),
        (
            {"component_status": {"high": "down"}},
            "component_status.high: Input should be 'operational', 'degraded_performance',"
            " 'partial_outage', 'major_outage' or 'under_maintenance'",
        ),
    ],
)
def test_statuspage_config_is_strict(changes: dict[str, Any], message: str) -> None:
    assert rejected(StatuspageConfig, SP | changes) == message


def test_pagerduty_oncall_defaults() -> None:
    config = PagerDutyOncallConfig.model_validate(PD)
    assert (config.api_url, config.refresh_seconds, config.cache_seconds) == (
        "https://api.pagerduty.com",
        300,
        86_400,
    )
    mapped = PagerDutyOncallConfig.model_validate(
        PD | {"user_map": {"PJANE01": "U0JANE0001", "John@Example.com": "U0JOHN0002"}}
    )
    assert mapped.slack_id_for("PJANE01", None) == "U0JANE0001"
    assert mapped.slack_id_for("PJOHN02", "john@example.com") == "U0JOHN0002"
    assert mapped.slack_id_for("PNOBODY", "x@example.com") is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedule": {"eng-primary": "PI7DH85"}}, "schedule: unknown key"),
        (
            {"schedules": {"eng-secondary": "PI7DH85"}},
            "schedules: must define 'eng-primary': it is paged first",
        ),
        (
            {"schedules": {"eng-primary": "Daily rotation"}},
            "schedules: schedule ids must be PagerDuty ids like PI7DH85 (roles eng-primary)",
        ),
        (
            {"user_map": {"PJANE01": "jane"}},
            "user_map: values must be Slack user ids like U0123ABCD (for PJANE01)",
        ),
        ({"refresh_seconds": 5}, "refresh_seconds: Input should be greater than or equal to 30"),
        (
            {"refresh_seconds": 3600, "cache_seconds": 3600},
            "oncall.pagerduty.cache_seconds (3600) must be at least twice refresh_seconds (3600)",
        ),
        (
            {"api_url": "api.pagerduty.com"},
            "api_url: must start with https:// (or http:// for a local stand-in)",
        ),
    ],
)
def test_pagerduty_oncall_config_is_strict(changes: dict[str, Any], message: str) -> None:
    assert rejected(PagerDutyOncallConfig, PD | changes) == message


def test_provider_cross_checks() -> None:
    pd = PagerDutyOncallConfig.model_validate(PD)
    assert provider_problems("config", None, ["eng-primary"]) == []
    assert provider_problems("config", pd, ["eng-primary"]) == [
        "oncall.pagerduty is set but oncall.provider is 'config'"
    ]
    assert provider_problems("pagerduty", None, []) == [
        "oncall.provider is 'pagerduty' but oncall.pagerduty is not set"
    ]
    assert provider_problems("pagerduty", pd, []) == []
    assert provider_problems("pagerduty", pd, ["eng-primary", "leadership"]) == [
        "oncall.rotations are the fallback for PagerDuty's schedules, but"
        " oncall.pagerduty.schedules has no 'leadership'"
    ]
