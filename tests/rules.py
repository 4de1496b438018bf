"""The rules the tests hold: the paging rules and the Incident Commander's duties.

A test names the rule it holds with ``@pytest.mark.rule("paging.one-page-per-group")``;
an unknown name fails collection. ``python -m tools.rule_index`` writes docs/rules.md
from these marks (which tests hold which rule), and a test fails when that file is not
current or a rule here has no test.
"""

from __future__ import annotations

# id -> the rule, as the README and the policy say it
PAGING: dict[str, str] = {
    "paging.one-page-per-group": "One page per alert group: firing alerts of a group open "
    "one page, a DM to whoever is eng-primary on call.",
    "paging.suggested-severity": "A page carries a suggested severity and the policy clause "
    "that justifies it; it follows the evidence until somebody decides.",
    "paging.new-alerts-edit-the-page": "New alerts of the group edit the same DM instead of "
    "paging again; a resent group changes nothing.",
    "paging.all-resolved": "When every alert resolves before a decision the page says so, "
    "stops escalating, and can still be declared; firing again pages again.",
    "paging.ack-timeout-escalates": "No decision within `paging.ack_timeout_seconds` pages the "
    "person again and pages eng-secondary, then leadership.",
    "paging.escalate-button": "Escalate pages the next level now (once per click, with no "
    "refusal); at the last level it says there is nobody further.",
    "paging.never-page-twice": "Escalation skips people already paged: one person in two "
    "rotations is paged once.",
    "paging.escalation-exhausted": "A page or digest that went through every level without a "
    "decision is told to the operator channel.",
    "paging.storm-digest": "Past `paging.storm_limit` new pages per person per window, further "
    "pages are folded into one digest DM that lists them (nothing is dropped).",
    "paging.digest-escalates": "An unanswered digest goes to the next level, one level at a "
    "time, as one digest of the pages still waiting.",
    "paging.who-may-decide": "Only the people paged and `oncall.responders` may decide; "
    "others get a refusal and nothing changes.",
    "paging.decisions": "Declare opens an incident with the decider as commander; Not an "
    "incident dismisses the page; a decided page takes no second decision.",
    "paging.page-afresh": "After a dismissal or the end of its incident, something new firing "
    "in the group opens a fresh page.",
    "paging.nobody-on-call": "With nobody on call the operator channel hears that a page "
    "reached nobody: never silent.",
    "paging.pagerduty": "PagerDuty is triggered with the page, acknowledged on declare and "
    "resolved on dismissal or when everything resolved.",
    "paging.vulnerability-not-paged": "A vulnerability that is not being actively exploited "
    "is recorded but not paged.",
    "oncall.who-is-on": "Who is on call: rotations in local wall time, dated overrides "
    "(start inclusive, end exclusive), handoffs at the configured time.",
}

DUTIES: dict[str, str] = {
    "duty.declare": "Declaring names the commander and announces the incident in "
    "#incident-response with the suggested severity and its clause.",
    "duty.classify-severity": "The commander classifies severity, with a reason; it can change "
    "later and be done after the fact.",
    "duty.tracking-issue": "A tracking issue is opened when ongoing work is likely: at "
    "`incident.tracking_issue_at` or above, or on request; the timeline is mirrored to it.",
    "duty.appoint-roles": "The commander appoints roles, including a communications lead.",
    "duty.handoff": "Handoff between people: the commander offers, the new commander accepts; "
    "at the end of the working day the commander is prompted.",
    "duty.escalate-to-leadership": "The commander escalates to leadership when the response is "
    "insufficient; a critical incident unmitigated too long prompts it.",
    "duty.contact-vendors": "The commander contacts vendors whose product may be compromised.",
    "duty.status-updates": "Status updates keep people informed; reminders come by severity.",
    "duty.flags": "Flags (outage, data loss, customers affected) record what the post-mortem "
    "and the customer communication need; data loss points to the BCP/DR policy.",
    "duty.mitigate": "Mitigated ends the escalation prompt; the incident stays open.",
    "duty.resolve": "On resolve the resolution is communicated to every affected destination "
    "and every reminder stops.",
    "duty.postmortem": "A production outage or loss of data owes a post-mortem (timeline, "
    "impact, root causes, follow-ups, new risks); the incident closes when it is done.",
    "duty.who-may-act": "Only responders may act: commander, comms lead, whoever is on call, "
    "`oncall.responders`.",
}

RULES: dict[str, str] = {**PAGING, **DUTIES}
