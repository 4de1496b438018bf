"""Console mode shows forms and ``router press --submit`` submits them: the command the
console prints, pasted, is a submission the router reads as what was typed."""

from __future__ import annotations

import argparse
import io
import shlex
from datetime import UTC, datetime

import pytest

from router import cli
from router.adapters.slack.opener import ConsoleViews
from router.config import ConfigError
from router.core import modals
from router.core.incident import Incident
from router.core.severity import Severity, Suggestion


def incident() -> Incident:
    return Incident(
        number=7,
        title="Checkout 500s",
        commander="U0COMMAND1",
        severity=Severity.CRITICAL,
        severity_reason="extreme or complete production outage",
        suggestion=Suggestion(severity=Severity.CRITICAL, clause="x"),
        declared_at=datetime(2026, 3, 2, tzinfo=UTC),
        declared_by="U0COMMAND1",
        announce_job="incident:7:announce",
    )


def pasted(line: str, *extra: str) -> argparse.Namespace:
    """The printed ``router press --submit ...`` line as the CLI parses it."""
    words = shlex.split(line)
    assert words[:2] == ["router", "press"]
    parser = argparse.ArgumentParser()
    parser.add_argument("action_id", nargs="?")
    parser.add_argument("value", nargs="?")
    parser.add_argument("--submit")
    parser.add_argument("--meta")
    parser.add_argument("--field", action="append")
    parser.add_argument("--user", required=True)
    return parser.parse_args([*words[2:], *extra])


async def test_the_console_prints_the_resolve_form_and_the_command_that_submits_it() -> None:
    out = io.StringIO()
    await ConsoleViews(out).open("", modals.resolve_view(incident()), "U0COMMAND1")
    printed = out.getvalue()
    assert "Slack form for U0COMMAND1: Resolve INC-7" in printed
    assert "Customer impact (optional)" in printed
    [line] = [ln.strip() for ln in printed.splitlines() if ln.strip().startswith("router press")]
    # the post-mortem the policy owes is pre-filled, as Slack pre-fills it
    assert "--field postmortem=owed" in line
    args = pasted(line.replace("summary=...", "'summary=rolled back'"), "--field", "impact=EU")
    parsed = modals.parse_submission(cli._submission(args))
    assert parsed == modals.Resolve(
        user="U0COMMAND1",
        view_id=parsed.view_id,
        number=7,
        summary="rolled back",
        impact="EU",
        postmortem_owed=True,
    )


async def test_a_console_submission_missing_a_field_is_refused_by_the_router_not_the_cli() -> None:
    out = io.StringIO()
    await ConsoleViews(out).open("", modals.declare_view(channel_id=None), "U0RESPOND4")
    [line] = [ln.strip() for ln in out.getvalue().splitlines() if "router press" in ln]
    args = pasted(line.replace("title=...", "title= "))
    refused = modals.parse_submission(cli._submission(args))
    assert refused == modals.Refused({"title": "Say what is wrong: a short title."})


def test_press_submit_names_an_unknown_form_and_a_bad_field() -> None:
    args = argparse.Namespace(submit="incident.nope", meta=None, field=[], user="U1")
    with pytest.raises(ConfigError, match=r"no form 'incident\.nope'"):
        cli._submission(args)
    args = argparse.Namespace(submit="incident.declare", meta=None, field=["title"], user="U1")
    with pytest.raises(ConfigError, match="write name=value"):
        cli._submission(args)
    args = argparse.Namespace(submit="incident.declare", meta="[", field=[], user="U1")
    with pytest.raises(ConfigError, match="--meta must be the form's JSON"):
        cli._submission(args)
