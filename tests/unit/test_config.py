"""Strict configuration: every rejected config has a fixture and its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from router.cli import main
from router.config import ConfigError, Secrets, check_startable, config_warnings, load_config

REJECTED = sorted(Path(__file__).parents[1].joinpath("fixtures/config/rejected").glob("*.yaml"))
EXAMPLE = Path(__file__).parents[2] / "config" / "router.example.yaml"


def _expected(path: Path) -> str:
    lines = [line[len("# error: ") :] for line in path.read_text().splitlines()]
    return "\n".join(
        line for line, raw in zip(lines, path.read_text().splitlines(), strict=True)
        if raw.startswith("# error: ")
    )  # fmt: skip


@pytest.mark.parametrize("path", REJECTED, ids=[p.stem for p in REJECTED])
def test_rejected_config_has_exact_message(path: Path) -> None:
    relative = path.relative_to(Path(__file__).parents[2])
    with pytest.raises(ConfigError) as caught:
        load_config(relative if "not_a_mapping" in path.name else path, {})
    assert str(caught.value) == _expected(path)


def test_there_is_a_fixture_per_kind_of_mistake() -> None:
    assert len(REJECTED) >= 8


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE, {})
    assert config.store.url == "sqlite:///data/router.db"
    assert config.slack.incident_channel == "C0123456789"


def test_defaults_without_a_file() -> None:
    config = load_config(None, {})
    assert config.server.port == 8080
    assert config.alertmanager.auth == "bearer"


def test_env_overrides_any_key_as_yaml_scalar() -> None:
    config = load_config(
        EXAMPLE,
        {"ROUTER__SERVER__PORT": "9090", "ROUTER__GITHUB__ALLOW_PUBLIC_REPO": "true"},
    )
    assert config.server.port == 9090
    assert config.github.allow_public_repo is True


def test_env_override_of_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLE, {"ROUTER__SERVER__PROT": "9090"})
    assert str(caught.value) == "server.prot: unknown key"


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path, {})


def test_secrets_come_from_env_or_files(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    secrets = Secrets.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "GITHUB_TOKEN_FILE": str(token_file)})
    assert secrets.SLACK_BOT_TOKEN == "xoxb-1"
    assert secrets.GITHUB_TOKEN == "from-file"


def test_secrets_are_masked_everywhere() -> None:
    secrets = Secrets(SLACK_BOT_TOKEN="xoxb-very-secret")
    assert "xoxb-very-secret" not in repr(secrets)
    assert secrets.masked()["SLACK_BOT_TOKEN"] == "set (16 chars)"
    assert secrets.masked()["GITHUB_TOKEN"] == "not set"


def test_serve_refuses_without_alertmanager_token() -> None:
    problems = check_startable(load_config(None, {}), Secrets())
    assert problems and "ALERTMANAGER_TOKEN is not set" in problems[0]
    none_auth = load_config(None, {"ROUTER__ALERTMANAGER__AUTH": "none"})
    assert check_startable(none_auth, Secrets()) == []


def test_check_config_prints_effective_config_with_secrets_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTMANAGER_TOKEN", "super-secret-value")
    monkeypatch.setenv("ROUTER__SERVER__PORT", "8181")
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "port: 8181" in out
    assert "ALERTMANAGER_TOKEN: set (18 chars)" in out
    assert "super-secret-value" not in out
    assert out.rstrip().endswith("config ok")


def test_check_config_fails_naming_a_misspelt_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = Path(__file__).parents[1] / "fixtures/config/rejected/misspelt_key.yaml"
    assert main(["check-config", "--config", str(path)]) == 2
    assert "slack.incident_chanel: unknown key" in capsys.readouterr().err


def test_readme_example_payload_is_accepted_by_the_parser_and_explained(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fixture = Path(__file__).parents[1] / "fixtures/alertmanager/high_latency.json"
    assert main(["--config", str(EXAMPLE), "explain", str(fixture)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('critical — "extreme or complete production outage"')


def test_check_config_masks_the_database_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER__STORE__URL", "postgresql://router:hunter2@db:5432/router")
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "postgresql://router:***@db:5432/router" in out


def test_check_config_names_a_missing_oncall_section(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without oncall the router starts and pages nobody: check-config says so."""
    monkeypatch.setenv("ALERTMANAGER_TOKEN", "t")
    path = Path(__file__).parents[1] / "fixtures/config/no_oncall.yaml"
    assert main(["check-config", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    [line] = [line for line in captured.err.splitlines() if "oncall" in line]
    assert line.startswith("warning: oncall: no on-call schedule is configured")
    assert "nobody is paged" in line
    assert captured.out.rstrip().endswith("config ok, with 1 warning(s) above")


def test_the_example_config_has_no_warnings() -> None:
    assert config_warnings(load_config(EXAMPLE, {})) == []


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        (
            {"name_template": "inc-{title}"},
            "incident.channel.name_template: unknown field {title}; known: {date}, {number}, "
            "{severity}, {slug}",
        ),
        (
            {"name_template": "incident-{severity}"},
            "incident.channel.name_template: the template needs {number} or {slug} to tell "
            "incidents apart",
        ),
        (
            {"responders": ["alice"]},
            "incident.channel.responders: 'alice' is not a Slack user id (U...)",
        ),
        ({"mode": "dm"}, "incident.channel.mode: Input should be 'channel' or 'thread'"),
        (
            {"archive_after_days": -1},
            "incident.channel.archive_after_days: Input should be greater than or equal to 0",
        ),
    ],
)
def test_incident_channel_config_is_checked(
    tmp_path: Path, channel: dict[str, object], message: str
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump({"incident": {"channel": channel}}))
    with pytest.raises(ConfigError) as raised:
        load_config(path, {})
    assert str(raised.value) == message


def test_socket_mode_needs_an_app_token(tmp_path: Path) -> None:
    config = load_config(None, {"ROUTER__SLACK__SOCKET_MODE": "true"})
    assert check_startable(config, Secrets(ALERTMANAGER_TOKEN="t")) == [
        "slack.socket_mode is true but SLACK_APP_TOKEN is not set (an app-level token, "
        "xapp-..., with connections:write)"
    ]
    wrong = Secrets(ALERTMANAGER_TOKEN="t", SLACK_APP_TOKEN="xoxb-1")
    assert "must be an app-level token (xapp-...)" in check_startable(config, wrong)[0]
    assert check_startable(config, Secrets(ALERTMANAGER_TOKEN="t", SLACK_APP_TOKEN="xapp-1")) == []
