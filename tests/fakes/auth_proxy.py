"""A loopback stand-in for oauth2-proxy in front of the console.

Like oauth2-proxy with ``--pass-user-headers`` and ``--pass-host-header`` (its
defaults), it forwards every request to the upstream with the client's ``Host`` and
with ``X-Forwarded-User`` and ``X-Forwarded-Email`` set to the person signed in, after
removing any such headers the client sent itself. A browser can then
reach the console the way it would in a deployment::

    async with FakeAuthProxy(upstream="http://127.0.0.1:8080", email="jane@example.com"):
        ...  # the browser opens proxy.origin + "/ui/"

``email = None`` behaves like a proxy whose person is not signed in: 401 from the proxy
itself, nothing forwarded. ``/oauth2/sign_out`` records the sign-out and answers 200.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.loopback import LoopbackServer

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "content-length",
}  # fmt: skip
_IDENTITY = {"x-forwarded-user", "x-forwarded-email", "x-auth-request-user",
             "x-auth-request-email"}  # fmt: skip


class FakeAuthProxy(LoopbackServer):
    def __init__(self, upstream: str, email: str | None, user: str | None = None) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.email = email
        self.user = user or (email.split("@")[0] if email else None)
        self.forwarded: list[str] = []  # paths sent upstream
        self.sign_outs = 0
        self._http: aiohttp.ClientSession | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/oauth2/sign_out", self._sign_out)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        if self._http is not None:
            await self._http.close()

    async def _sign_out(self, request: web.Request) -> web.Response:
        self.sign_outs += 1
        return web.Response(text="signed out of the proxy", content_type="text/plain")

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self.email is None:
            return web.Response(status=401, text="sign in at the proxy", content_type="text/plain")
        if self._http is None:
            self._http = aiohttp.ClientSession(auto_decompress=False)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() not in _IDENTITY
        }
        headers["X-Forwarded-Email"] = self.email
        if self.user:
            headers["X-Forwarded-User"] = self.user
        self.forwarded.append(request.path_qs)
        async with self._http.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            passed = CIMultiDict(
                (k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            )
            return web.Response(status=upstream.status, body=body, headers=passed)

    def summary(self) -> str:
        return f"forwarded {len(self.forwarded)}: {self.forwarded[-5:]}"
