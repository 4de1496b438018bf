"""What people read: pages, announcements and digests as Slack Block Kit.

Pure functions of domain state, so the lifecycle can put the finished message in
the job and the Slack adapter only delivers it. Block Kit is also what the console
stand-in prints, so there is one rendering for both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from router.core import when
from router.core.alerts import AlertStatus, Truncation
from router.core.digest import DigestLine
from router.core.incident import Incident
from router.core.page import Page, PageAlerts, PageStatus
from router.core.severity import Suggestion

Block = dict[str, Any]

# action_ids: the contract between these buttons and router.adapters.slack.inbound_interactions
DECLARE = "page.declare"
DISMISS = "page.dismiss"
DISMISS_REASON = "page.dismiss_reason"
ESCALATE = "page.escalate"
DIGEST_DECLARE = "digest.declare"  # the select under a digest's lines

# on the announcement, for the commander's duties
INC_SEVERITY = "incident.severity"
INC_COMMS = "incident.comms"
INC_HANDOFF = "incident.handoff"
INC_ACCEPT = "incident.accept_handoff"
INC_ESCALATE = "incident.escalate"
INC_ISSUE = "incident.issue"
INC_MITIGATED = "incident.mitigated"
INC_RESOLVE = "incident.resolve"
INC_UPDATE = "incident.status_update"  # opens the status update modal
# on the answer to /incident declare
REPORT_COMMANDER = "report.commander"
REPORT_PAGE = "report.page"

DISMISS_REASONS = (
    "false positive",
    "known issue, already handled",
    "flapping / noisy alert",
    "no customer impact, not actionable",
    "planned maintenance",
)


_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[: limit - 1] + "…" if len(text) > limit else text}


def _mrkdwn(text: str) -> dict[str, Any]:
    # A section's text is capped at 3000 characters by Slack.
    return {"type": "mrkdwn", "text": text if len(text) <= 3000 else text[:2990] + "…"}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(text)]}


_when = when.minute


def severity_text(suggestion: Suggestion) -> str:
    lines = [f'*{suggestion.severity.value}*: policy clause "{escape(suggestion.clause)}"']
    if suggestion.evidence:
        evidence = ", ".join(
            f"{e.kind} `{escape(e.key)}` = `{escape(e.value)}`" for e in suggestion.evidence
        )
        lines.append(f"evidence: {evidence} (rule `{suggestion.rule}`)")
    else:
        lines.append("no severity rule matched: the default applies")
    return "\n".join(lines)


# Links per alert line: Grafana's dashboard, panel and silence, then the rule or runbook.
_LINKS_SHOWN = 4
# Whole lines only, under a section's 3,000 characters (a cut line breaks its links).
_LINES_BUDGET = 2800


def alert_lines(view: PageAlerts, max_shown: int, truncation: Truncation | None = None) -> str:
    """The counts, then the alerts shown (firing first, then newest), then how many
    more there are: a page of thousands reads as well as a page of one."""
    summary = f"{view.firing} firing, {view.resolved} resolved"
    if truncation is not None and truncation.count:
        # The sender's max_alerts cut them: the on-call must know they exist.
        summary += f", and {truncation.count} more not sent by {truncation.sender}"
    lines: list[str] = []
    used = len(summary) + 40  # room for the "…and N more" line
    for alert in view.shown[:max_shown]:
        mark = ":red_circle:" if alert.status is AlertStatus.FIRING else ":white_check_mark:"
        where = alert.labels.get("instance") or alert.labels.get("service") or ""
        detail = f" ({escape(where)})" if where else ""
        links = " ".join(
            f"<{link.href}|{escape(link.text)}>" for link in alert.links[:_LINKS_SHOWN]
        )
        reporter = alert.labels.get("reporter", "")
        if _USER_ID.match(reporter):  # reported in Slack: mention who, by id
            links += f" (reported by <@{reporter}>)"
        line = f"{mark} *{escape(alert.name)}*{detail}: {escape(alert.summary)} {links}"
        if lines and used + len(line) + 1 > _LINES_BUDGET:
            break
        lines.append(line)
        used += len(line) + 1
    if view.total > len(lines):
        lines.append(f"…and {view.total - len(lines)} more")
    return summary + "\n" + "\n".join(lines)


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "text": _plain(text), "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


def page_message(page: Page, alerts: PageAlerts, max_shown: int) -> tuple[str, list[Block]]:
    text = f"Suspected incident: {page.title} (suggested severity {page.suggestion.severity})"
    blocks: list[Block] = [
        {"type": "header", "text": _plain(f":rotating_light: {page.title}")},
        _section("Suggested severity " + severity_text(page.suggestion)),
        _section(alert_lines(alerts, max_shown, page.truncation)),
    ]
    paged = "; ".join(f"<@{p.user}> ({p.role}) at {_when(p.at)}" for p in page.paged)
    if paged:
        blocks.append(_context(f"Paged: {paged}"))
    if page.all_resolved and page.status is not PageStatus.DECLARED:
        blocks.append(
            _section(
                ":information_source: All alerts have resolved. If it was an "
                "incident, you can still declare it."
            )
        )
    if page.status is PageStatus.DECLARED:
        blocks.append(
            _section(
                f":white_check_mark: Declared *INC-{page.incident_number}* by "
                f"<@{page.decided_by}> at {_when(page.decided_at or page.opened_at)}."
                " They are Incident Commander."
            )
        )
        return text, blocks
    if page.status is PageStatus.DISMISSED:
        reason = f": {escape(page.reason)}" if page.reason else ""
        when = _when(page.decided_at or page.opened_at)
        blocks.append(
            _section(
                f":no_entry_sign: Not an incident, said <@{page.decided_by}> at {when}{reason}"
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": "page_actions",
                "elements": [_button("Declare incident", DECLARE, page.key, "danger")],
            }
        )
        return text, blocks
    blocks.append(
        {
            "type": "actions",
            "block_id": "page_actions",
            "elements": [
                _button("Declare incident", DECLARE, page.key, "danger"),
                _button("Not an incident", DISMISS, page.key),
                {
                    "type": "static_select",
                    "action_id": DISMISS_REASON,
                    "placeholder": _plain("Not an incident, because…"),
                    "options": [
                        {"text": _plain(reason), "value": f"{page.key}|{i}"}
                        for i, reason in enumerate(DISMISS_REASONS)
                    ],
                },
                # the level makes a double click (or a stale message) escalate once
                _button("Escalate", ESCALATE, f"{page.key}|{page.level}"),
            ],
        }
    )
    return text, blocks


def reminder_message(page: Page) -> tuple[str, list[Block]]:
    text = f"Still waiting for a decision: {page.title}"
    return text, [
        _section(
            f":alarm_clock: {escape(text)}. The page above needs *Declare "
            "incident* or *Not an incident*; it has been escalated."
        )
    ]


def refire_message(page: Page) -> tuple[str, list[Block]]:
    text = f"Firing again: {page.title}"
    return text, [_section(f":rotating_light: {escape(text)}. The page above had resolved "
                           "on its own; it needs a decision now.")]  # fmt: skip


# Slack's limits for a message: 50 blocks, 3,000 characters of section text, 100
# options in a select, 75 characters of option text.
_SECTION_CHARS = 3000
_OPTION_CHARS = 75
_LINE_TITLE_CHARS = 120


def digest_line(line: DigestLine) -> str:
    """One folded page: title, suggested severity, alert count and state."""
    if line.status is PageStatus.DECLARED:
        state = f"declared INC-{line.incident_number}"
    elif line.status is PageStatus.DISMISSED:
        state = "dismissed"
    else:
        state = "open, all resolved" if line.all_resolved else "open"
    alerts = f"{line.firing} firing" + (f", {line.resolved} resolved" if line.resolved else "")
    title = line.title if len(line.title) <= _LINE_TITLE_CHARS else line.title[:119] + "…"
    return f"{line.position}. *{escape(title)}*: {line.severity.value}, {alerts}; {state}"


def digest_part(
    user: str,
    count: int,
    part: int,
    lines: Sequence[DigestLine],
    *,
    escalated_from: str = "",
    console_url: str | None = None,
) -> tuple[str, list[Block]]:
    """One message of a digest: its lines, and a select to declare any open one of them.

    Part 0 opens the digest and counts everything folded; later parts continue the
    list. ``escalated_from``: the copy sent to the next level, of what still waits.
    ``console_url``: the web console, whose pages list shows every folded page."""
    first = lines[0].position if lines else 0
    last = lines[-1].position if lines else 0
    blocks: list[Block] = []
    if part == 0:
        if escalated_from:
            text = f"{count} suspected incidents still need a decision (alert storm digest)"
            intro = (
                f"<@{user}>, these suspected incidents were folded into a digest for "
                f"<@{escalated_from}> and are still waiting for a decision; it was "
                "escalated to you."
            )
        else:
            text = f"{count} more suspected incidents (alert storm: folded into one digest)"
            intro = (
                f"<@{user}>, you have reached the page limit for now: {count} suspected "
                "incidents were folded here instead of paging you one by one. Nothing was "
                "dropped: every one is listed, and any open one can be declared from the "
                "menu under its list."
            )
        blocks += [{"type": "header", "text": _plain(":cyclone: Alert storm digest")}]
        blocks.append(_section(intro))
        if console_url:
            blocks.append(_context(f"<{console_url}/pages|Every open page in the console>"))
    else:
        text = f"Alert storm digest, continued: suspected incidents {first}–{last}"
        blocks.append(_context(escape(text)))
    chunk: list[str] = []
    size = 0
    for line in lines:
        rendered = digest_line(line)
        if chunk and size + 1 + len(rendered) > _SECTION_CHARS:
            blocks.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(rendered)
        size += len(rendered) + (1 if size else 0)
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    declarable = [line for line in lines if line.status is not PageStatus.DECLARED]
    if declarable:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"digest|{part}",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": DIGEST_DECLARE,
                        "placeholder": _plain("Declare one as an incident…"),
                        "options": [
                            {
                                "text": _plain(f"{line.position}. {line.title}", _OPTION_CHARS),
                                "value": line.page_key,
                            }
                            for line in declarable
                        ],
                        "confirm": {
                            "title": _plain("Declare an incident?"),
                            "text": _mrkdwn(
                                "You become its Incident Commander, and it is announced."
                            ),
                            "confirm": _plain("Declare"),
                            "deny": _plain("Cancel"),
                        },
                    }
                ],
            }
        )
    return text, blocks


def announcement(
    incident: Incident,
    alerts: PageAlerts,
    max_shown: int,
    console_url: str | None = None,
    *,
    in_channel: bool = False,
) -> tuple[str, list[Block]]:
    """The declaration in #incident-response, or (``in_channel``) the summary with the
    controls in the incident's own channel; ``console_url``: the web console, where the
    incident's page (its whole timeline) is linked from."""
    text = (
        f"{incident.ref} declared: {incident.title}. Incident Commander "
        f"<@{incident.commander}>, severity {incident.severity}"
    )
    chosen = incident.severity_reason != incident.suggestion.clause or (
        incident.severity is not incident.suggestion.severity
    )
    severity_title = "Severity (set by the commander)" if chosen else "Suggested severity"
    fields = [
        _mrkdwn(f"*Incident Commander*\n<@{incident.commander}>"),
        _mrkdwn(f"*{severity_title}*\n{incident.severity.value}"),
        _mrkdwn(f"*Status*\n{incident.status.value}"),
        _mrkdwn(f"*Declared*\n{_when(incident.declared_at)} by <@{incident.declared_by}>"),
    ]
    if incident.comms_lead:
        fields.append(_mrkdwn(f"*Communications lead*\n<@{incident.comms_lead}>"))
    if incident.handoff:
        fields.append(_mrkdwn(f"*Handoff offered to*\n<@{incident.handoff.to}> (not yet accepted)"))
    blocks: list[Block] = [
        {"type": "header", "text": _plain(f":rotating_light: {incident.ref}: {incident.title}")},
        {"type": "section", "fields": fields},
        _section("Why " + severity_text(incident.suggestion)),
    ]
    if chosen:
        blocks.append(
            _section(f"Severity *{incident.severity.value}*: {escape(incident.severity_reason)}")
        )
    if alerts.total:
        blocks.append(_section(alert_lines(alerts, max_shown, incident.truncation)))
    if incident.open:
        blocks += _incident_controls(incident)
    if console_url:
        link = f"{console_url}/incidents/{incident.number}"
        blocks.append(_context(f"<{link}|{incident.ref} in the console>: timeline, alerts, links"))
    if incident.description:
        blocks.insert(2, _section(escape(incident.description)))
    if in_channel:
        blocks.append(
            _context(
                "Incident details are confidential: this channel is for its responders. "
                "Here `/incident` needs no INC-n; `/incident invite @someone` adds people."
            )
        )
    else:
        blocks.append(_context("Incident details are confidential. Updates go in this thread."))
    return text, blocks


def _incident_controls(incident: Incident) -> list[Block]:
    ref = incident.ref
    severity_options = [
        {"text": _plain(level), "value": f"{ref}|{level}"}
        for level in ("critical", "high", "medium", "low")
    ]
    return [
        {
            "type": "actions",
            "block_id": f"incident|{ref}|roles",
            "elements": [
                {
                    "type": "static_select",
                    "action_id": INC_SEVERITY,
                    "placeholder": _plain("Change severity"),
                    "options": severity_options,
                },
                {
                    "type": "users_select",
                    "action_id": INC_COMMS,
                    "placeholder": _plain("Appoint comms lead"),
                },
                {
                    "type": "users_select",
                    "action_id": INC_HANDOFF,
                    "placeholder": _plain("Hand off commander to…"),
                },
            ],
        },
        {
            "type": "actions",
            "block_id": f"incident|{ref}|actions",
            "elements": [
                _confirmed(
                    _button("Escalate to leadership", INC_ESCALATE, ref),
                    f"Page leadership about {ref}?",
                ),
                _button("Open tracking issue", INC_ISSUE, ref),
                _button("Mark mitigated", INC_MITIGATED, ref),
                _button("Status update", INC_UPDATE, ref),
                _confirmed(
                    _button("Resolve", INC_RESOLVE, ref, "primary"),
                    f"Resolve {ref}? A form asks for the summary and the customer impact; "
                    "everyone affected is told it is over.",
                ),
            ],
        },
    ]


def _confirmed(button: Block, question: str) -> Block:
    """Slack asks "are you sure?" first: these buttons tell many people at once."""
    button["confirm"] = {
        "title": _plain("Are you sure?"),
        "text": _mrkdwn(question),
        "confirm": _plain("Yes"),
        "deny": _plain("Cancel"),
    }
    return button


def handoff_offer_message(incident: Incident) -> tuple[str, list[Block]]:
    assert incident.handoff is not None
    text = (
        f"<@{incident.handoff.offered_by}> asks you to take over as Incident Commander of "
        f"{incident.ref}: {incident.title} ({incident.severity.value})"
    )
    return text, [
        _section(
            f"<@{incident.handoff.offered_by}> asks you to take over as Incident Commander "
            f"of *{incident.ref}*: {escape(incident.title)} ({incident.severity.value})."
        ),
        _context(f"<@{incident.commander}> stays commander until you accept."),
        {
            "type": "actions",
            "block_id": f"incident|{incident.ref}|handoff",
            "elements": [
                _button("Accept: I am Incident Commander", INC_ACCEPT, incident.ref, "primary")
            ],
        },
    ]


# -- answers to the person who typed a command --------------------------------


def report_choice(title: str) -> tuple[str, list[dict[str, Any]]]:
    """A reporter decides: be commander now, or have eng-primary investigate first."""
    text = f"Suspected incident: {title}. Who investigates?"
    return text, [
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}},
        {
            "type": "actions",
            "block_id": "report",
            "elements": [
                {"type": "button", "action_id": REPORT_COMMANDER, "style": "danger",
                 "text": {"type": "plain_text", "text": "Declare: I am Incident Commander"},
                 "value": title},
                {"type": "button", "action_id": REPORT_PAGE,
                 "text": {"type": "plain_text", "text": "Page eng-primary to investigate"},
                 "value": title},
            ],
        },
    ]  # fmt: skip


def status_text(incident: Incident) -> str:
    lines = [
        f"*{incident.ref}: {incident.title}*",
        f"Status: {incident.status.value} · Severity: {incident.severity.value} "
        f"({incident.severity_reason})",
        f"Commander: <@{incident.commander}> · Comms lead: "
        + (f"<@{incident.comms_lead}>" if incident.comms_lead else "none yet"),
        f"Declared {when.minute(incident.declared_at)} by <@{incident.declared_by}>",
    ]
    if incident.handoff:
        lines.append(f"Handoff offered to <@{incident.handoff.to}>, not yet accepted")
    if incident.flags:
        lines.append("Flags: " + ", ".join(flag.value for flag in incident.flags))
    if incident.vendors:
        lines.append("Vendors contacted: " + ", ".join(incident.vendors))
    if incident.channel_id:
        lines.append(f"Channel: <#{incident.channel_id}>")
    if incident.last_update_at:
        lines.append(f"Last update {incident.last_update_at:%H:%M} UTC")
    if incident.postmortem_owed:
        lines.append("Post-mortem owed")
    return "\n".join(lines)


def ephemeral(text: str, *, replace: bool = False) -> dict[str, Any]:
    """Slack's ``response_url`` body for an answer only the person who pressed sees;
    ``replace``: in place of the (ephemeral) message holding the button."""
    return {"response_type": "ephemeral", "replace_original": replace, "text": text}


# -- why a command found no incident, or was refused ---------------------------


def incomplete(verb: str) -> str:
    return f"`{verb}` is incomplete. Try `/incident help`."


def no_such_incident(number: int) -> str:
    return f"There is no INC-{number}."


NO_POSTMORTEM_OWED = "No incident owes a post-mortem. Name one as INC-<n>."
NO_INCIDENT_OPEN = "No incident is open. Name one as INC-<n>."
COMMANDER_RESPONDERS_ONLY = (
    'Only responders can be Incident Commander. Choose "Page eng-primary" '
    "and the on-call engineer will investigate."
)


def several_owe_postmortem(owing: Sequence[Incident]) -> str:
    refs = ", ".join(i.ref for i in owing)
    return (
        f"Several incidents owe a post-mortem ({refs}): name one, e.g. "
        f"`/incident postmortem done {owing[0].ref}`."
    )


def several_open(incidents: Sequence[Incident]) -> str:
    refs = ", ".join(i.ref for i in incidents)
    return f"Several incidents are open ({refs}): name one, e.g. `/incident status INC-1`."


def responders_only(incident: Incident) -> str:
    return (
        f"Only responders of {incident.ref} (its commander, comms lead, the on-call "
        "engineers and the configured responders) can do that."
    )


def done(verb: str, incident: Incident) -> str:
    return f"Done: {verb} on {incident.ref}."


def delivery_set_aside(delivery_id: int, reason: str) -> str:
    """The operator's notice of a delivery the inbox could not apply."""
    return (
        f":warning: A delivery (inbox id {delivery_id}) could not be processed ({reason}) "
        "and was set aside; its alerts are not paged. It is kept in the inbox table for a person."
    )
