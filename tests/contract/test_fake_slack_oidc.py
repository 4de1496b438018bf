"""The Sign in with Slack stand-in holds to Slack's documented behaviour, through the
real slack_sdk client and PyJWT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import jwt
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_oidc import FakeSlackOIDC

REDIRECT = "https://router.example.com/ui/sign-in/slack/callback"


@pytest.fixture
async def oidc() -> AsyncIterator[FakeSlackOIDC]:
    async with FakeSlackOIDC(redirect_uris=[REDIRECT]) as fake:
        yield fake


def _authorize_query(oidc: FakeSlackOIDC, **changes: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "scope": "openid profile email",
        "client_id": oidc.client_id,
        "redirect_uri": REDIRECT,
        "state": "st-1",
        "nonce": "no-1",
    }
    query.update(changes)
    return {k: v for k, v in query.items() if v != ""}


async def _code(oidc: FakeSlackOIDC, **changes: str) -> str:
    async with aiohttp.ClientSession() as http:
        url = (
            f"{oidc.origin}/openid/connect/authorize?{urlencode(_authorize_query(oidc, **changes))}"
        )
        response = await http.get(url, allow_redirects=False)
        assert response.status == 302, await response.text()
        back = urlsplit(response.headers["Location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT
        query = parse_qs(back.query)
        assert query["state"] == ["st-1"]
        return query["code"][0]


async def test_code_exchange_answers_slacks_shape_with_a_verifiable_id_token(
    oidc: FakeSlackOIDC,
) -> None:
    code = await _code(oidc)
    client = AsyncWebClient(base_url=oidc.api_url)
    response = await client.openid_connect_token(
        client_id=oidc.client_id, client_secret=oidc.client_secret, code=code, redirect_uri=REDIRECT
    )
    assert set(response.data) == {"ok", "access_token", "token_type", "id_token"}
    assert response["token_type"] == "Bearer" and response["access_token"].startswith("xoxp-")
    async with aiohttp.ClientSession() as http:
        keys = jwt.PyJWKSet.from_dict(
            await (await http.get(f"{oidc.origin}/openid/connect/keys")).json()
        )
    kid = jwt.get_unverified_header(response["id_token"])["kid"]
    (key,) = [k.key for k in keys.keys if k.key_id == kid]
    claims = jwt.decode(
        response["id_token"],
        key,
        algorithms=["RS256"],
        audience=oidc.client_id,
        issuer="https://slack.com",
    )
    assert claims["nonce"] == "no-1"
    assert claims["sub"] == claims["https://slack.com/user_id"] == "U0JANE0001"
    assert claims["https://slack.com/team_id"] == "T0FAKETEAM"
    assert claims["email"] == "jane@example.com" and claims["email_verified"] is True
    assert claims["exp"] - claims["iat"] == 300
    (call,) = oidc.token_calls
    assert call.basic_auth == (oidc.client_id, oidc.client_secret)  # slack_sdk's way
    assert call.content_type == "application/x-www-form-urlencoded"


async def test_client_secret_post_works_too(oidc: FakeSlackOIDC) -> None:
    code = await _code(oidc)
    form = {"client_id": oidc.client_id, "client_secret": oidc.client_secret, "code": code,
            "redirect_uri": REDIRECT}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{oidc.api_url}openid.connect.token", data=form)
        assert response.headers["Content-Type"].startswith("application/json")
        assert (await response.json())["ok"] is True


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": "1.1"}, "invalid_client_id"),
        ({"client_secret": "wrong"}, "bad_client_secret"),
        ({"code": "made-up"}, "invalid_code"),
        ({"redirect_uri": "https://elsewhere.example/cb"}, "bad_redirect_uri"),
        ({"grant_type": "refresh_token"}, "invalid_grant_type"),
    ],
)
async def test_exchange_errors(oidc: FakeSlackOIDC, change: dict[str, str], error: str) -> None:
    args: dict[str, Any] = {"client_id": oidc.client_id, "client_secret": oidc.client_secret,
                            "code": await _code(oidc), "redirect_uri": REDIRECT}  # fmt: skip
    args.update(change)
    client = AsyncWebClient(base_url=oidc.api_url)
    with pytest.raises(SlackApiError) as caught:
        await client.openid_connect_token(**args)
    assert caught.value.response.status_code == 200
    assert caught.value.response.data == {"ok": False, "error": error}


async def test_a_code_works_once(oidc: FakeSlackOIDC) -> None:
    code = await _code(oidc)
    client = AsyncWebClient(base_url=oidc.api_url)
    args = {"client_id": oidc.client_id, "client_secret": oidc.client_secret, "code": code,
            "redirect_uri": REDIRECT}  # fmt: skip
    await client.openid_connect_token(**args)
    with pytest.raises(SlackApiError) as caught:
        await client.openid_connect_token(**args)
    assert caught.value.response["error"] == "invalid_code"


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        (b'{"code": "x"}', {"Content-Type": "application/json"}, "invalid_post_type"),
        (b"code=x", {"Content-Type": ""}, "missing_post_type"),
        (
            b"code=%zz&&=",
            {"Content-Type": "application/x-www-form-urlencoded"},
            "invalid_form_data",
        ),
    ],
)
async def test_only_form_bodies(
    oidc: FakeSlackOIDC, body: bytes, headers: dict[str, str], error: str
) -> None:
    async with aiohttp.ClientSession(skip_auto_headers=["Content-Type"]) as http:
        sent = {k: v for k, v in headers.items() if v}
        response = await http.post(f"{oidc.api_url}openid.connect.token", data=body, headers=sent)
        assert response.status == 200
        assert await response.json() == {"ok": False, "error": error}
        wrong_verb = await http.get(f"{oidc.api_url}openid.connect.token")
        assert wrong_verb.status == 405


@pytest.mark.parametrize(
    "change",
    [{"response_type": "token"}, {"scope": "openid admin"}, {"scope": "profile"},
     {"client_id": "9.9"}, {"nonce": ""}, {"state": ""}, {"prompt": "none"},
     {"redirect_uri": "https://elsewhere.example/cb"}, {"team": "T0OTHER"}],
)  # fmt: skip
async def test_authorize_refuses_a_wrong_request(
    oidc: FakeSlackOIDC, change: dict[str, str]
) -> None:
    async with aiohttp.ClientSession() as http:
        url = (
            f"{oidc.origin}/openid/connect/authorize?{urlencode(_authorize_query(oidc, **change))}"
        )
        response = await http.get(url, allow_redirects=False)
        assert response.status == 400


async def test_authorize_can_be_denied(oidc: FakeSlackOIDC) -> None:
    oidc.deny_next = True
    async with aiohttp.ClientSession() as http:
        url = f"{oidc.origin}/openid/connect/authorize?{urlencode(_authorize_query(oidc))}"
        response = await http.get(url, allow_redirects=False)
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        assert query == {"error": ["access_denied"], "state": ["st-1"]}
