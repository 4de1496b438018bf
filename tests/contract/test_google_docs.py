"""The collaborative doc adapter against FakeGoogle, through google-auth and
google-api-python-client with a generated service account key."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router.adapters.google.config import DocConfig
from router.adapters.google.docs import (
    INCIDENT_PROPERTY,
    CredentialsError,
    DocAdapter,
    DocJob,
    GoogleDocs,
    load_credentials,
)
from router.app.effects import PermanentFailure, RetryLater
from router.core.jobs import JobKind, JobStatus, StoredJob
from tests.fakes.google_api import TOKEN_AUDIENCE, FakeGoogle, ServiceAccount

TEMPLATE, FOLDER = "TEMPLATE0123456789", "FOLDER0123456789"
TEMPLATE_TEXT = (
    "Incident {{incident_id}}: {{title}}\nCommander: {{commander}}\n"
    "Severity: {{severity}} ({{severity_clause}})\nLinks:\n{{links}}\n"
)
EMAILS = {"U0JANE0001": "jane@example.com", "U0JOHN0002": "john@example.com"}
JOB = DocJob(
    incident="INC-42",
    title="Checkout is down",
    commander="Jane Doe",
    severity="critical",
    clause="extreme or complete production outage",
    links=(
        {"text": "Slack", "url": "https://slack.example/C0INC"},  # type: ignore[arg-type]
        {"text": "Issue", "url": "https://github.example/acme/corp/issues/7"},
    ),
    responders=("U0JANE0001", "U0JOHN0002", "U0NOMAIL9"),
)


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return ServiceAccount.generate()  # type: ignore[no-any-return]


@pytest.fixture
def key_path(tmp_path: Path, account: ServiceAccount) -> str:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(account.key_file()))
    return str(path)


@pytest.fixture
async def google(account: ServiceAccount) -> AsyncIterator[FakeGoogle]:
    async with FakeGoogle(account) as fake:
        fake.add_folder(FOLDER)
        fake.add_document(TEMPLATE, "Incident template", TEMPLATE_TEXT)
        yield fake


def doc_config(google: FakeGoogle, **changes: Any) -> DocConfig:
    return DocConfig.model_validate(
        {
            "template_document_id": TEMPLATE,
            "folder_id": FOLDER,
            "drive_api_url": google.drive_url,
            "docs_api_url": google.docs_url,
            "token_uri": google.token_uri,
        }
        | changes
    )


async def email_of(user: str) -> str | None:
    return EMAILS.get(user)


MADE: list[DocAdapter] = []  # closed after each test (their kept-alive connections)


@pytest.fixture(autouse=True)
async def close_adapters() -> AsyncIterator[None]:
    yield
    while MADE:
        await MADE.pop().close()


def adapter(google: FakeGoogle, key_path: str, **changes: Any) -> DocAdapter:
    config = doc_config(google, **changes)
    made = DocAdapter(GoogleDocs(config, load_credentials(key_path, config.token_uri)), email_of)
    MADE.append(made)
    return made


def stored(payload: dict[str, Any]) -> StoredJob:
    return StoredJob(
        id=1,
        kind=JobKind.GOOGLE_DOC,
        key="doc:INC-42",
        payload=payload,
        due_at=datetime.now(UTC),
        attempts=1,
        status=JobStatus.RUNNING,
    )


async def no_results(key: str) -> dict[str, Any] | None:
    return None


# --------------------------------------------------------------------------- the doc


async def test_a_doc_is_copied_filled_and_shared_with_the_responders_only(
    google: FakeGoogle, key_path: str
) -> None:
    result = await adapter(google, key_path).run(stored(JOB.model_dump(mode="json")), no_results)
    [copy] = google.copies()
    assert result == {
        "doc_id": copy.id,
        "url": f"https://docs.google.com/document/d/{copy.id}/edit?usp=drivesdk",
        "not_shared": ["U0NOMAIL9"],
    }
    assert copy.name == "INC-42: Checkout is down"
    assert copy.parents == [FOLDER]
    assert copy.app_properties == {INCIDENT_PROPERTY: "INC-42"}
    assert copy.text == (
        "Incident INC-42: Checkout is down\nCommander: Jane Doe\n"
        "Severity: critical (extreme or complete production outage)\nLinks:\n"
        "Slack: https://slack.example/C0INC\nIssue: https://github.example/acme/corp/issues/7\n"
    )
    assert sorted(
        (p["type"], p["role"], p.get("emailAddress")) for p in copy.permissions.values()
    ) == [
        ("user", "writer", "jane@example.com"),
        ("user", "writer", "john@example.com"),
    ]  # no "anyone with the link"
    assert google.files[TEMPLATE].text == TEMPLATE_TEXT  # the template is untouched
    [grant] = google.grants
    assert grant["iss"] == google.account.email and grant["aud"] == TOKEN_AUDIENCE


async def test_the_requests_are_drives_and_docs_own(google: FakeGoogle, key_path: str) -> None:
    await adapter(google, key_path).make_doc(JOB)
    ops = [c.operation for c in google.calls]
    assert ops == ["token", "list", "copy", "batchUpdate", "permissions", "permissions"]
    listing = google.calls[1]
    assert listing.query["q"] == (
        "appProperties has { key='routerIncident' and value='INC-42' }"
        f" and '{FOLDER}' in parents and trashed = false"
    )
    assert listing.query["supportsAllDrives"] == "true"
    copy = google.calls[2]
    assert copy.path == f"/drive/v3/files/{TEMPLATE}/copy"
    assert copy.body == {
        "name": "INC-42: Checkout is down",
        "parents": [FOLDER],
        "appProperties": {"routerIncident": "INC-42"},
    }
    update = google.calls[3]
    assert update.path.endswith(":batchUpdate")
    texts = [r["replaceAllText"]["containsText"]["text"] for r in update.body["requests"]]
    assert texts == [
        "{{incident_id}}",
        "{{title}}",
        "{{commander}}",
        "{{severity}}",
        "{{severity_clause}}",
        "{{links}}",
    ]
    assert google.calls[4].query["sendNotificationEmail"] == "true"
    assert all(c.headers["Authorization"].startswith("Bearer ya29.") for c in google.calls[1:])


async def test_a_retried_job_makes_no_second_doc(google: FakeGoogle, key_path: str) -> None:
    docs = adapter(google, key_path)
    first = await docs.make_doc(JOB)
    again = await adapter(google, key_path).make_doc(JOB)  # another process, same incident
    assert again["doc_id"] == first["doc_id"] and len(google.copies()) == 1
    [copy] = google.copies()
    assert len(copy.permissions) == 2  # shared again: still one permission each


async def test_a_share_job_waits_for_the_first_doc_job(google: FakeGoogle, key_path: str) -> None:
    share = stored(JOB.model_copy(update={"after": "incident:42:doc"}).model_dump(mode="json"))
    with pytest.raises(RetryLater) as failure:
        await adapter(google, key_path).run(share, no_results)
    assert failure.value.waiting  # no attempt used, and Google was not asked
    assert google.calls == [] and google.copies() == []


async def test_an_interrupted_job_finds_its_copy_and_finishes_it(
    google: FakeGoogle, key_path: str
) -> None:
    docs = adapter(google, key_path)
    google.fail_next("batchUpdate", 503, "backendError")
    with pytest.raises(RetryLater) as failure:
        await docs.make_doc(JOB)
    assert failure.value.reason == "docs documents.batchUpdate: HTTP 503 (UNAVAILABLE)"
    result = await docs.make_doc(JOB)
    [copy] = google.copies()
    assert result["doc_id"] == copy.id and "{{" not in copy.text


async def test_the_link_is_shared_only_when_configured(google: FakeGoogle, key_path: str) -> None:
    await adapter(google, key_path, share_with_link=True, notify_by_email=False).make_doc(JOB)
    [copy] = google.copies()
    kinds = sorted((p["type"], p["role"]) for p in copy.permissions.values())
    assert kinds == [("anyone", "reader"), ("user", "writer"), ("user", "writer")]
    shares = [c for c in google.calls if c.operation == "permissions"]
    assert {c.query["sendNotificationEmail"] for c in shares} == {"false"}


async def test_a_confidential_incidents_doc_is_never_shared_by_link(
    google: FakeGoogle, key_path: str
) -> None:
    secret = JOB.model_copy(update={"confidential": True})
    await adapter(google, key_path, share_with_link=True, notify_by_email=False).make_doc(secret)
    [copy] = google.copies()
    assert sorted(p["type"] for p in copy.permissions.values()) == ["user", "user"]


async def test_an_expired_token_is_renewed(google: FakeGoogle, key_path: str) -> None:
    docs = adapter(google, key_path)
    await docs.make_doc(JOB)
    google.tokens.clear()  # every issued token is now refused with 401
    await docs.make_doc(JOB.model_copy(update={"incident": "INC-43"}))
    assert len(google.grants) == 2 and len(google.copies()) == 2


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("operation", "status", "reason", "expected"),
    [
        (
            "copy",
            429,
            "rateLimitExceeded",
            "drive files.copy: HTTP 429 (rateLimitExceeded, RESOURCE_EXHAUSTED)",
        ),
        (
            "list",
            403,
            "userRateLimitExceeded",
            "drive files.list: HTTP 403 (userRateLimitExceeded, PERMISSION_DENIED)",
        ),
        (
            "permissions",
            500,
            "backendError",
            "drive permissions.create: HTTP 500 (backendError, INTERNAL)",
        ),
    ],
)
async def test_rate_limits_and_server_errors_are_retried(
    google: FakeGoogle, key_path: str, operation: str, status: int, reason: str, expected: str
) -> None:
    google.fail_next(operation, status, reason, retry_after=12)
    with pytest.raises(RetryLater) as failure:
        await adapter(google, key_path).make_doc(JOB)
    assert failure.value.reason == expected
    assert failure.value.after == 12


async def test_a_folder_the_account_may_not_write_is_permanent(
    google: FakeGoogle, key_path: str
) -> None:
    google.files[FOLDER].writable = False
    with pytest.raises(PermanentFailure) as failure:
        await adapter(google, key_path).make_doc(JOB)
    assert failure.value.reason.startswith(
        "drive files.copy: HTTP 403 (insufficientFilePermissions, PERMISSION_DENIED)"
    )
    assert google.copies() == []


async def test_a_missing_template_is_permanent(google: FakeGoogle, key_path: str) -> None:
    google.files[TEMPLATE].visible = False  # deleted, or never shared with the account
    with pytest.raises(PermanentFailure) as failure:
        await adapter(google, key_path).make_doc(JOB)
    assert failure.value.reason == (
        "drive files.copy: HTTP 404 (notFound, NOT_FOUND): no such file, or it is not shared"
        " with the service account"
    )


async def test_a_key_google_does_not_know_is_permanent(google: FakeGoogle, tmp_path: Path) -> None:
    stranger = ServiceAccount.generate(google.account.email)  # same e-mail, another key
    path = tmp_path / "other.json"
    path.write_text(json.dumps(stranger.key_file()))
    with pytest.raises(PermanentFailure) as failure:
        await adapter(google, str(path)).make_doc(JOB)
    assert failure.value.reason == (
        "drive files.list: the token endpoint refused the service account key"
    )


async def test_an_unreachable_google_is_retried(key_path: str) -> None:
    config = DocConfig(
        template_document_id=TEMPLATE,
        folder_id=FOLDER,
        drive_api_url="http://127.0.0.1:9/drive/v3/",
        docs_api_url="http://127.0.0.1:9/",
        token_uri="http://127.0.0.1:9/token",
    )
    docs = DocAdapter(GoogleDocs(config, load_credentials(key_path, config.token_uri)), email_of)
    MADE.append(docs)
    with pytest.raises(RetryLater):
        await docs.make_doc(JOB)


async def test_a_bad_payload_names_its_fields_not_its_values(
    google: FakeGoogle, key_path: str
) -> None:
    # Read tolerantly (a newer version's extra keys are kept): a missing field is named.
    with pytest.raises(PermanentFailure) as failure:
        await adapter(google, key_path).run(stored({"incident": "INC-1", "titel": "x"}), no_results)
    assert failure.value.reason == "google.doc: bad payload (title)"
    wrong = stored(JOB.model_dump(mode="json") | {"links": [{"text": "secret-text"}]})
    with pytest.raises(PermanentFailure) as failure:
        await adapter(google, key_path).run(wrong, no_results)
    assert failure.value.reason == "google.doc: bad payload (links.0.url)"
    assert google.calls == []


async def test_nothing_confidential_is_logged(
    google: FakeGoogle, key_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await adapter(google, key_path).make_doc(JOB)
    for secret in ("Checkout is down", "jane@example.com", "PRIVATE KEY", "ya29."):
        assert secret not in caplog.text


# --------------------------------------------------------------------------- the key


def test_key_file_problems_name_the_file_not_its_text(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"cannot read .*missing\.json"):
        load_credentials(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "authorized_user", "refresh_token": "s3cret"}')
    with pytest.raises(CredentialsError) as failure:
        load_credentials(str(bad))
    assert "s3cret" not in str(failure.value) and "not a service account key" in str(failure.value)
    bad.write_text('{"type": "service_account", "private_key": "s3cret"}')
    with pytest.raises(CredentialsError) as failure:
        load_credentials(str(bad))
    assert "s3cret" not in str(failure.value)


def test_the_token_uri_override_wins(key_path: str) -> None:
    assert load_credentials(key_path)._token_uri == "https://oauth2.googleapis.com/token"
    assert load_credentials(key_path, "http://127.0.0.1:1/token")._token_uri == (
        "http://127.0.0.1:1/token"
    )
