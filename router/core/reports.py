"""What goes to GitHub: the tracking issue, its comments, and the post-mortem.

Markdown, generated from the incident and its timeline (pure functions). The
post-mortem carries every section the policy requires, with the timeline filled in
from the record so nobody has to reconstruct it from memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.core import when
from router.core.alerts import AlertStatus
from router.core.incident import Flag, Incident, TimelineEntry
from router.core.page import PageAlerts
from router.core.policy_config import IncidentConfig

# Alerts listed in an issue body; the store reads no more than these (firing first).
ISSUE_ALERTS = 20
# Timeline entries in the tracking issue body: the newest; the rest are comments.
ISSUE_TIMELINE = 50


def describe(entry: TimelineEntry) -> str:
    """One line of the timeline, in words."""
    who = "the router" if entry.actor == "router" else f"@{entry.actor}"
    return f"{when.minute(entry.at)} — {who}: {in_words(entry)}"


def in_words(entry: TimelineEntry) -> str:
    """What a timeline entry says happened, without when and who."""
    d = entry.data
    return {
        "page_escalated": f"page escalated to {d.get('to') or 'nobody further'}",
        "declared": f"declared; commander {d.get('commander')}, suggested severity "
        f"{d.get('severity')} ({d.get('clause')})",
        "severity_changed": f"severity {d.get('from')} -> {d.get('to')}: {d.get('reason')}",
        "comms_lead": f"communications lead: {d.get('user')}",
        "handoff_offered": f"handoff of commander offered to {d.get('to')}",
        "handoff_accepted": f"{d.get('to')} accepted; commander was {d.get('from')}",
        "escalated": f"escalated to leadership ({d.get('to') or 'nobody on call'}): "
        f"{d.get('note', '')}",
        "vendor_contacted": f"vendor contacted: {d.get('vendor')}",
        "status_update": f"status update: {d.get('text')}",
        "flagged": f"flagged: {d.get('flag')}",
        "mitigated": "mitigated",
        "resolved": f"resolved: {d.get('summary')}",
        "alerts_changed": f"alerts: {d.get('firing')} firing, {d.get('resolved')} resolved",
        "tracking_issue": "tracking issue opened",
        "postmortem_done": "post-mortem marked done",
        "doc_requested": "collaborative doc requested",
        "doc": f"collaborative doc: {d.get('url')}",
        "public_notice": f"public notice ({d.get('status')}): {d.get('text')}",
        "public_incident": f"public incident on the status page: {d.get('url')}",
        "channel_created": f"incident channel #{d.get('name')} (`{d.get('channel')}`) created",
        "channel_archived": "incident channel archived",
        "invited": f"invited {d.get('user')} to the incident channel",
    }.get(entry.kind, entry.kind)


def timeline_markdown(entries: Sequence[TimelineEntry], limit: int | None = None) -> str:
    """The record as a list; with ``limit``, its newest entries and how many came before."""
    earlier = len(entries) - limit if limit is not None and len(entries) > limit else 0
    lines = [f"- {describe(e)}" for e in entries[earlier:]]
    if earlier:
        lines.insert(0, f"- …{earlier} earlier entries (all of them go in the post-mortem)")
    return "\n".join(lines) or "- (nothing recorded yet)"


def _alerts_markdown(alerts: PageAlerts, limit: int = ISSUE_ALERTS) -> str:
    lines = []
    shown = alerts.shown[:limit]
    for alert in shown:
        state = "firing" if alert.status is AlertStatus.FIRING else "resolved"
        links = " ".join(f"[{link.text}]({link.href})" for link in alert.links[:3])
        lines.append(f"- **{alert.name}** ({state}): {alert.summary} {links}".rstrip())
    if alerts.total > len(shown):
        lines.append(f"- …and {alerts.total - len(shown)} more")
    if alerts.total:
        lines.insert(0, f"{alerts.firing} firing, {alerts.resolved} resolved:")
    return "\n".join(lines) or "- (declared by a person; no alerts attached)"


def _public_markdown(incident: Incident, timeline: Sequence[TimelineEntry]) -> str:
    """Every public notice the commander confirmed, with the public incident's link."""
    posts = [f"- {describe(e)}" for e in timeline if e.kind == "public_notice"]
    if not posts:
        return "- none: nothing was published on the status page"
    where = f"Status page: {incident.public_url}\n" if incident.public_url else ""
    return where + "\n".join(posts)


def checklist(incident: Incident, config: IncidentConfig) -> str:
    """The commander's duties from the policy, ticked from what the record shows."""

    def box(done: bool, text: str) -> str:
        return f"- [{'x' if done else ' '}] {text}"

    bcp = f" ([BCP/DR policy]({config.bcp_dr_url}))" if config.bcp_dr_url else ""
    return "\n".join(
        [
            box(True, "Severity classified (can change later)"),
            box(bool(incident.vendors), "Vendors whose product may be compromised contacted"),
            box(
                incident.comms_lead is not None, "Roles appointed, including a communications lead"
            ),
            box(incident.handoff is None, "Handoff arranged when people change (end of day)"),
            box(incident.escalated, "Escalated to leadership if the response is insufficient"),
            box(False, "Corrective actions identified"),
            box(
                incident.public_first_job is not None,
                "Public communication decided (optional when customers are affected)",
            ),
            box(
                Flag.DATA_LOSS not in incident.flags,
                "Disrupted data or processes recovered per the BCP/DR policy" + bcp,
            ),
            box(
                incident.status.value in ("resolved", "closed"),
                "Resolution communicated to all affected parties",
            ),
        ]
    )


def tracking_issue(
    incident: Incident,
    alerts: PageAlerts,
    timeline: Sequence[TimelineEntry],
    config: IncidentConfig,
) -> tuple[str, str, list[str]]:
    """(title, body, labels) of the tracking issue."""
    title = f"{incident.ref}: {incident.title}"
    body = f"""## Summary
{incident.title}

- **Incident Commander:** @{incident.commander} (Slack `{incident.commander}`)
- **Severity:** {incident.severity.value} — {incident.severity_reason}
- **Declared:** {when.minute(incident.declared_at)}

## Alerts
{_alerts_markdown(alerts)}

## Commander's checklist (from the incident-response policy)
{checklist(incident, config)}

## Timeline so far
{timeline_markdown(timeline, ISSUE_TIMELINE)}

_Incident information is confidential. Updates are mirrored here as comments._
"""
    return title, body, ["incident", f"severity:{incident.severity.value}"]


def _channel_line(incident: Incident) -> str:
    """Where the incident was worked: its Slack channel (archived or not, it keeps
    the whole conversation)."""
    if incident.channel_id is None:
        return ""
    name = f"#{incident.channel_name} " if incident.channel_name else ""
    return f"\n- **Slack channel:** {name}(`{incident.channel_id}`)"


def postmortem(
    incident: Incident,
    alerts: PageAlerts,
    timeline: Sequence[TimelineEntry],
    config: IncidentConfig,
) -> tuple[str, str, list[str]]:
    """(title, body, labels) of the post-mortem issue, with the policy's sections."""
    risk = f" ([risk register]({config.risk_register_url}))" if config.risk_register_url else ""
    flags = ", ".join(flag.value for flag in incident.flags) or "none"
    duration = ""
    if incident.resolved_at is not None:
        minutes = int((incident.resolved_at - incident.declared_at).total_seconds() // 60)
        duration = f"\n- **Duration:** {minutes} minutes from declaration to resolution"
    body = f"""## Details
- **Incident:** {incident.ref} — {incident.title}
- **Severity:** {incident.severity.value} — {incident.severity_reason}
- **Incident Commander:** @{incident.commander}; communications lead: {
        "@" + incident.comms_lead if incident.comms_lead else "none appointed"
    }
- **Flags:** {flags}{duration}
- **Resolution:** {incident.resolution or "(to write)"}{_channel_line(incident)}
- **Collaborative doc:** {incident.doc_url or "none"}

## Public communication
{_public_markdown(incident, timeline)}

## Timeline
{timeline_markdown(timeline)}

## Impact
{incident.customer_impact or "_Who and what was affected, for how long; customer and data impact._"}

## Actions taken
_What was done to mitigate and resolve it._

## Root cause(s)
_Why it happened; keep asking why._

## Follow-up actions
- [ ] _corrective action, owner, due date_

## New risks for the risk register{risk}
- _risks this incident revealed_

## Alerts
{_alerts_markdown(alerts)}
"""
    return f"Post-mortem: {incident.ref} {incident.title}", body, ["post-mortem", "incident"]
