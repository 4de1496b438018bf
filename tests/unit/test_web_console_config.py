"""The console's ``web`` section: strict, every rejected config with its exact message,
and its secrets from the environment."""

from __future__ import annotations

import logging
from ipaddress import ip_network
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from router.adapters.web.config import ConsoleSecrets, WebConfig, check_startable
from router.config import ConfigError, describe_validation_error, load_config
from router.core.strict import Strict

HERE = Path(__file__).parents[1]
REJECTED = sorted(HERE.joinpath("fixtures/config/web_rejected").glob("*.yaml"))
EXAMPLE = HERE.parent / "config" / "router.example.yaml"


class _Document(Strict):
    """How RouterConfig will hold it (phase B adds ``web`` there), so paths read alike."""

    web: WebConfig


def load(document: object) -> WebConfig:
    try:
        return _Document.model_validate(document).web
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc


@pytest.mark.parametrize("path", REJECTED, ids=[p.stem for p in REJECTED])
def test_rejected_web_config_has_exact_message(path: Path) -> None:
    text = path.read_text()
    expected = "\n".join(line[len("# error: ") :] for line in text.splitlines()
                         if line.startswith("# error: "))  # fmt: skip
    assert expected, f"{path.name} names no expected error"
    with pytest.raises(ConfigError) as caught:
        load(yaml.safe_load(text))
    assert str(caught.value) == expected


def test_a_fixture_per_kind_of_mistake() -> None:
    assert len(REJECTED) >= 12


def test_proxy_mode_defaults() -> None:
    config = load({"web": {"auth": {"mode": "proxy", "trusted_proxies": ["127.0.0.1/32"]}}})
    assert config.public_url is None
    assert config.auth.proxy_header == "X-Forwarded-User"
    assert config.auth.email_header == "X-Forwarded-Email"
    assert config.auth.trusted_proxies == (ip_network("127.0.0.1/32"),)
    assert config.auth.session_hours == 12
    assert config.auth.proxy_sign_out_url == "/oauth2/sign_out"
    assert not config.secure_cookies


def test_slack_mode_and_https() -> None:
    config = load(
        {
            "web": {
                "public_url": "https://router.example.com/",
                "auth": {
                    "mode": "slack",
                    "session_hours": 8,
                    "slack": {"client_id": "2141029472.691202649728", "team_id": "T0123ABCD"},
                },
            }
        }
    )
    assert config.public_url == "https://router.example.com"  # the trailing / dropped
    assert config.secure_cookies
    assert config.auth.slack is not None
    assert config.auth.slack.oidc_url == "https://slack.com"


def test_trusted_proxies_from_an_env_override_read_as_yaml() -> None:
    # ROUTER__WEB__AUTH__TRUSTED_PROXIES='[10.0.0.0/8, "fd00::/8"]' is read as YAML
    value = yaml.safe_load('[10.0.0.0/8, "fd00::/8"]')
    config = load({"web": {"auth": {"mode": "proxy", "trusted_proxies": value}}})
    assert [str(n) for n in config.auth.trusted_proxies] == ["10.0.0.0/8", "fd00::/8"]


def test_the_example_config_serves_the_console_in_proxy_mode() -> None:
    """`make run` serves the console; the README's one curl step (the local machine as
    the proxy) works because the example trusts 127.0.0.1 only."""
    config = load_config(EXAMPLE, {})
    assert config.web is not None
    assert config.web.auth.mode == "proxy"
    assert [str(n) for n in config.web.auth.trusted_proxies] == ["127.0.0.1/32"]
    assert config.web.auth.proxy_header == "X-Forwarded-User"
    assert config.web.public_url == "http://127.0.0.1:8080"


# ------------------------------------------------------------------------ secrets


def test_secrets_from_env_and_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("from-a-file\n")
    secrets = ConsoleSecrets.from_env(
        {"ROUTER_SESSION_SECRET": "s" * 32, "SLACK_CLIENT_SECRET_FILE": str(secret_file)}
    )
    assert secrets.session_secret == b"s" * 32
    assert not secrets.session_secret_generated
    assert secrets.slack_client_secret == "from-a-file"
    assert "from-a-file" not in repr(secrets) and "sss" not in repr(secrets)
    assert secrets.masked() == {
        "ROUTER_SESSION_SECRET": "set (32 chars)",
        "SLACK_CLIENT_SECRET": "set (11 chars)",
    }


def test_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SLACK_CLIENT_SECRET_FILE: cannot read"):
        ConsoleSecrets.from_env({"SLACK_CLIENT_SECRET_FILE": str(tmp_path / "missing")})


def test_session_secret_is_generated_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        one = ConsoleSecrets.from_env({})
        two = ConsoleSecrets.from_env({})
    assert one.session_secret_generated and len(one.session_secret) == 32
    assert one.session_secret != two.session_secret
    assert "ROUTER_SESSION_SECRET is not set" in caplog.text
    assert one.masked()["ROUTER_SESSION_SECRET"] == "generated at start"


def test_startable_needs_the_client_secret_in_slack_mode() -> None:
    slack = load(
        {
            "web": {
                "public_url": "https://router.example.com",
                "auth": {"mode": "slack", "slack": {"client_id": "1.2", "team_id": "T0123"}},
            }
        }
    )
    proxy = load({"web": {"auth": {"mode": "proxy", "trusted_proxies": ["127.0.0.1/32"]}}})
    without = ConsoleSecrets(b"k" * 32, False, None)
    assert check_startable(slack, without) == [
        "SLACK_CLIENT_SECRET is not set: Sign in with Slack cannot exchange its codes "
        "(the app's Client Secret, Basic Information page)"
    ]
    assert check_startable(proxy, without) == []
    assert check_startable(proxy, ConsoleSecrets(b"short", False, None)) == [
        "ROUTER_SESSION_SECRET is too short: use at least 16 characters"
    ]


def test_check_config_shows_the_console_and_masks_its_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.cli import main

    monkeypatch.setenv("ALERTMANAGER_TOKEN", "token")
    monkeypatch.setenv("ROUTER_SESSION_SECRET", "session-secret-of-33-characters!!")
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "web:\n  public_url: http://127.0.0.1:8080\n  auth:\n    mode: proxy" in out
    assert "trusted_proxies:\n    - 127.0.0.1/32" in out
    assert "ROUTER_SESSION_SECRET: set (33 chars)" in out
    assert "SLACK_CLIENT_SECRET: not set" in out
    assert "session-secret-of-33" not in out
    assert out.rstrip().endswith("config ok")
    # too short to sign sessions with: valid, but serve would refuse
    monkeypatch.setenv("ROUTER_SESSION_SECRET", "short")
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    captured = capsys.readouterr()
    assert "ROUTER_SESSION_SECRET is too short" in captured.err
    assert captured.out.rstrip().endswith("config ok, but serve would refuse to start")


def test_check_config_warns_of_a_proxy_trusted_from_everywhere() -> None:
    from router.config import config_warnings

    wide = load_config(EXAMPLE, {"ROUTER__WEB__AUTH__TRUSTED_PROXIES": "[0.0.0.0/0, 10.0.0.0/8]"})
    assert config_warnings(wide) == [
        "web.auth.trusted_proxies: 0.0.0.0/0 is wider than a /8: anyone connecting from "
        "there can sign in to the console as anyone (list only the sign-in proxy's addresses)"
    ]
    assert config_warnings(load_config(EXAMPLE, {})) == []
