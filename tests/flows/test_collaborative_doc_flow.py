"""The collaborative doc end to end: the real app and outbox, google-auth and
google-api-python-client against FakeGoogle (signed JWT grant, bearer tokens, Google's
error shapes), PyGithub against FakeGitHub, slack_sdk against FakeSlack."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.core.jobs import JobStatus
from tests.conftest import am_payload
from tests.fakes.google_api import FakeGoogle, ServiceAccount
from tests.harness import (
    INCIDENTS,
    OPS,
    PRIMARY,
    RESPONDER,
    SECONDARY,
    USERS,
    Harness,
    running_router,
)

TEMPLATE, FOLDER = "TEMPLATE0123456789", "FOLDER0123456789"
TEMPLATE_TEXT = (
    "Incident {{incident_id}}: {{title}}\nCommander: {{commander}}\n"
    "Severity: {{severity}} ({{severity_clause}})\nLinks:\n{{links}}\n"
)


def email(user: str) -> str:
    return USERS[user]["email"]


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return ServiceAccount.generate()  # type: ignore[no-any-return]


@pytest.fixture
async def google(account: ServiceAccount) -> AsyncIterator[FakeGoogle]:
    async with FakeGoogle(account) as fake:
        fake.add_folder(FOLDER)
        fake.add_document(TEMPLATE, "Incident template", TEMPLATE_TEXT)
        yield fake


def doc_setup(
    tmp_path: Path, account: ServiceAccount, google: FakeGoogle, **doc: Any
) -> dict[str, Any]:
    key = tmp_path / "service-account.json"
    key.write_text(json.dumps(account.key_file()))
    config = {
        "incident": {
            "bcp_dr_url": "https://wiki.example/bcp-dr",
            "doc": {
                "template_document_id": TEMPLATE,
                "folder_id": FOLDER,
                "drive_api_url": google.drive_url,
                "docs_api_url": google.docs_url,
                "token_uri": google.token_uri,
                **doc,
            },
        }
    }
    return {"config": config, "secrets": {"GOOGLE_APPLICATION_CREDENTIALS": str(key)}}


async def declare_critical(h: Harness) -> None:
    await h.alertmanager(am_payload())
    key = await h.page_key(PRIMARY)
    response = await h.press("page.declare", key, PRIMARY, response_name="declare")
    assert (await response.json())["ok"] is True
    await h.settle()


def shared_with(google: FakeGoogle) -> list[tuple[str, str, str]]:
    [copy] = google.copies()
    return sorted(
        (p["type"], p["role"], p.get("emailAddress", "")) for p in copy.permissions.values()
    )


async def test_a_critical_incident_gets_its_doc_shared_with_the_responders_only_and_linked(
    tmp_path: Path, account: ServiceAccount, google: FakeGoogle
) -> None:
    setup = doc_setup(tmp_path, account, google)
    async with running_router(tmp_path, github=True, **setup) as h:
        assert h.github is not None
        h.slack.add_user(PRIMARY, email=email(PRIMARY), real_name="Pat Primary")
        await declare_critical(h)

        # one copy of the template in the folder, marked with the incident, filled in
        [copy] = google.copies()
        assert copy.parents == [FOLDER]
        assert copy.app_properties == {"routerIncident": "INC-1"}
        assert copy.name.startswith("INC-1: HighLatency")
        assert "{{" not in copy.text
        assert "Incident INC-1: HighLatency" in copy.text
        assert "Severity: critical (" in copy.text
        # the commander by the name Slack knows (users.info), with the id
        assert f"Commander: Pat Primary ({PRIMARY})" in copy.text
        assert "BCP/DR policy: https://wiki.example/bcp-dr" in copy.text
        # shared with the commander (who declared it) and the configured responders,
        # as writers; nobody else, and no "anyone with the link"
        assert shared_with(google) == [
            ("user", "writer", email(PRIMARY)),
            ("user", "writer", email(RESPONDER)),
        ]
        # the link: in the incident's thread, on the tracking issue, in the record
        url = (await h.incident(1)).doc_url
        assert url is not None and copy.id in url
        posted = await h.wait_thread("Collaborative doc")
        assert url in posted and "shared with the responders only" in posted
        tracking = h.issue_with_marker("incident:1:tracking-issue")
        assert tracking is not None
        comments = [c["body"] for c in h.github.comments(h.repo, tracking["number"])]
        assert any(f"collaborative doc: {url}" in c for c in comments)

        # the post-mortem (owed: critical) links it
        answer = await h.command("resolve rolled back the release", PRIMARY)
        assert answer["text"] == "Done: resolve on INC-1."
        await h.settle()
        postmortem = h.issue_with_marker("incident:1:postmortem")
        assert postmortem is not None
        assert f"**Collaborative doc:** {url}" in postmortem["body"]
        assert f"collaborative doc: {url}" in postmortem["body"]  # its timeline too

        # no job failed, and Google was asked with a bearer token from the JWT grant
        assert await h.jobs(JobStatus.DEAD) == []
        assert [c for c in google.calls if c.operation == "token"]


async def test_a_retried_doc_job_makes_no_second_doc(
    tmp_path: Path, account: ServiceAccount, google: FakeGoogle
) -> None:
    setup = doc_setup(tmp_path, account, google)
    async with running_router(tmp_path, **setup) as h:
        # The copy is made, then filling it fails (a 503): the job is retried, finds
        # its copy by the appProperties marker and carries on.
        google.fail_next("batchUpdate", 503, "backendError")
        await declare_critical(h)
        [job] = [j for j in await h.jobs() if j.kind.value == "google.doc"]
        assert job.status is JobStatus.DONE and job.attempts == 2
        assert len(google.copies()) == 1
        assert "{{" not in google.copies()[0].text

        # A new commander: the doc is shared with them too, still the one copy.
        await h.command(f"handoff <@{SECONDARY}>", PRIMARY)
        await h.settle()
        await h.command("accept", SECONDARY)
        await h.settle()
        assert len(google.copies()) == 1
        assert ("user", "writer", email(SECONDARY)) in shared_with(google)
        # the link was posted once
        assert len([t for t in await h.thread() if "Collaborative doc" in t]) == 1

        # and asking again says where it is instead of making another
        answer = await h.command("doc", PRIMARY)
        assert answer["text"].startswith("INC-1 already has its doc: https://")
        await h.settle()
        assert len(google.copies()) == 1


async def test_doc_on_request_and_a_permanent_failure_reaches_the_operator(
    tmp_path: Path, account: ServiceAccount, google: FakeGoogle
) -> None:
    # tracking_issue_at: null: neither the issue nor the doc comes on its own.
    setup = doc_setup(tmp_path, account, google)
    setup["config"]["incident"]["tracking_issue_at"] = None
    async with running_router(tmp_path, **setup) as h:
        await declare_critical(h)
        assert google.copies() == []
        google.fail_next("copy", 403, "insufficientFilePermissions")
        answer = await h.command("doc", PRIMARY)
        assert answer["text"] == (
            "Making the collaborative doc; its link will be posted in the thread."
        )
        await h.settle()
        [dead] = await h.jobs(JobStatus.DEAD)
        assert dead.kind.value == "google.doc" and dead.attempts == 1  # not retried
        assert "insufficientFilePermissions" in (dead.last_error or "")
        told = [m["text"] for m in h.slack.messages_in(OPS)]
        assert any("google.doc job failed for good" in t for t in told)
        warning = await h.wait_thread("Could not make or share the collaborative doc")
        assert "insufficientFilePermissions" in warning
        assert google.copies() == []
        # the key file's contents never reached a message
        assert all("PRIVATE KEY" not in m["text"] for m in h.slack.messages_in(INCIDENTS))


async def test_a_missing_template_is_permanent_and_share_with_link_is_opt_in(
    tmp_path: Path, account: ServiceAccount, google: FakeGoogle
) -> None:
    google.add_document("OTHERTEMPLATE0123", "Other", TEMPLATE_TEXT)
    first, second = tmp_path / "missing", tmp_path / "link"
    first.mkdir(), second.mkdir()
    setup = doc_setup(first, account, google, template_document_id="MISSING0123456789")
    async with running_router(first, **setup) as h:
        await declare_critical(h)
        [dead] = await h.jobs(JobStatus.DEAD)
        assert dead.kind.value == "google.doc" and "HTTP 404" in (dead.last_error or "")
    setup = doc_setup(
        second, account, google, template_document_id="OTHERTEMPLATE0123", share_with_link=True
    )
    async with running_router(second, **setup) as h:
        await declare_critical(h)
        assert ("anyone", "reader", "") in shared_with(google)


async def test_opening_the_tracking_issue_by_command_makes_the_doc_too(
    tmp_path: Path, account: ServiceAccount, google: FakeGoogle
) -> None:
    setup = doc_setup(tmp_path, account, google)
    setup["config"]["incident"]["tracking_issue_at"] = None
    async with running_router(tmp_path, github=True, **setup) as h:
        await declare_critical(h)
        assert google.copies() == [] and h.issue_with_marker("incident:1:tracking-issue") is None
        answer = await h.command("issue", PRIMARY)
        assert (
            answer["text"] == "Opening the tracking issue; its link will be posted in the thread."
        )
        await h.settle()
        tracking = h.issue_with_marker("incident:1:tracking-issue")
        assert tracking is not None and h.github is not None
        [copy] = google.copies()
        comments = [c["body"] for c in h.github.comments(h.repo, tracking["number"])]
        assert any(copy.id in c for c in comments)
        assert copy.id in await h.wait_thread("Collaborative doc")
