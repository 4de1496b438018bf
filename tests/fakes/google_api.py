"""A loopback fake of Google's OAuth token endpoint, Drive v3 and Docs v1 (the subset
the collaborative doc uses), for google-auth and google-api-python-client.

Built to /work/shared/protocols.md section 8.5, the discovery documents the client
library ships (``drive.v3.json``, ``docs.v1.json``) and Drive's "Resolve errors" guide::

    async with FakeGoogle(service_account) as google:
        google.add_folder("FOLDER0123456789")
        google.add_document("TEMPLATE0123456789", "Incident template", "Id: {{incident_id}}")
        docs = GoogleDocs(DocConfig(..., drive_api_url=google.drive_url,
                                    docs_api_url=google.docs_url,
                                    token_uri=google.token_uri), credentials)

What it holds to:

- ``POST /token`` takes only the JWT-bearer grant (form-encoded ``grant_type=
  urn:ietf:params:oauth:grant-type:jwt-bearer`` and ``assertion``). The assertion's
  RS256 signature is verified against the service account's public key (its ``kid``
  must be the key id), and its claims: ``iss`` the service account's e-mail, ``aud``
  Google's token endpoint ``https://oauth2.googleapis.com/token`` (google-auth puts that
  audience in every grant, whatever the key's ``token_uri``), ``scope`` including ``https://www.googleapis.com/auth/drive``,
  ``iat`` not in the future and ``exp`` after now, at most an hour after ``iat``.
  Failures are 400 ``{"error": "invalid_grant", "error_description": ...}`` (or
  ``invalid_scope``, ``unsupported_grant_type``). Success issues a fresh bearer token:
  ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``.
- Drive and Docs need ``Authorization: Bearer <an issued token>``; otherwise 401 in
  Google's error shape ``{"error": {"code", "message", "errors": [{"reason":
  "authError", "domain", "message", "location", "locationType"}], "status":
  "UNAUTHENTICATED"}}``. Bodies must be JSON (``Content-Type: application/json``).
- Drive (``/drive/v3``): ``POST files/{id}/copy`` (``name``, ``parents``,
  ``appProperties``; the copy gets the template's text), ``GET files`` with a ``q`` made
  of ``appProperties has { key='k' and value='v' }``, ``'<id>' in parents`` and
  ``trashed = false`` clauses joined by ``and`` (anything else is 400 ``invalidQuery``),
  ``POST files/{id}/permissions`` (``type`` user/group/domain/anyone, ``role``; a user
  needs ``emailAddress``; a person has one permission per file, as in Drive). ``fields``
  selects the answer's fields (``files(id,name)`` for lists). A file the service
  account cannot see is 404 ``notFound``; copying into a folder it may not write, or
  sharing a file it does not own, is 403 ``insufficientFilePermissions``.
  ``supportsAllDrives=true`` is required (the folder may be in a shared drive).
- Docs (``/v1/documents/{id}:batchUpdate``): ``replaceAllText`` requests only, applied
  to the document's text, answered ``{"documentId", "replies": [{"replaceAllText":
  {"occurrencesChanged": n}}], "writeControl"}`` (an empty reply when nothing matched,
  as proto3 JSON omits zero). Docs errors have no ``errors`` list, only ``code``,
  ``message`` and ``status``, as Google's newer APIs answer.
- ``fail_next(operation, status, reason, times=n)`` answers the next n calls of an
  operation (``token``, ``copy``, ``list``, ``permissions``, ``batchUpdate`` or ``*``)
  with that status and reason in Google's shape (403 ``insufficientFilePermissions``,
  404 ``notFound``, 429 ``rateLimitExceeded``, 403 ``userRateLimitExceeded``, 5xx
  ``backendError``), with ``Retry-After`` if ``retry_after`` is given.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.loopback import LoopbackServer

__all__ = ["DRIVE_SCOPE", "FakeGoogle", "GoogleCall", "ServiceAccount"]

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
DOC_MIME = "application/vnd.google-apps.document"
FOLDER_MIME = "application/vnd.google-apps.folder"
_ROLES = {"owner", "organizer", "fileOrganizer", "writer", "commenter", "reader"}
_TYPES = {"user", "group", "domain", "anyone"}
_CLAUSE = re.compile(
    r"appProperties has \{ key='(?P<key>(?:[^'\\]|\\.)*)' and value='(?P<value>(?:[^'\\]|\\.)*)' \}"
    r"|'(?P<parent>(?:[^'\\]|\\.)*)' in parents"
    r"|trashed = (?P<trashed>true|false)"
)
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "backendError": "Backend Error",
}


@dataclass
class ServiceAccount:
    """A generated service account: its key file's JSON and the public key to verify."""

    email: str
    key_id: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, email: str = "router@incident-router.iam.gserviceaccount.com") -> Any:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(email, secrets.token_hex(20), key)

    def key_file(self, token_uri: str = "https://oauth2.googleapis.com/token") -> dict[str, str]:
        from cryptography.hazmat.primitives import serialization

        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "incident-router",
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": self.email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        }


@dataclass
class GoogleCall:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    operation: str = ""
    status: int = 0
    response: Any = None


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    text: str = ""
    app_properties: dict[str, str] = field(default_factory=dict)
    visible: bool = True  # the service account can see it
    writable: bool = True  # the service account may write it (or into it)
    trashed: bool = False
    permissions: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> permission


class _Fail(Exception):
    def __init__(
        self, status: int, reason: str, message: str, *, docs: bool = False, **where: str
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.docs, self.where = (
            status,
            reason,
            message,
            docs,
            where,
        )

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.status, "message": self.message}
        if not self.docs:
            error["errors"] = [
                {
                    "message": self.message,
                    "domain": _domain(self.reason),
                    "reason": self.reason,
                    **self.where,
                }
            ]
        error["status"] = _STATUS.get(self.status, "UNKNOWN")
        return {"error": error}


def _domain(reason: str) -> str:
    return "usageLimits" if reason in ("rateLimitExceeded", "userRateLimitExceeded") else "global"


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeGoogle(LoopbackServer):
    def __init__(self, account: ServiceAccount, clock_skew: float = 0.0) -> None:
        super().__init__()
        self.account = account
        self.files: dict[str, DriveFile] = {}
        self.tokens: set[str] = set()
        self.calls: list[GoogleCall] = []
        self.grants: list[dict[str, Any]] = []  # verified JWT claims
        self._faults: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._permission_ids = itertools.count(1)
        self._skew = clock_skew

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    # ------------------------------------------------------------------ addresses

    @property
    def token_uri(self) -> str:
        return f"{self.origin}/token"

    @property
    def drive_url(self) -> str:
        return f"{self.origin}/drive/v3/"

    @property
    def docs_url(self) -> str:
        return f"{self.origin}/"

    # ------------------------------------------------------------------ state

    def add_folder(
        self, file_id: str, name: str = "Incidents", *, writable: bool = True, visible: bool = True
    ) -> DriveFile:
        folder = DriveFile(file_id, name, FOLDER_MIME, [], writable=writable, visible=visible)
        self.files[file_id] = folder
        return folder

    def add_document(
        self,
        file_id: str,
        name: str,
        text: str,
        *,
        parents: tuple[str, ...] = (),
        visible: bool = True,
        writable: bool = False,
    ) -> DriveFile:
        doc = DriveFile(
            file_id, name, DOC_MIME, list(parents), text, visible=visible, writable=writable
        )
        self.files[file_id] = doc
        return doc

    def copies(self) -> list[DriveFile]:
        return [f for f in self.files.values() if f.app_properties]

    def fail_next(
        self,
        operation: str,
        status: int,
        reason: str,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        self._faults.append(
            {
                "operation": operation,
                "status": status,
                "reason": reason,
                "times": times,
                "retry_after": retry_after,
            }
        )

    def summary(self) -> str:
        return "\n".join(f"{c.method} {c.path} -> {c.status}" for c in self.calls)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        call = GoogleCall(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            raw.decode("utf-8", "replace"),
        )
        self.calls.append(call)
        headers: dict[str, str] = {}
        try:
            call.operation, handler = self._route(request)
            fault = self._fault(call.operation)
            if fault is not None:
                if fault["retry_after"] is not None:
                    headers["Retry-After"] = str(fault["retry_after"])
                if call.operation == "token":
                    raise _Fail(fault["status"], fault["reason"], fault["reason"])
                message = _MESSAGES.get(fault["reason"], fault["reason"])
                raise _Fail(
                    fault["status"], fault["reason"], message, docs=call.operation == "batchUpdate"
                )
            if call.operation == "token":
                call.status, call.response = 200, self._token(request, raw)
            else:
                self._authorize(request, docs=call.operation == "batchUpdate")
                body = self._json_body(request, raw) if request.method == "POST" else None
                call.body = body
                call.status, call.response = 200, handler(request, body)
        except _TokenError as exc:
            call.status, call.response = (
                400,
                {"error": exc.error, "error_description": exc.description},
            )
        except _Fail as exc:
            call.status = exc.status
            call.response = (
                {"error": exc.reason, "error_description": exc.message}
                if call.operation == "token"
                else exc.body()
            )
        return web.json_response(call.response, status=call.status, headers=headers)

    def _route(self, request: web.Request) -> tuple[str, Any]:
        path, method = request.path, request.method
        if path == "/token":
            if method != "POST":
                raise _Fail(405, "methodNotAllowed", "Method Not Allowed")
            return "token", None
        match = re.fullmatch(r"/drive/v3/files/([^/]+)/(copy|permissions)", path)
        if match and method == "POST":
            handler = self._copy if match[2] == "copy" else self._permissions
            return match[2], lambda r, b: handler(match[1], r, b)
        if path == "/drive/v3/files" and method == "GET":
            return "list", lambda r, b: self._list(r)
        match = re.fullmatch(r"/v1/documents/([^/:]+):batchUpdate", path)
        if match and method == "POST":
            return "batchUpdate", lambda r, b: self._batch_update(match[1], b)
        raise _Fail(404, "notFound", f"Not Found: {method} {path}")

    def _fault(self, operation: str) -> dict[str, Any] | None:
        for fault in self._faults:
            if fault["operation"] in (operation, "*"):
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _authorize(self, request: web.Request, docs: bool) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            message = (
                "Request had invalid authentication credentials. Expected OAuth 2 access"
                " token, login cookie or other valid authentication credential."
            )
            error = _Fail(
                401,
                "authError",
                message,
                docs=docs,
                location="Authorization",
                locationType="header",
            )
            raise error

    def _json_body(self, request: web.Request, raw: bytes) -> Any:
        if request.content_type != "application/json":
            raise _Fail(400, "badContent", "Content-Type must be application/json")
        try:
            return json.loads(raw)
        except ValueError:
            raise _Fail(400, "parseError", "Invalid JSON payload received.") from None

    # ------------------------------------------------------------------ token endpoint

    def _token(self, request: web.Request, raw: bytes) -> dict[str, Any]:
        if request.content_type != "application/x-www-form-urlencoded":
            raise _TokenError("invalid_request", "Content-Type must be form-urlencoded")
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        if form.get("grant_type") != JWT_BEARER:
            raise _TokenError("unsupported_grant_type", "Invalid grant_type")
        claims = self._verify(form.get("assertion", ""))
        scopes = str(claims.get("scope", "")).split()
        if DRIVE_SCOPE not in scopes:
            raise _TokenError("invalid_scope", "Drive scope is required")
        self.grants.append(claims)
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _verify(self, assertion: str) -> dict[str, Any]:
        parts = assertion.split(".")
        if len(parts) != 3:
            raise _TokenError("invalid_grant", "Invalid JWT: not three segments")
        try:
            header = json.loads(_b64decode(parts[0]))
            claims = json.loads(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except ValueError:
            raise _TokenError("invalid_grant", "Invalid JWT: not base64url JSON") from None
        if header.get("alg") != "RS256" or header.get("kid") != self.account.key_id:
            raise _TokenError("invalid_grant", "Invalid JWT: alg or kid")
        try:
            self.account.private_key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise _TokenError("invalid_grant", "Invalid JWT Signature.") from None
        now = time.time() + self._skew
        if claims.get("iss") != self.account.email:
            raise _TokenError("invalid_grant", "Invalid JWT: iss")
        if claims.get("aud") != TOKEN_AUDIENCE:
            raise _TokenError("invalid_grant", "Invalid JWT: aud is not Google's token endpoint")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise _TokenError("invalid_grant", "Invalid JWT: iat and exp are required")
        if iat > now + 60 or exp <= now or exp - iat > 3600:
            raise _TokenError("invalid_grant", "Invalid JWT: Token must be a short-lived token")
        return dict(claims)

    # ------------------------------------------------------------------ Drive

    def _file(self, file_id: str, docs: bool = False) -> DriveFile:
        found = self.files.get(file_id)
        if found is None or not found.visible:
            message = "Requested entity was not found." if docs else f"File not found: {file_id}."
            raise _Fail(
                404, "notFound", message, docs=docs, location="fileId", locationType="parameter"
            )
        return found

    def _all_drives(self, request: web.Request) -> None:
        if request.query.get("supportsAllDrives") != "true":
            # Drive answers 404 for a shared drive file without it: the router must send it.
            raise _Fail(404, "notFound", "File not found (supportsAllDrives is not set).")

    def _no_write(self, file_id: str) -> _Fail:
        return _Fail(
            403,
            "insufficientFilePermissions",
            f"The user does not have sufficient permissions for file {file_id}.",
        )

    def _copy(self, file_id: str, request: web.Request, body: Any) -> dict[str, Any]:
        self._all_drives(request)
        template = self._file(file_id)
        if not isinstance(body, dict):
            raise _Fail(400, "badRequest", "The request body must be a File object.")
        parents = body.get("parents") or []
        for parent in parents:
            folder = self._file(parent)
            if folder.mime_type != FOLDER_MIME:
                raise _Fail(400, "badRequest", "A parent must be a folder.")
            if not folder.writable:
                raise self._no_write(parent)
        props = body.get("appProperties") or {}
        if not all(isinstance(v, str) for v in props.values()):
            raise _Fail(400, "badRequest", "appProperties values must be strings.")
        new_id = f"1CopY{next(self._ids):05d}xYzAbCdEfGhIjKlMnOp"
        copy = DriveFile(
            new_id,
            str(body.get("name") or f"Copy of {template.name}"),
            template.mime_type,
            list(parents),
            template.text,
            dict(props),
            writable=True,
        )
        self.files[new_id] = copy
        return self._fields(copy, request.query.get("fields"))

    def _list(self, request: web.Request) -> dict[str, Any]:
        self._all_drives(request)
        if request.query.get("includeItemsFromAllDrives") != "true":
            raise _Fail(400, "badRequest", "includeItemsFromAllDrives is needed with shared drives")
        wanted = self._query(request.query.get("q", ""))
        found = [f for f in self.files.values() if f.visible and wanted(f)]
        fields = request.query.get("fields")
        inner = None
        if fields:
            match = re.fullmatch(r"files\(([^)]*)\)", fields)
            if not match:
                raise _Fail(400, "invalidParameter", f"Invalid field selection {fields}")
            inner = match[1]
        answer: dict[str, Any] = {"files": [self._fields(f, inner) for f in found]}
        if not fields:
            answer = {"kind": "drive#fileList", "incompleteSearch": False, **answer}
        return answer

    def _query(self, q: str) -> Any:
        tests = []
        # "and" also appears inside the appProperties clause: match clauses in sequence.
        pos = 0
        while pos < len(q):
            match = _CLAUSE.match(q, pos)
            if not match:
                raise _Fail(
                    400, "invalidQuery", "Invalid Value", location="q", locationType="parameter"
                )
            tests.append(match)
            pos = match.end()
            if q.startswith(" and ", pos):
                pos += len(" and ")
            elif pos != len(q):
                raise _Fail(
                    400, "invalidQuery", "Invalid Value", location="q", locationType="parameter"
                )

        def unquote(value: str) -> str:
            return re.sub(r"\\(.)", r"\1", value)

        def wanted(f: DriveFile) -> bool:
            for m in tests:
                if m["key"] is not None:
                    if f.app_properties.get(unquote(m["key"])) != unquote(m["value"]):
                        return False
                elif m["parent"] is not None:
                    if unquote(m["parent"]) not in f.parents:
                        return False
                elif (m["trashed"] == "true") != f.trashed:
                    return False
            return True

        return wanted

    def _permissions(self, file_id: str, request: web.Request, body: Any) -> dict[str, Any]:
        self._all_drives(request)
        target = self._file(file_id)
        if not target.writable:
            raise self._no_write(file_id)
        if not isinstance(body, dict) or body.get("type") not in _TYPES:
            raise _Fail(400, "invalidSharingRequest", "A permission type is required.")
        if body.get("role") not in _ROLES:
            raise _Fail(400, "invalidSharingRequest", "A valid permission role is required.")
        if body["type"] in ("user", "group") and not body.get("emailAddress"):
            raise _Fail(
                400,
                "invalidSharingRequest",
                "An email address must be specified for this permission type.",
            )
        who = (body.get("emailAddress") or "").lower() or body["type"]
        for pid, permission in target.permissions.items():
            if ((permission.get("emailAddress") or "").lower() or permission["type"]) == who:
                permission["role"] = body["role"]  # one permission per person: updated
                return self._permission(pid, permission, request)
        pid = f"{next(self._permission_ids):020d}"
        target.permissions[pid] = {k: str(v) for k, v in body.items()}
        return self._permission(pid, target.permissions[pid], request)

    def _permission(
        self, pid: str, permission: dict[str, str], request: web.Request
    ) -> dict[str, Any]:
        if request.query.get("fields") == "id":
            return {"id": pid}
        return {"kind": "drive#permission", "id": pid, **permission}

    def _fields(self, f: DriveFile, fields: str | None) -> dict[str, Any]:
        full: dict[str, Any] = {
            "kind": "drive#file",
            "id": f.id,
            "name": f.name,
            "mimeType": f.mime_type,
            "parents": f.parents,
            "appProperties": f.app_properties,
            "trashed": f.trashed,
            "webViewLink": f"https://docs.google.com/document/d/{f.id}/edit?usp=drivesdk",
        }
        if not fields:
            return {k: full[k] for k in ("kind", "id", "name", "mimeType")}
        names = [n.strip() for n in fields.split(",")]
        unknown = [n for n in names if n not in full]
        if unknown:
            raise _Fail(400, "invalidParameter", f"Invalid field selection {unknown[0]}")
        return {n: full[n] for n in names if n != "appProperties" or f.app_properties}

    # ------------------------------------------------------------------ Docs

    def _batch_update(self, document_id: str, body: Any) -> dict[str, Any]:
        doc = self._file(document_id, docs=True)
        if doc.mime_type != DOC_MIME:
            raise _Fail(
                400, "badRequest", "This operation is not supported for this document", docs=True
            )
        if not doc.writable:
            raise _Fail(403, "forbidden", "The caller does not have permission", docs=True)
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise _Fail(400, "badRequest", "Must specify at least one request.", docs=True)
        replies = []
        for i, req in enumerate(requests):
            replace = req.get("replaceAllText") if isinstance(req, dict) else None
            if not isinstance(replace, dict) or len(req) != 1:
                raise _Fail(
                    400,
                    "badRequest",
                    f"Invalid requests[{i}]: only replaceAllText is supported here",
                    docs=True,
                )
            contains = replace.get("containsText") or {}
            text, new = contains.get("text"), replace.get("replaceText", "")
            if not isinstance(text, str) or not text or not isinstance(new, str):
                raise _Fail(
                    400,
                    "badRequest",
                    f"Invalid requests[{i}].replaceAllText: text is required",
                    docs=True,
                )
            if contains.get("matchCase"):
                count = doc.text.count(text)
                doc.text = doc.text.replace(text, new)
            else:
                pattern = re.compile(re.escape(text), re.IGNORECASE)
                doc.text, count = pattern.subn(lambda _, new=new: new, doc.text)
            replies.append({"replaceAllText": {"occurrencesChanged": count} if count else {}})
        return {
            "documentId": document_id,
            "replies": replies,
            "writeControl": {"requiredRevisionId": secrets.token_urlsafe(12)},
        }


class _TokenError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description
