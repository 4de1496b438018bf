"""The collaborative doc and public notices as pure steps of the commander's duties,
and their ``/incident`` words."""

from __future__ import annotations

import dataclasses

import pytest

from router.core import duties
from router.core.collaborative_doc import DocJob
from router.core.commands import BUTTONS, HELP, VERB, UsageError, parse
from router.core.incident import Incident, IncidentStatus
from router.core.jobs import JobKind
from router.core.policy import Outcome, Policy
from router.core.public_notice import CANCEL, CONFIRM, NoticeJob, PublicPage
from router.core.reports import describe
from router.core.severity import DEFAULT_RULES, Severity, Suggestion, suggest
from tests.unit.test_duties import (
    COMMS,
    IC,
    NOW,
    RESPONDER,
    STRANGER,
    ctx,
    declared,
    make_policy,
)  # fmt: skip

POLICY = dataclasses.replace(
    make_policy(),
    doc=True,
    statuspage=PublicPage("Service disruption", "This incident has been resolved."),
)


def jobs_of(outcome: Outcome, kind: JobKind) -> list[dict[str, object]]:
    return [job.payload for job in outcome.jobs if job.kind is kind]


# -- words ----------------------------------------------------------------------------


def test_public_takes_an_optional_status_then_the_text() -> None:
    incident = declared(Severity.CRITICAL, POLICY)
    command = parse("public INC-7 monitoring A fix is rolling out.")
    assert (command.name, command.number) == ("public", 7)
    verb = VERB["public"]
    assert verb.step is not None
    drafted = verb.step(incident, command, IC, ctx(POLICY)).incident
    assert drafted is not None and drafted.public_draft is not None
    assert (drafted.public_draft.status, drafted.public_draft.text) == (
        "monitoring", "A fix is rolling out."
    )  # fmt: skip
    plain = verb.step(incident, parse("public We are investigating."), IC, ctx(POLICY)).incident
    assert plain is not None and plain.public_draft is not None
    assert plain.public_draft.status == "investigating"
    with pytest.raises(UsageError, match="public"):
        parse("public INC-4")
    only_status = verb.step(incident, parse("public identified"), IC, ctx(POLICY))
    assert only_status.refusal == "Write the notice: `/incident public [INC-n] <text>`."
    assert parse("doc INC-2").name == "doc"


def test_the_preview_buttons_are_verbs_nobody_types() -> None:
    assert "`public [INC-n] [investigating|identified|monitoring|resolved] <text>`" in HELP
    assert "`doc [INC-n]`" in HELP
    assert "public_confirm" not in HELP and "public_cancel" not in HELP
    with pytest.raises(UsageError, match="Unknown command"):
        parse("public_confirm INC-1 5")
    assert BUTTONS[CONFIRM].name == "public_confirm"
    assert BUTTONS[CANCEL].name == "public_cancel"


# -- the doc -----------------------------------------------------------------------


def test_the_doc_comes_with_the_tracking_issue_shared_with_the_responders_only() -> None:
    outcome = duties.declare(7, "Checkout errors", IC, ctx(POLICY), _suggestion(Severity.HIGH))
    [payload] = jobs_of(outcome, JobKind.GOOGLE_DOC)
    doc = DocJob.model_validate(payload)
    assert doc.incident == "INC-7" and doc.severity == "high"
    # commander (who declared), then the configured responder group; no on-call stranger
    assert doc.responders == (IC, COMMS, RESPONDER)
    assert doc.confidential is False
    assert outcome.incident is not None and outcome.incident.doc_job == "incident:7:doc"
    secret = outcome.incident.model_copy(update={"confidential": True, "doc_job": None})
    [asked] = jobs_of(duties.open_doc(secret, IC, ctx(POLICY)), JobKind.GOOGLE_DOC)
    assert DocJob.model_validate(asked).confidential is True  # never shared by link
    # below the threshold: neither issue nor doc until asked
    low = duties.declare(8, "A typo", IC, ctx(POLICY), _suggestion(Severity.LOW))
    assert jobs_of(low, JobKind.GOOGLE_DOC) == []


def test_the_doc_link_is_posted_and_recorded_once() -> None:
    incident = _with_doc()
    made = duties.doc_made(incident, {"doc_id": "D1", "url": "https://docs/D1"}, ctx(POLICY))
    assert made.incident is not None and made.incident.doc_url == "https://docs/D1"
    assert [e.kind for e in made.timeline] == ["doc"]
    assert any("https://docs/D1" in str(p["text"]) for p in jobs_of(made, JobKind.SLACK_POST))
    # the tracking issue hears it (a comment mirroring the timeline)
    assert jobs_of(made, JobKind.GITHUB_COMMENT)
    again = duties.doc_made(made.incident, {"doc_id": "D1", "url": "https://docs/D1"}, ctx(POLICY))
    assert again.jobs == [] and again.timeline == [] and again.incident is None


def test_a_new_comms_lead_gets_the_doc_shared_without_a_second_copy() -> None:
    incident = _with_doc()
    outcome = duties.appoint_comms_lead(incident, IC, STRANGER, ctx(POLICY))
    [payload] = jobs_of(outcome, JobKind.GOOGLE_DOC)
    share = DocJob.model_validate(payload)
    assert STRANGER in share.responders
    assert share.after == "incident:7:doc"  # runs after the first: never two copies
    assert [j.key for j in outcome.jobs if j.kind is JobKind.GOOGLE_DOC] == [
        f"incident:7:doc:share:v{incident.version + 1}"
    ]


def test_doc_on_request_refuses_what_it_cannot_do() -> None:
    incident = _with_doc()
    assert duties.open_doc(incident, IC, ctx(POLICY)).refusal == (
        "The doc of INC-7 is being made; its link comes in the thread."
    )
    plain = declared(Severity.LOW)
    assert duties.open_doc(plain, IC, ctx()).refusal == (
        "The collaborative doc is not configured (incident.doc and GOOGLE_APPLICATION_CREDENTIALS)."
    )


# -- public notices ---------------------------------------------------------------


def test_only_the_commander_or_comms_lead_drafts_and_nothing_is_published_by_a_draft() -> None:
    incident = declared(Severity.CRITICAL, POLICY)
    refused = duties.draft_public_notice(incident, RESPONDER, "We are on it.", ctx(POLICY))
    assert refused.refusal is not None and "commander or the communications lead" in (
        refused.refusal
    )
    assert refused.events == ["unauthorized"]
    too_long = duties.draft_public_notice(incident, IC, "x" * 25_001, ctx(POLICY))
    assert too_long.refusal == "A public notice holds at most 25,000 characters."
    drafted = duties.draft_public_notice(incident, IC, "We are on it.", ctx(POLICY))
    assert drafted.jobs == [] and drafted.timeline == []
    assert drafted.incident is not None and drafted.incident.public_draft is not None
    assert drafted.reply_blocks is not None


def test_confirm_publishes_the_draft_once_and_later_notices_name_the_first() -> None:
    incident = _drafted(declared(Severity.CRITICAL, POLICY), "We are on it.")
    assert incident.public_draft is not None
    stale = duties.confirm_public_notice(incident, IC, "not-it", ctx(POLICY))
    assert stale.refusal == "That preview is no longer current: nothing was published."
    confirmed = duties.confirm_public_notice(incident, IC, incident.public_draft.id, ctx(POLICY))
    [payload] = jobs_of(confirmed, JobKind.STATUSPAGE_NOTICE)
    first = NoticeJob.model_validate(payload)
    assert (first.status, first.body, first.first, first.severity) == (
        "investigating", "We are on it.", None, Severity.CRITICAL
    )  # fmt: skip
    assert first.name == "Service disruption"
    assert [e.kind for e in confirmed.timeline] == ["public_notice"]
    after = confirmed.incident
    assert after is not None and after.public_draft is None
    assert after.public_first_job is not None
    # the next one: identified, to the same Statuspage incident
    update = _drafted(after, "Found it.")
    assert update.public_draft is not None
    # COMMS is a configured responder, not the appointed comms lead: may not publish
    confirmed = duties.confirm_public_notice(update, COMMS, update.public_draft.id, ctx(POLICY))
    assert confirmed.refusal is not None and confirmed.jobs == []
    confirmed = duties.confirm_public_notice(update, IC, update.public_draft.id, ctx(POLICY))
    [payload] = jobs_of(confirmed, JobKind.STATUSPAGE_NOTICE)
    second = NoticeJob.model_validate(payload)
    assert (second.status, second.first) == ("identified", after.public_first_job)
    assert second.previous == after.public_last_job == after.public_first_job


def test_resolving_drafts_the_public_resolution_only_when_a_public_incident_is_open() -> None:
    quiet = duties.resolve(declared(Severity.HIGH, POLICY), IC, "fixed", ctx(POLICY))
    assert quiet.incident is not None and quiet.incident.public_draft is None
    opened = _published(declared(Severity.HIGH, POLICY))
    resolved = duties.resolve(opened, IC, "fixed", ctx(POLICY))
    assert resolved.incident is not None
    draft = resolved.incident.public_draft
    assert draft is not None and draft.status == "resolved"
    assert jobs_of(resolved, JobKind.STATUSPAGE_NOTICE) == []  # not before Confirm
    [dm] = jobs_of(resolved, JobKind.SLACK_DM)
    assert dm["user"] == IC and "(resolved)" in str(dm["text"])
    # confirming it works on the closed incident
    assert resolved.incident.status is IncidentStatus.CLOSED
    done = duties.confirm_public_notice(resolved.incident, IC, draft.id, ctx(POLICY))
    [payload] = jobs_of(done, JobKind.STATUSPAGE_NOTICE)
    assert NoticeJob.model_validate(payload).status == "resolved"


def test_a_confidential_incident_refuses_every_public_step() -> None:
    incident = _drafted(declared(Severity.CRITICAL, POLICY), "We are on it.")
    secret = incident.model_copy(update={"confidential": True})
    assert secret.public_draft is not None
    for outcome in (
        duties.draft_public_notice(secret, IC, "x", ctx(POLICY)),
        duties.confirm_public_notice(secret, IC, secret.public_draft.id, ctx(POLICY)),
    ):
        assert outcome.refusal is not None and outcome.refusal.startswith("INC-7 is confidential")
        assert outcome.jobs == []
    published = _published(declared(Severity.CRITICAL, POLICY)).model_copy(
        update={"confidential": True}
    )
    resolved = duties.resolve(published, IC, "fixed", ctx(POLICY))
    assert jobs_of(resolved, JobKind.SLACK_DM) == []


def test_confirm_tells_the_thread_who_published_what_and_records_it() -> None:
    incident = _drafted(declared(Severity.CRITICAL, POLICY), "We are on it.")
    assert incident.public_draft is not None
    confirmed = duties.confirm_public_notice(incident, IC, incident.public_draft.id, ctx(POLICY))
    after = confirmed.incident
    assert after is not None and after.public_status == "investigating"
    assert confirmed.reply == "Publishing on the status page; the link follows in the thread."
    [post] = [j for j in confirmed.jobs if j.kind is JobKind.SLACK_POST and "Public" in
              str(j.payload["text"])]  # fmt: skip
    assert post.payload["text"] == (
        f":loudspeaker: Public notice (investigating) confirmed by <@{IC}>: We are on it."
    )
    assert post.key == f"incident:7:thread:public:v{after.version}"
    [entry] = confirmed.timeline
    assert (entry.actor, entry.kind, entry.at) == (IC, "public_notice", NOW)
    assert entry.data == {"status": "investigating", "text": "We are on it."}
    # no post-mortem issue yet: nothing to mirror
    assert not [j for j in confirmed.jobs if "postmortem-comment" in j.key]


def test_cancel_drops_the_draft_and_publishes_nothing() -> None:
    incident = _drafted(declared(Severity.CRITICAL, POLICY), "We are on it.")
    draft = incident.public_draft
    assert draft is not None
    stale = duties.cancel_public_notice(incident, IC, "not-it", ctx(POLICY))
    assert stale.refusal == "That preview is no longer current: nothing was published."
    assert stale.incident is None
    nobody = duties.cancel_public_notice(incident, RESPONDER, draft.id, ctx(POLICY))
    assert nobody.refusal == "Only the commander or the comms lead of INC-7 can do that."
    assert nobody.events == ["unauthorized"] and nobody.incident is None
    cancelled = duties.cancel_public_notice(incident, IC, draft.id, ctx(POLICY))
    assert cancelled.reply == "Cancelled: nothing was published."
    assert cancelled.incident is not None and cancelled.incident.public_draft is None
    assert cancelled.incident.version == incident.version + 1
    assert cancelled.jobs == [] and cancelled.timeline == [] and cancelled.refusal is None
    # the comms lead may cancel too; a draft gone is stale for everyone
    lead = duties.appoint_comms_lead(incident, IC, STRANGER, ctx(POLICY)).incident
    assert lead is not None and lead.public_draft is not None
    by_lead = duties.cancel_public_notice(lead, STRANGER, lead.public_draft.id, ctx(POLICY))
    assert by_lead.reply == "Cancelled: nothing was published."
    gone = cancelled.incident
    again = duties.cancel_public_notice(gone, IC, draft.id, ctx(POLICY))
    assert again.refusal == "That preview is no longer current: nothing was published."


def test_the_status_page_link_is_posted_and_recorded_once() -> None:
    incident = _published(_with_doc())  # declared at high: it has a tracking issue
    assert incident.tracking_issue_job is not None
    link = "https://stspg.io/abc"
    assert duties.public_published(incident, {"id": "p1"}, ctx(POLICY)) == Outcome()
    shown = duties.public_published(incident, {"id": "p1", "shortlink": link}, ctx(POLICY))
    after = shown.incident
    assert after is not None and after.public_url == link
    assert after.version == incident.version + 1
    [post] = [j for j in shown.jobs if j.key.startswith("incident:7:thread:")]
    assert post.payload["text"] == f":globe_with_meridians: On the status page: {link}"
    assert post.key == f"incident:7:thread:public-link:v{after.version}"
    [entry] = shown.timeline
    assert (entry.actor, entry.kind, entry.data) == ("router", "public_incident", {"url": link})
    # the tracking issue hears it, as every timeline entry
    [comment] = jobs_of(shown, JobKind.GITHUB_COMMENT)
    assert comment["issue"] == incident.tracking_issue_job
    assert link in str(comment["body"])
    # the announcement shows the incident as it now is
    assert any(j.kind is JobKind.SLACK_UPDATE for j in shown.jobs)
    same = duties.public_published(after, {"shortlink": link}, ctx(POLICY))
    assert same.jobs == [] and same.timeline == [] and same.incident is None


def test_the_public_resolution_waits_for_the_commanders_confirm_and_reaches_the_postmortem(
) -> None:  # fmt: skip
    opened = _published(declared(Severity.CRITICAL, POLICY))
    resolved = duties.resolve(opened, IC, "fixed", ctx(POLICY), postmortem_owed=True)
    after = resolved.incident
    assert after is not None and after.postmortem_job is not None
    draft = after.public_draft
    assert draft is not None
    assert (draft.status, draft.text, draft.by, draft.at) == (
        "resolved", "This incident has been resolved.", "router", NOW
    )  # fmt: skip
    assert draft.id == str(after.version)
    [dm] = [j for j in resolved.jobs if j.kind is JobKind.SLACK_DM]
    assert dm.key == f"incident:7:public-resolution:v{after.version}"
    assert dm.payload["user"] == IC and dm.payload["blocks"]
    [nudge] = [j for j in resolved.jobs if j.key.startswith("incident:7:thread:public-resolution")]
    assert nudge.payload["text"] == (
        f"<@{IC}>: the public incident is still open. The resolution notice waits for your"
        " Confirm (a preview was sent to you; or write your own with"
        " `/incident public INC-7 <text>`)."
    )
    # Confirmed after the post-mortem issue was written: the issue gets it as a comment.
    done = duties.confirm_public_notice(after, IC, draft.id, ctx(POLICY))
    assert done.incident is not None and done.incident.public_status == "resolved"
    [mirror] = [j for j in done.jobs if "postmortem-comment" in j.key]
    assert mirror.key == f"incident:7:postmortem-comment:public:v{done.incident.version}"
    assert mirror.payload["issue"] == after.postmortem_job
    assert mirror.payload["body"] == describe(done.timeline[-1])
    assert "This incident has been resolved." in str(mirror.payload["body"])
    assert str(mirror.payload["marker"]).startswith(f"incident-router:{mirror.key}:")
    # once publicly resolved, resolving again (reopened) drafts no second resolution
    quiet = done.incident.model_copy(update={"status": IncidentStatus.ACTIVE})
    again = duties.resolve(quiet, IC, "fixed again", ctx(POLICY))
    assert again.incident is not None and again.incident.public_draft is None
    assert not [j for j in again.jobs if "public-resolution" in j.key]


def test_the_doc_names_who_it_could_not_be_shared_with_and_reaches_the_postmortem() -> None:
    made = duties.doc_made(
        _with_doc(), {"url": "https://docs/D1", "not_shared": [STRANGER]}, ctx(POLICY)
    )
    after = made.incident
    assert after is not None
    [post] = [j for j in made.jobs if j.key.startswith("incident:7:thread:")]
    assert post.key == f"incident:7:thread:doc:v{after.version}"
    assert post.payload["text"] == (
        ":page_facing_up: Collaborative doc (shared with the responders only): https://docs/D1"
        f"\nNot shared with <@{STRANGER}>: Slack shows no e-mail address for them."
    )
    [entry] = made.timeline
    assert (entry.actor, entry.kind, entry.data) == ("router", "doc", {"url": "https://docs/D1"})
    assert duties.doc_made(after, {"doc_id": "D1"}, ctx(POLICY)) == Outcome()  # no link yet
    # made after the post-mortem issue was written: the issue gets the link as a comment
    owing = _with_doc().model_copy(update={"postmortem_job": "incident:7:postmortem"})
    late = duties.doc_made(owing, {"url": "https://docs/D2"}, ctx(POLICY))
    assert late.incident is not None
    [mirror] = [j for j in late.jobs if "postmortem-comment" in j.key]
    assert mirror.key == f"incident:7:postmortem-comment:doc:v{late.incident.version}"
    assert mirror.payload["issue"] == "incident:7:postmortem"
    assert mirror.payload["body"] == describe(late.timeline[-1])


def test_doc_on_request_is_recorded_and_refused_once_it_exists_or_the_incident_closed() -> None:
    low = duties.declare(8, "A typo", IC, ctx(POLICY), _suggestion(Severity.LOW)).incident
    assert low is not None and low.doc_job is None
    asked = duties.open_doc(low, IC, ctx(POLICY))
    assert asked.reply == "Making the collaborative doc; its link will be posted in the thread."
    assert [(e.actor, e.kind) for e in asked.timeline] == [(IC, "doc_requested")]
    assert len(jobs_of(asked, JobKind.GOOGLE_DOC)) == 1
    linked = low.model_copy(update={"doc_url": "https://docs/D8"})
    assert duties.open_doc(linked, IC, ctx(POLICY)).refusal == (
        "INC-8 already has its doc: https://docs/D8"
    )
    closed = low.model_copy(update={"status": IncidentStatus.CLOSED})
    assert duties.open_doc(closed, IC, ctx(POLICY)).refusal == "INC-8 is closed."


def test_public_steps_without_a_status_page_say_what_to_configure() -> None:
    plain = declared(Severity.CRITICAL)  # the policy without statuspage
    refused = duties.draft_public_notice(plain, IC, "We are on it.", ctx())
    assert refused.refusal == (
        "The public status page is not configured (statuspage and STATUSPAGE_API_KEY)."
    )
    nobody = duties.draft_public_notice(declared(Severity.CRITICAL, POLICY), RESPONDER, "x",
                                        ctx(POLICY))  # fmt: skip
    assert nobody.refusal == (
        "Only the commander or the communications lead of INC-7 can publish on the status page."
    )


def test_the_resolution_tells_the_customer_impact_and_records_what_was_decided() -> None:
    incident = declared(Severity.HIGH, POLICY)
    resolved = duties.resolve(incident, IC, " fixed the pool ", ctx(POLICY),
                              impact=" 3% of checkouts failed ", postmortem_owed=True)  # fmt: skip
    after = resolved.incident
    assert after is not None and after.customer_impact == "3% of checkouts failed"
    [thread] = [j for j in resolved.jobs if j.key.startswith("incident:7:thread:resolved")]
    assert thread.payload["text"] == (
        f":white_check_mark: *INC-7 resolved* (Checkout errors), by <@{IC}>: fixed the pool"
        "\nCustomer impact: 3% of checkouts failed"
    )
    [entry] = [e for e in resolved.timeline if e.kind == "resolved"]
    assert entry.data == {
        "summary": "fixed the pool", "impact": "3% of checkouts failed", "postmortem_owed": "true"
    }  # fmt: skip
    blank = duties.resolve(incident, IC, "fixed", ctx(POLICY), impact="  ")
    assert blank.incident is not None and blank.incident.customer_impact is None
    [entry] = [e for e in blank.timeline if e.kind == "resolved"]
    assert entry.data == {"summary": "fixed"}


# -- helpers ----------------------------------------------------------------------


def _suggestion(severity: Severity) -> Suggestion:
    return suggest([], DEFAULT_RULES).model_copy(update={"severity": severity})


def _with_doc() -> Incident:
    outcome = duties.declare(7, "Checkout errors", IC, ctx(POLICY), _suggestion(Severity.HIGH))
    assert outcome.incident is not None
    return outcome.incident


def _drafted(incident: Incident, text: str, policy: Policy = POLICY) -> Incident:
    outcome = duties.draft_public_notice(incident, IC, text, ctx(policy))
    assert outcome.incident is not None, outcome.refusal
    return outcome.incident


def _published(incident: Incident) -> Incident:
    drafted = _drafted(incident, "We are on it.")
    assert drafted.public_draft is not None
    outcome = duties.confirm_public_notice(drafted, IC, drafted.public_draft.id, ctx(POLICY))
    assert outcome.incident is not None
    return outcome.incident
