"""Configuration of the doc, the status page and PagerDuty on-call: the sections, the
secrets (never shown), what makes serve refuse, and the example file's blocks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.app.clock import FrozenClock
from router.bootstrap import build_adapters, build_oncall, build_policy
from router.cli import main
from router.config import RouterConfig, Secrets, check_startable
from router.core.oncall import Schedule
from router.core.oncall_snapshot import CurrentOncall
from router.metrics import Metrics
from tests.conftest import T0

EXAMPLE = Path(__file__).parents[2] / "config" / "router.example.yaml"
PAGERDUTY = {"provider": "pagerduty", "pagerduty": {"schedules": {"eng-primary": "PI7DH85"}}}
DOC = {"template_document_id": "TEMPLATE0123456789", "folder_id": "FOLDER0123456789"}


def commented(name: str, indent: str = "") -> dict[str, Any]:
    """A block of the example config that is commented out, as YAML."""
    text = EXAMPLE.read_text()
    block = re.search(rf"^{indent}# {name}:\n(?:{indent}#.*\n)+", text, re.M)
    assert block, f"{name} is not documented in the example config"
    lines = [line[len(indent) + 2 :] for line in block.group(0).splitlines()]
    document: dict[str, Any] = yaml.safe_load("\n".join(lines))
    return document


def test_the_example_documents_each_section_and_each_block_is_valid() -> None:
    base = yaml.safe_load(EXAMPLE.read_text())
    oncall = base["oncall"] | {"provider": "pagerduty"} | commented("pagerduty", "  ")
    config = RouterConfig.model_validate(
        base | {"oncall": oncall} | commented("statuspage")
        | {"incident": commented("incident")["incident"]}
    )  # fmt: skip
    assert config.oncall is not None and config.oncall.pagerduty is not None
    assert config.oncall.pagerduty.schedules["eng-primary"] == "PI7DH85"
    assert config.statuspage is not None and config.statuspage.component_ids
    assert config.incident.doc is not None and config.incident.doc.share_with_link is False


def test_with_pagerduty_the_rotations_are_optional() -> None:
    config = RouterConfig.model_validate({"oncall": PAGERDUTY})
    assert config.oncall is not None and config.oncall.rotations == {}
    # without a provider the rotations must still define eng-primary
    with pytest.raises(ValueError, match="must define 'eng-primary'"):
        RouterConfig.model_validate({"oncall": {"rotations": {}}})


def test_serve_refuses_without_the_secrets_each_part_needs() -> None:
    config = RouterConfig.model_validate(
        {
            "oncall": PAGERDUTY,
            "statuspage": {"page_id": "gytm4qzbx9t6"},
            "incident": {"doc": DOC},
            "alertmanager": {"auth": "none"},
        }
    )
    assert check_startable(config, Secrets()) == [
        "statuspage is configured but STATUSPAGE_API_KEY is not set",
        "incident.doc is configured but GOOGLE_APPLICATION_CREDENTIALS (the path of"
        " the service account key file) is not set",
        "oncall.provider is pagerduty but PAGERDUTY_API_TOKEN is not set",
    ]
    secrets = Secrets(
        STATUSPAGE_API_KEY="k", GOOGLE_APPLICATION_CREDENTIALS="/k.json", PAGERDUTY_API_TOKEN="t"
    )
    assert check_startable(config, secrets) == []


def test_the_key_file_path_is_shown_only_as_set() -> None:
    secrets = Secrets(
        GOOGLE_APPLICATION_CREDENTIALS="/var/run/secrets/google/key.json",
        STATUSPAGE_API_KEY="sp-key",
        PAGERDUTY_API_TOKEN="pd-token",
    )
    masked = secrets.masked()
    assert masked["GOOGLE_APPLICATION_CREDENTIALS"] == "set"
    assert masked["STATUSPAGE_API_KEY"] == "set (6 chars)"
    assert masked["PAGERDUTY_API_TOKEN"] == "set (8 chars)"
    assert "key.json" not in repr(secrets) and "pd-token" not in repr(secrets)


def test_check_config_shows_whether_the_secrets_are_set_never_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(json.dumps({"incident": {"doc": DOC}, "alertmanager": {"auth": "none"}}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/secret/place/key.json")
    monkeypatch.setenv("STATUSPAGE_API_KEY", "sp-key-never-shown")
    assert main(["--config", str(path), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "GOOGLE_APPLICATION_CREDENTIALS: set\n" in out
    assert "STATUSPAGE_API_KEY: set (18 chars)" in out
    assert "/secret/place" not in out and "sp-key-never-shown" not in out
    assert "template_document_id: TEMPLATE0123456789" in out


def test_an_unusable_key_file_stops_serve_naming_the_file_not_its_text(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "authorized_user", "refresh_token": "SECRET-TEXT"}))
    config = RouterConfig.model_validate({"incident": {"doc": DOC}})
    secrets = Secrets(GOOGLE_APPLICATION_CREDENTIALS=str(key))
    with pytest.raises(RuntimeError) as caught:
        build_adapters(config, secrets)
    assert str(caught.value) == (
        f"GOOGLE_APPLICATION_CREDENTIALS: {key} is not a service account key"
    )
    assert "SECRET-TEXT" not in str(caught.value)


def test_the_policy_asks_the_provider_when_pagerduty_is_the_source() -> None:
    rotations = {
        "eng-primary": {"members": ["U01PRIMARY"], "start": "2026-01-05T09:00:00",
                        "handoff_time": "09:00", "timezone": "UTC"},
    }  # fmt: skip
    config = RouterConfig.model_validate({"oncall": PAGERDUTY | {"rotations": rotations}})
    secrets = Secrets(PAGERDUTY_API_TOKEN="t")
    provider = build_oncall(config, secrets, Metrics(), FrozenClock(T0), None)
    assert provider is not None
    policy = build_policy(config, secrets, CurrentOncall(provider.current))
    assert policy is not None and isinstance(policy.schedule, CurrentOncall)
    # before PagerDuty answered: the rotations (the fallback) answer
    assert policy.schedule.who_is_on("eng-primary", T0) == "U01PRIMARY"
    # the config provider keeps today's schedule
    plain = RouterConfig.model_validate({"oncall": {"rotations": rotations}})
    assert build_oncall(plain, secrets, Metrics(), FrozenClock(T0), None) is None
    built = build_policy(plain, secrets)
    assert built is not None and isinstance(built.schedule, Schedule)
