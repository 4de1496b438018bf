"""FakeGoogle is as strict as Google: the signed grant, bearer tokens, error shapes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.fakes.google_api import (
    DRIVE_SCOPE,
    JWT_BEARER,
    TOKEN_AUDIENCE,
    FakeGoogle,
    ServiceAccount,
)

FOLDER, DOC = "FOLDER0123456789", "DOCUMENT0123456789"


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return ServiceAccount.generate()  # type: ignore[no-any-return]


@pytest.fixture
async def google(account: ServiceAccount) -> AsyncIterator[FakeGoogle]:
    async with FakeGoogle(account) as fake:
        fake.add_folder(FOLDER)
        fake.add_document(
            DOC, "Doc", "Hello {{name}}, hello {{NAME}}", parents=(FOLDER,), writable=True
        )
        yield fake


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(account: ServiceAccount, signer: ServiceAccount | None = None, **claims: Any) -> str:
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": account.key_id}
    body = {
        "iss": account.email,
        "scope": DRIVE_SCOPE,
        "aud": TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + 3600,
    } | claims
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    key = (signer or account).private_key
    signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing}.{_b64(signature)}"


async def call(
    google: FakeGoogle,
    method: str,
    path: str,
    *,
    token: str | None = None,
    params: dict[str, str] | None = None,
    json_body: Any = None,
    form: dict[str, str] | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, google.origin + path, params=params, json=json_body, data=form, headers=headers
        ) as response,
    ):
        return response.status, await response.json()


async def token_for(google: FakeGoogle) -> str:
    status, body = await call(
        google,
        "POST",
        "/token",
        form={"grant_type": JWT_BEARER, "assertion": assertion(google.account)},
    )
    assert status == 200, body
    return str(body["access_token"])


async def test_a_signed_grant_gets_a_bearer_token(google: FakeGoogle) -> None:
    status, body = await call(
        google,
        "POST",
        "/token",
        form={"grant_type": JWT_BEARER, "assertion": assertion(google.account)},
    )
    assert status == 200
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["access_token"] in google.tokens


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"iss": "someone@else.iam.gserviceaccount.com"}, "invalid_grant", "Invalid JWT: iss"),
        (
            {"aud": "http://127.0.0.1/token"},
            "invalid_grant",
            "Invalid JWT: aud is not Google's token endpoint",
        ),
        (
            {"exp": int(time.time()) - 10},
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token",
        ),
        (
            {"exp": int(time.time()) + 7200},
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token",
        ),
        (
            {"scope": "https://www.googleapis.com/auth/calendar"},
            "invalid_scope",
            "Drive scope is required",
        ),
    ],
)
async def test_grant_claims_are_checked(
    google: FakeGoogle, claims: dict[str, Any], error: str, description: str
) -> None:
    form = {"grant_type": JWT_BEARER, "assertion": assertion(google.account, **claims)}
    status, body = await call(google, "POST", "/token", form=form)
    assert (status, body) == (400, {"error": error, "error_description": description})


async def test_a_grant_signed_by_another_key_is_refused(google: FakeGoogle) -> None:
    other = ServiceAccount.generate(google.account.email)
    other.key_id = google.account.key_id  # same kid, wrong key: only the signature differs
    form = {"grant_type": JWT_BEARER, "assertion": assertion(google.account, signer=other)}
    status, body = await call(google, "POST", "/token", form=form)
    assert (status, body["error_description"]) == (400, "Invalid JWT Signature.")


async def test_other_grants_and_bodies_are_refused(google: FakeGoogle) -> None:
    status, body = await call(google, "POST", "/token", form={"grant_type": "client_credentials"})
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, body = await call(google, "POST", "/token", json_body={"grant_type": JWT_BEARER})
    assert (status, body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("token", [None, "ya29.not-issued"])
async def test_drive_without_an_issued_bearer_is_401_in_googles_shape(
    google: FakeGoogle, token: str | None
) -> None:
    status, body = await call(
        google, "GET", "/drive/v3/files", token=token, params={"supportsAllDrives": "true"}
    )
    assert status == 401
    error = body["error"]
    assert set(error) == {"code", "message", "errors", "status"}
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert error["errors"] == [
        {
            "message": error["message"],
            "domain": "global",
            "reason": "authError",
            "location": "Authorization",
            "locationType": "header",
        }
    ]


async def test_docs_errors_have_no_errors_list(google: FakeGoogle) -> None:
    token = await token_for(google)
    status, body = await call(
        google,
        "POST",
        "/v1/documents/NOPE0123456789:batchUpdate",
        token=token,
        json_body={"requests": []},
    )
    assert (status, body) == (
        404,
        {
            "error": {
                "code": 404,
                "message": "Requested entity was not found.",
                "status": "NOT_FOUND",
            }
        },
    )


async def test_replace_all_text_counts_and_matches_case(google: FakeGoogle) -> None:
    token = await token_for(google)
    requests = [
        {
            "replaceAllText": {
                "containsText": {"text": "{{name}}", "matchCase": True},
                "replaceText": "Jane",
            }
        },
        {
            "replaceAllText": {
                "containsText": {"text": "{{absent}}", "matchCase": True},
                "replaceText": "x",
            }
        },
    ]
    status, body = await call(
        google,
        "POST",
        f"/v1/documents/{DOC}:batchUpdate",
        token=token,
        json_body={"requests": requests},
    )
    assert status == 200
    assert body["documentId"] == DOC
    assert body["replies"] == [
        {"replaceAllText": {"occurrencesChanged": 1}},
        {"replaceAllText": {}},
    ]
    assert google.files[DOC].text == "Hello Jane, hello {{NAME}}"
    status, body = await call(
        google,
        "POST",
        f"/v1/documents/{DOC}:batchUpdate",
        token=token,
        json_body={"requests": [{"insertText": {"text": "x"}}]},
    )
    assert status == 400 and "errors" not in body["error"]


async def test_queries_need_all_drives_and_known_clauses(google: FakeGoogle) -> None:
    token = await token_for(google)
    status, body = await call(
        google, "GET", "/drive/v3/files", token=token, params={"q": f"'{FOLDER}' in parents"}
    )
    assert status == 404
    params = {"supportsAllDrives": "true", "includeItemsFromAllDrives": "true"}
    status, body = await call(
        google, "GET", "/drive/v3/files", token=token, params=params | {"q": "name contains 'x'"}
    )
    assert status == 400 and body["error"]["errors"][0]["reason"] == "invalidQuery"
    status, body = await call(
        google,
        "GET",
        "/drive/v3/files",
        token=token,
        params=params
        | {"q": f"'{FOLDER}' in parents and trashed = false", "fields": "files(id,name)"},
    )
    assert (status, body) == (200, {"files": [{"id": DOC, "name": "Doc"}]})


async def test_copy_and_permission_rules(google: FakeGoogle) -> None:
    token = await token_for(google)
    all_drives = {"supportsAllDrives": "true"}
    google.files[FOLDER].writable = False
    status, body = await call(
        google,
        "POST",
        f"/drive/v3/files/{DOC}/copy",
        token=token,
        params=all_drives,
        json_body={"parents": [FOLDER]},
    )
    assert status == 403
    assert body["error"]["errors"][0]["reason"] == "insufficientFilePermissions"
    assert body["error"]["message"] == (
        f"The user does not have sufficient permissions for file {FOLDER}."
    )
    status, body = await call(
        google,
        "POST",
        f"/drive/v3/files/{DOC}/permissions",
        token=token,
        params=all_drives,
        json_body={"type": "user", "role": "writer"},
    )
    assert status == 400 and body["error"]["errors"][0]["reason"] == "invalidSharingRequest"
    for _ in range(2):
        status, body = await call(
            google,
            "POST",
            f"/drive/v3/files/{DOC}/permissions",
            token=token,
            params=all_drives,
            json_body={"type": "user", "role": "writer", "emailAddress": "Jane@example.com"},
        )
        assert status == 200 and body["kind"] == "drive#permission"
    assert len(google.files[DOC].permissions) == 1
    status, _ = await call(
        google,
        "POST",
        f"/drive/v3/files/{DOC}/copy",
        token=token,
        params=all_drives,
        json_body=None,
    )
    assert status == 400  # no JSON body


async def test_faults_answer_in_googles_shape(google: FakeGoogle) -> None:
    token = await token_for(google)
    google.fail_next("list", 429, "rateLimitExceeded", retry_after=3)
    status, body = await call(google, "GET", "/drive/v3/files", token=token)
    assert status == 429
    assert body["error"]["errors"][0] | {"message": ""} == {
        "message": "",
        "domain": "usageLimits",
        "reason": "rateLimitExceeded",
    }
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
