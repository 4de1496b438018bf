"""Modals where people type: the views, and what their submissions mean.

View limits are Slack's (docs.slack.dev/reference/views/modal-views): title at most 24
characters, at most 100 blocks, private_metadata at most 3,000 characters, callback_id
at most 255, block_id unique in the view and action_id unique in its block, ``submit``
present when there is an input block. A ``view_submission`` carries the values at
``view.state.values[block_id][action_id]``; an answer of
``{"response_action": "errors", "errors": {block_id: message}}`` keeps the modal open
with the message under that field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router.core import modals
from router.core.incident import Flag, Incident
from router.core.messages import DISMISS_REASONS
from router.core.modals import (
    CALLBACK_DECLARE,
    CALLBACK_DISMISS,
    CALLBACK_RESOLVE,
    CALLBACK_UPDATE,
    Declare,
    Dismiss,
    Refused,
    Resolve,
    StatusUpdate,
    SubmissionError,
    declare_view,
    dismiss_view,
    parse_submission,
    resolve_view,
    simulate_submission,
    status_update_view,
)
from router.core.severity import Severity, Suggestion

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slack"
AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
JANE = "U0JANE0001"


def incident(severity: Severity = Severity.HIGH, flags: tuple[Flag, ...] = ()) -> Incident:
    suggestion = Suggestion(severity=severity, clause="partial outage")
    return Incident(
        number=12,
        title="Checkout returns 500s",
        commander=JANE,
        severity=severity,
        severity_reason=suggestion.clause,
        suggestion=suggestion,
        declared_at=AT,
        declared_by=JANE,
        announce_job="incident:12:announce",
        flags=list(flags),
    )


ALL_VIEWS = {
    "declare": lambda: declare_view(channel_id="C0INCIDENTS"),
    "dismiss": lambda: dismiss_view(page_key="p86e62eccfb83593a", title="HighLatency", level=0),
    "resolve": lambda: resolve_view(incident(Severity.CRITICAL, (Flag.CUSTOMERS,))),
    "update": lambda: status_update_view(incident()),
}


def limits_broken(view: dict[str, Any]) -> list[str]:
    """Slack's view limits, checked independently of the code under test."""
    broken = []
    if view.get("type") != "modal":
        broken.append("type")
    if len(view["title"]["text"]) > 24 or view["title"]["type"] != "plain_text":
        broken.append("title")
    for key in ("submit", "close"):
        if key in view and len(view[key]["text"]) > 24:
            broken.append(key)
    if len(view["blocks"]) > 100:
        broken.append("blocks")
    if len(view.get("private_metadata", "")) > 3000:
        broken.append("private_metadata")
    if not 0 < len(view.get("callback_id", "")) <= 255:
        broken.append("callback_id")
    block_ids = [b.get("block_id") for b in view["blocks"] if b.get("block_id")]
    if len(block_ids) != len(set(block_ids)):
        broken.append("block_id unique")
    action_ids = []
    for block in view["blocks"]:
        elements = block.get("elements") or [block.get("element") or block.get("accessory")]
        ids = [e["action_id"] for e in elements if e and "action_id" in e]
        if len(ids) != len(set(ids)):
            broken.append("action_id unique in block")
        action_ids += ids
        if block["type"] == "input":
            if len(block["label"]["text"]) > 2000 or "element" not in block:
                broken.append("input")
            for option in block["element"].get("options", []):
                if len(option["text"]["text"]) > 75 or len(option["value"]) > 150:
                    broken.append("option")
                if len(option.get("description", {}).get("text", "")) > 75:
                    broken.append("option description")
    if any(b["type"] == "input" for b in view["blocks"]) and "submit" not in view:
        broken.append("submit")
    if len(action_ids) != len(set(action_ids)):
        broken.append("action_id unique in view")
    return broken


@pytest.mark.parametrize("which", sorted(ALL_VIEWS))
def test_every_view_keeps_slacks_limits(which: str) -> None:
    view = ALL_VIEWS[which]()
    assert limits_broken(view) == []
    json.loads(view["private_metadata"])  # what the submission needs, as JSON


def test_callback_ids_route_each_view() -> None:
    assert {ALL_VIEWS[w]()["callback_id"] for w in ALL_VIEWS} == {
        CALLBACK_DECLARE,
        CALLBACK_DISMISS,
        CALLBACK_RESOLVE,
        CALLBACK_UPDATE,
    }


def test_a_huge_page_title_still_fits() -> None:
    view = dismiss_view(page_key="p" * 200, title="x" * 5000, level=3)
    assert limits_broken(view) == []


# ------------------------------------------------------------------ declare


def test_declare_submission_from_slacks_payload_shape() -> None:
    payload = json.loads((FIXTURES / "view_submission_declare.json").read_text())
    got = parse_submission(payload)
    assert got == Declare(
        user=JANE,
        view_id="V0DECLARE01",
        title="Checkout returns 500s in eu-west",
        description="Since the 10:00 deploy; card payments fail.",
        severity=Severity.HIGH,
        confidential=True,
        commander=True,
        channel="C0INCIDENTS",
    )


def test_declare_view_offers_what_the_issue_asks() -> None:
    view = declare_view(channel_id="C1")
    by_id = {b["block_id"]: b for b in view["blocks"] if "block_id" in b}
    assert {"title", "description", "severity", "confidential", "who"} <= set(by_id)
    assert by_id["title"]["optional"] is False
    assert by_id["severity"]["optional"] is True
    assert [o["value"] for o in by_id["severity"]["element"]["options"]] == [
        "critical",
        "high",
        "medium",
        "low",
    ]
    who = [o["value"] for o in by_id["who"]["element"]["options"]]
    assert who == ["commander", "page"]


def test_declare_minimal_page_eng_primary() -> None:
    view = declare_view(channel_id=None)
    got = parse_submission(
        simulate_submission(view, user=JANE, values={"title": "DB slow", "who": "page"})
    )
    assert got == Declare(
        user=JANE,
        view_id="V0CONSOLE",
        title="DB slow",
        description=None,
        severity=None,
        confidential=False,
        commander=False,
        channel=None,
    )


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({"title": "   ", "who": "page"}, "title", "what is wrong"),
        ({"who": "page"}, "title", "what is wrong"),
        ({"title": "x" * 151, "who": "page"}, "title", "150"),
        ({"title": "DB", "who": "page", "description": "d" * 3001}, "description", "3000"),
        ({"title": "DB"}, "who", "commander"),
        ({"title": "DB", "who": "nobody"}, "who", "commander"),
        ({"title": "DB", "who": "page", "severity": "sev0"}, "severity", "critical"),
    ],
)
def test_declare_refusals_name_the_field(values: dict[str, Any], field: str, says: str) -> None:
    view = declare_view(channel_id="C1")
    got = parse_submission(simulate_submission(view, user=JANE, values=values, strict=False))
    assert isinstance(got, Refused)
    assert field in got.errors
    assert says in got.errors[field].lower()
    assert got.answer() == {"response_action": "errors", "errors": got.errors}


# ------------------------------------------------------------------ not an incident


def test_dismiss_records_the_reason_and_the_note() -> None:
    view = dismiss_view(page_key="pkey1", title="HighLatency", level=1)
    values = {"reason": "2", "note": "alert flaps since the scrape change"}
    got = parse_submission(simulate_submission(view, user=JANE, values=values))
    assert got == Dismiss(
        user=JANE,
        view_id="V0CONSOLE",
        page_key="pkey1",
        level=1,
        reason=DISMISS_REASONS[2],
        note="alert flaps since the scrape change",
    )
    assert isinstance(got, Dismiss)
    assert got.recorded_reason == f"{DISMISS_REASONS[2]}: alert flaps since the scrape change"


def test_dismiss_offers_the_existing_reasons() -> None:
    view = dismiss_view(page_key="pkey1", title="HighLatency", level=0)
    (select,) = [b for b in view["blocks"] if b.get("block_id") == "reason"]
    assert [o["text"]["text"] for o in select["element"]["options"]] == list(DISMISS_REASONS)


def test_dismiss_with_only_a_note_or_only_a_reason() -> None:
    view = dismiss_view(page_key="pkey1", title="T", level=0)
    only_note = parse_submission(simulate_submission(view, user=JANE, values={"note": "test"}))
    assert isinstance(only_note, Dismiss)
    assert only_note.recorded_reason == "test"
    only_reason = parse_submission(simulate_submission(view, user=JANE, values={"reason": "0"}))
    assert isinstance(only_reason, Dismiss)
    assert only_reason.recorded_reason == DISMISS_REASONS[0]


@pytest.mark.parametrize(
    ("values", "field"),
    [({}, "reason"), ({"note": "  "}, "reason"), ({"reason": "99"}, "reason"),
     ({"note": "n" * 1001}, "note")],
)  # fmt: skip
def test_dismiss_refusals(values: dict[str, Any], field: str) -> None:
    view = dismiss_view(page_key="pkey1", title="T", level=0)
    got = parse_submission(simulate_submission(view, user=JANE, values=values, strict=False))
    assert isinstance(got, Refused)
    assert list(got.errors) == [field]


# ------------------------------------------------------------------ resolve


def test_resolve_prefills_the_post_mortem_from_the_flags() -> None:
    def box(inc: Incident) -> list[str]:
        (block,) = [b for b in resolve_view(inc)["blocks"] if b.get("block_id") == "postmortem"]
        return [o["value"] for o in block["element"].get("initial_options", [])]

    assert box(incident(Severity.HIGH)) == []
    assert box(incident(Severity.HIGH, (Flag.OUTAGE,))) == ["owed"]
    assert box(incident(Severity.MEDIUM, (Flag.DATA_LOSS,))) == ["owed"]
    assert box(incident(Severity.CRITICAL)) == ["owed"]


def test_resolve_submission() -> None:
    view = resolve_view(incident(Severity.HIGH, (Flag.OUTAGE,)))
    values = {
        "summary": "rolled back 4.2",
        "impact": "EU checkout failed 20 min",
        "postmortem": ["owed"],
    }
    got = parse_submission(simulate_submission(view, user=JANE, values=values))
    assert got == Resolve(
        user=JANE,
        view_id="V0CONSOLE",
        number=12,
        summary="rolled back 4.2",
        impact="EU checkout failed 20 min",
        postmortem_owed=True,
    )


def test_resolve_refuses_to_drop_a_post_mortem_the_policy_owes() -> None:
    view = resolve_view(incident(Severity.CRITICAL))
    got = parse_submission(
        simulate_submission(view, user=JANE, values={"summary": "fixed", "postmortem": []})
    )
    assert isinstance(got, Refused)
    assert "post-mortem" in got.errors["postmortem"].lower()


def test_resolve_with_customers_affected_asks_for_the_impact() -> None:
    view = resolve_view(incident(Severity.HIGH, (Flag.CUSTOMERS,)))
    (impact,) = [b for b in view["blocks"] if b.get("block_id") == "impact"]
    assert impact["optional"] is False  # Slack's client asks first; the router checks again
    submitted = simulate_submission(view, user=JANE, values={"summary": "fixed"}, strict=False)
    got = parse_submission(submitted)
    assert isinstance(got, Refused)
    assert list(got.errors) == ["impact"]
    ok = parse_submission(
        simulate_submission(view, user=JANE, values={"summary": "fixed", "impact": "slow pages"})
    )
    assert isinstance(ok, Resolve)


def test_resolve_post_mortem_may_be_asked_for_when_not_owed() -> None:
    view = resolve_view(incident(Severity.LOW))
    got = parse_submission(
        simulate_submission(view, user=JANE, values={"summary": "ok", "postmortem": ["owed"]})
    )
    assert isinstance(got, Resolve)
    assert got.postmortem_owed is True


def test_resolve_needs_a_summary() -> None:
    view = resolve_view(incident())
    got = parse_submission(simulate_submission(view, user=JANE, values={}, strict=False))
    assert isinstance(got, Refused)
    assert list(got.errors) == ["summary"]


# ------------------------------------------------------------------ status update


def test_status_update_submission_and_refusal() -> None:
    view = status_update_view(incident())
    got = parse_submission(
        simulate_submission(view, user=JANE, values={"update": "rollback at 50%"})
    )
    assert got == StatusUpdate(user=JANE, view_id="V0CONSOLE", number=12, text="rollback at 50%")
    empty = parse_submission(simulate_submission(view, user=JANE, values={"update": " "}))
    assert isinstance(empty, Refused)
    assert list(empty.errors) == ["update"]


# ------------------------------------------------------- what is not a submission of ours


def base_payload() -> dict[str, Any]:
    return simulate_submission(status_update_view(incident()), user=JANE, values={"update": "x"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.update(type="block_actions"), "type"),
        (lambda p: p.pop("user"), "user.id"),
        (lambda p: p["view"].update(callback_id="someone.else"), "view.callback_id"),
        (lambda p: p["view"].update(private_metadata="not json"), "view.private_metadata"),
        (lambda p: p["view"].update(private_metadata='{"v":1}'), "view.private_metadata"),
        (
            lambda p: p["view"].update(private_metadata='{"v":2,"incident":1}'),
            "view.private_metadata",
        ),
        (lambda p: p["view"].update(state=[]), "view.state.values"),
        (lambda p: p["view"]["state"]["values"].update(update=[]), "view.state.values.update"),
    ],
)
def test_malformed_submissions_name_the_field(change: Any, field: str) -> None:
    payload = base_payload()
    change(payload)
    with pytest.raises(SubmissionError) as caught:
        parse_submission(payload)
    assert caught.value.field == field


def test_simulate_refuses_fields_the_view_does_not_have() -> None:
    with pytest.raises(ValueError, match="no field 'titel'"):
        simulate_submission(declare_view(channel_id=None), user=JANE, values={"titel": "x"})
    with pytest.raises(ValueError, match="not an option"):
        simulate_submission(
            declare_view(channel_id=None), user=JANE, values={"title": "x", "who": "me"}
        )
    with pytest.raises(ValueError, match="title is required"):
        simulate_submission(declare_view(channel_id=None), user=JANE, values={"who": "page"})


def test_callbacks_table_covers_every_view() -> None:
    assert set(modals.PARSERS) == {
        CALLBACK_DECLARE,
        CALLBACK_DISMISS,
        CALLBACK_RESOLVE,
        CALLBACK_UPDATE,
    }
