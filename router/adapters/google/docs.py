"""The collaborative doc of an incident: copy a template, fill it in, share it.

Through google-api-python-client (Drive v3, Docs v1, static discovery documents, no
network at build time) and google-auth (a service account key: the signed JWT grant
at the key's ``token_uri``, scope ``https://www.googleapis.com/auth/drive``). Both
endpoints come from config, so tests point them at a loopback stand-in.

One job, ``google.doc`` (payload ``DocJob``), does it all and is idempotent:

1. find: ``files.list`` with ``q = appProperties has { key='routerIncident' and
   value='<incident>' } and '<folder>' in parents and trashed = false``
   (``supportsAllDrives``, ``includeItemsFromAllDrives``);
2. else copy: ``files.copy`` of the template with ``name``, ``parents: [folder]`` and
   ``appProperties: {routerIncident: <incident>}``, so a retried or interrupted job
   finds the copy it made instead of making a second one;
3. fill: ``documents.batchUpdate`` with one ``replaceAllText`` per placeholder
   (``PLACEHOLDERS``): running it again on a filled doc changes nothing;
4. share: ``permissions.create`` ``{type: user, role: writer, emailAddress}`` for each
   responder's e-mail (Drive keeps one permission per person), and
   ``{type: anyone, role: reader}`` only with ``incident.doc.share_with_link``.

The result is ``{"doc_id", "url"}``; a job that could not share with somebody (no
e-mail known) still succeeds and lists them in ``"not_shared"`` (Slack ids).

The libraries are synchronous (httplib2): every call runs in a worker thread, one at a
time, because an ``httplib2.Http`` must not be used by two threads at once. The
client's own retries are off (``num_retries=0``): retrying is the outbox's job.

Failures are sorted in ``google_failure``: 429, 5xx, 403 ``rateLimitExceeded`` or
``userRateLimitExceeded``, timeouts and connection errors are ``RetryLater`` (with
Retry-After when given); 403 ``insufficientFilePermissions``, 404 (a missing template
or folder, or one not shared with the service account), 401 and every other 4xx are
``PermanentFailure``. Reasons carry statuses, Google's reason codes and file ids; never
a title, a name, an e-mail, the key or a token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from pydantic import ValidationError

from router.adapters.google.config import DocConfig
from router.app.effects import (
    PermanentFailure,
    ResultLookup,
    RetryLater,
    parse_retry_after,
    require_result,
)
from router.core.collaborative_doc import DocJob, DocLink
from router.core.jobs import JobKind, PayloadError, StoredJob

log = logging.getLogger(__name__)

DOC_JOB = JobKind.GOOGLE_DOC.value
__all__ = ["DocAdapter", "DocJob", "DocLink", "GoogleDocs", "load_credentials"]
DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
INCIDENT_PROPERTY = "routerIncident"
FILE_FIELDS = "id,name,webViewLink,appProperties"
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})

# Slack user id -> e-mail address (or name; None: unknown); raises when it cannot say now.
EmailLookup = Callable[[str], Awaitable[str | None]]
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


class CredentialsError(Exception):
    """The service account key cannot be used; the message names the file, not its text."""


def placeholders(job: DocJob) -> dict[str, str]:
    """What the template's placeholders are replaced with."""
    links = "\n".join(f"{link.text}: {link.url}" for link in job.links) or "none yet"
    return {
        "{{incident_id}}": job.incident,
        "{{title}}": job.title,
        "{{commander}}": job.commander,
        "{{severity}}": job.severity,
        "{{severity_clause}}": job.clause,
        "{{links}}": links,
    }


PLACEHOLDERS = tuple(
    placeholders(DocJob(incident="", title="", commander="", severity="", clause=""))
)


def load_credentials(path: str, token_uri: str | None = None) -> service_account.Credentials:
    """The service account key at ``path`` (``GOOGLE_APPLICATION_CREDENTIALS``)."""
    try:
        info = json.loads(Path(path).read_text())
    except OSError as exc:
        raise CredentialsError(
            f"GOOGLE_APPLICATION_CREDENTIALS: cannot read {path}: {exc.strerror}"
        ) from None
    except ValueError:
        raise CredentialsError(f"GOOGLE_APPLICATION_CREDENTIALS: {path} is not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise CredentialsError(
            f"GOOGLE_APPLICATION_CREDENTIALS: {path} is not a service account key"
        )
    if token_uri is not None:
        info = {**info, "token_uri": token_uri}
    try:
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[DRIVE_SCOPE]
            )
        )
        return credentials
    except (ValueError, KeyError):
        raise CredentialsError(
            f"GOOGLE_APPLICATION_CREDENTIALS: {path} is missing fields or its key is unreadable"
        ) from None


def _reasons(exc: HttpError) -> list[str]:
    """Google's reason codes of an error answer (Drive's ``errors[].reason``; the
    newer APIs, Docs among them, give only ``status``)."""
    try:
        error = json.loads(exc.content.decode("utf-8"))["error"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    found = [e["reason"] for e in error.get("errors", []) if isinstance(e, dict) and "reason" in e]
    if isinstance(error.get("status"), str):
        found.append(error["status"])
    return [str(r) for r in found]


def google_failure(what: str, exc: BaseException) -> RetryLater | PermanentFailure:
    """The one place a failed Google call becomes retry-later or permanent."""
    if isinstance(exc, HttpError):
        status = exc.resp.status
        reasons = _reasons(exc)
        shown = f"{what}: HTTP {status}" + (f" ({', '.join(reasons)})" if reasons else "")
        retry_after = parse_retry_after(exc.resp.get("retry-after"))
        if status == 429 or status >= 500 or status == 408:
            return RetryLater(shown, retry_after)
        if status == 403 and RATE_LIMIT_REASONS.intersection(reasons):
            return RetryLater(shown, retry_after)
        if status == 403 and "insufficientFilePermissions" in reasons:
            return PermanentFailure(
                f"{shown}: the service account may not write there (share the folder"
                " with it as an editor)"
            )
        if status == 404:
            return PermanentFailure(
                f"{shown}: no such file, or it is not shared with the service account"
            )
        if status == 401:
            return PermanentFailure(f"{shown}: the access token was refused")
        return PermanentFailure(shown)
    if isinstance(exc, RefreshError):
        if getattr(exc, "retryable", False):
            return RetryLater(f"{what}: the token endpoint failed (retryable)")
        return PermanentFailure(f"{what}: the token endpoint refused the service account key")
    if isinstance(exc, TransportError | TimeoutError | socket.timeout | ConnectionError):
        return RetryLater(f"{what}: {type(exc).__name__}")
    if isinstance(exc, httplib2.HttpLib2Error | OSError):
        return RetryLater(f"{what}: {type(exc).__name__}")
    if isinstance(exc, GoogleAuthError):
        return PermanentFailure(f"{what}: {type(exc).__name__}")
    return PermanentFailure(f"{what}: {type(exc).__name__}")


class GoogleDocs:
    """Drive and Docs calls for the doc duty, each run in a thread, one at a time."""

    def __init__(self, config: DocConfig, credentials: service_account.Credentials) -> None:
        self.config = config
        self._credentials = credentials
        self._services: tuple[Any, Any] | None = None
        self._http: google_auth_httplib2.AuthorizedHttp | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"GoogleDocs(drive_api_url={self.config.drive_api_url!r})"

    def _build(self) -> tuple[Any, Any]:
        if self._services is None:
            http = google_auth_httplib2.AuthorizedHttp(
                self._credentials, http=httplib2.Http(timeout=self.config.timeout_seconds)
            )
            drive = build(
                "drive",
                "v3",
                http=http,
                static_discovery=True,
                client_options={"api_endpoint": self.config.drive_api_url},
            )
            docs = build(
                "docs",
                "v1",
                http=http,
                static_discovery=True,
                client_options={"api_endpoint": self.config.docs_api_url},
            )
            self._services, self._http = (drive, docs), http
        return self._services

    async def close(self) -> None:
        """Close the kept-alive connections (httplib2 keeps one per host)."""
        async with self._lock:  # not while a call runs: httplib2 is not thread-safe
            if self._http is not None:
                self._http.close()
            self._services = self._http = None

    async def _call(self, what: str, request: Callable[[Any, Any], Any]) -> Any:
        def run() -> Any:
            drive, docs = self._build()
            return request(drive, docs).execute(num_retries=0)

        async with self._lock:
            try:
                return await asyncio.to_thread(run)
            except Exception as exc:
                raise google_failure(what, exc) from exc

    async def find(self, incident: str) -> dict[str, Any] | None:
        """The incident's doc in the folder, if a copy was made already."""
        query = (
            f"appProperties has {{ key='{INCIDENT_PROPERTY}' and value='{_quote(incident)}' }}"
            f" and '{_quote(self.config.folder_id)}' in parents and trashed = false"
        )
        answer = await self._call(
            "drive files.list",
            lambda drive, _: drive.files().list(
                q=query,
                fields=f"files({FILE_FIELDS})",
                supportsAllDrives=True,
                includeItemsFromAllDrives=True,
                pageSize=10,
            ),
        )
        files = answer.get("files") or []
        # Two copies can only come from before this check existed; the first one wins.
        return dict(files[0]) if files else None

    async def copy(self, job: DocJob) -> dict[str, Any]:
        body = {
            "name": self.config.name_template.format(incident=job.incident, title=job.title),
            "parents": [self.config.folder_id],
            "appProperties": {INCIDENT_PROPERTY: job.incident},
        }
        result: dict[str, Any] = await self._call(
            "drive files.copy",
            lambda drive, _: drive.files().copy(
                fileId=self.config.template_document_id,
                body=body,
                fields=FILE_FIELDS,
                supportsAllDrives=True,
            ),
        )
        return result

    async def fill(self, doc_id: str, values: Mapping[str, str]) -> int:
        """Replace every placeholder; the number of replacements made."""
        requests = [
            {"replaceAllText": {"containsText": {"text": k, "matchCase": True}, "replaceText": v}}
            for k, v in values.items()
        ]
        answer = await self._call(
            "docs documents.batchUpdate",
            lambda _, docs: docs.documents().batchUpdate(
                documentId=doc_id, body={"requests": requests}
            ),
        )
        replies = answer.get("replies") or []
        return sum(
            int((r.get("replaceAllText") or {}).get("occurrencesChanged", 0)) for r in replies
        )

    async def share(self, file_id: str, permission: dict[str, str], notify: bool) -> None:
        await self._call(
            "drive permissions.create",
            lambda drive, _: drive.permissions().create(
                fileId=file_id,
                body=permission,
                sendNotificationEmail=notify,
                supportsAllDrives=True,
                fields="id",
            ),
        )


def _field(exc: PayloadError) -> str:
    """The field a payload error names (never the value it had)."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        return ", ".join(sorted({".".join(str(p) for p in e["loc"]) for e in cause.errors()}))
    return "payload"


def _quote(value: str) -> str:
    # Drive query strings are single-quoted; \ and ' are escaped with a backslash.
    return value.replace("\\", "\\\\").replace("'", "\\'")


class DocAdapter:
    """Carries out ``google.doc`` jobs."""

    kinds: frozenset[JobKind] = frozenset({JobKind.GOOGLE_DOC})
    system = "google"

    def __init__(
        self, docs: GoogleDocs, email_of: EmailLookup, name_of: EmailLookup | None = None
    ) -> None:
        self.docs = docs
        self._email_of = email_of
        self._name_of = name_of  # Slack id -> name, for the commander line of the doc

    def __repr__(self) -> str:
        return f"DocAdapter({self.docs!r})"

    async def close(self) -> None:
        await self.docs.close()

    async def run(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        try:
            payload = DocJob.of(job)
        except KeyError as exc:  # a field it needs is missing: no retry brings it
            raise PermanentFailure(f"google.doc: bad payload ({exc.args[0]})") from None
        except PayloadError as exc:
            raise PermanentFailure(f"google.doc: bad payload ({_field(exc)})") from None
        if payload.after is not None:
            # Share only once the first job made (or found) the copy: two jobs looking
            # for it at once would each find none and copy twice.
            await require_result(results, payload.after)
        return await self.make_doc(payload)

    async def find(self, job: StoredJob, results: ResultLookup) -> dict[str, Any] | None:
        """None: ``run`` looks for the incident's copy before it makes one, so running
        again never makes a second doc; filling and sharing again change nothing."""
        return None

    async def _named(self, job: DocJob) -> DocJob:
        """The commander by name where Slack knows it ("Jane Doe (U0123ABCD)"): a doc
        reader cannot resolve a Slack id. Unknown, or Slack failing: the id stays."""
        if self._name_of is None or not _SLACK_ID.fullmatch(job.commander):
            return job
        try:
            name = await self._name_of(job.commander)
        except (RetryLater, PermanentFailure):
            return job
        if not name:
            return job
        return job.model_copy(update={"commander": f"{name} ({job.commander})"})

    async def make_doc(self, job: DocJob) -> dict[str, Any]:
        found = await self.docs.find(job.incident)
        made = found is None
        doc = found if found is not None else await self.docs.copy(job)
        doc_id = str(doc["id"])
        replaced = await self.docs.fill(doc_id, placeholders(await self._named(job)))
        not_shared = []
        notify = self.docs.config.notify_by_email
        for user in dict.fromkeys(job.responders):
            email = await self._email_of(user)
            if email is None:
                not_shared.append(user)
                continue
            permission = {"type": "user", "role": "writer", "emailAddress": email}
            await self.docs.share(doc_id, permission, notify)
        if self.docs.config.share_with_link and not job.confidential:
            await self.docs.share(doc_id, {"type": "anyone", "role": "reader"}, False)
        log.info(
            "google doc for %s: %s %s, %d placeholders filled, shared with %d, %d unknown",
            job.incident,
            "made" if made else "found",
            doc_id,
            replaced,
            len(dict.fromkeys(job.responders)) - len(not_shared),
            len(not_shared),
        )
        url = doc.get("webViewLink") or f"https://docs.google.com/document/d/{doc_id}/edit"
        result: dict[str, Any] = {"doc_id": doc_id, "url": url}
        if not_shared:
            result["not_shared"] = not_shared
        return result
