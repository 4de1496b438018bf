"""Requests aiohttp's HTTP parser refuses get the router's JSON error too.

A request whose HTTP itself is malformed (a repeated ``Content-Type``, a broken
chunked body, a header over 8 KiB) never reaches a route or the middleware: aiohttp
answers it in ``RequestHandler.handle_error`` with a plain-text 400 and logs a
traceback at ERROR. These are the sender's faults, so they get the documented JSON
error and one line at INFO, like any other refusal; a 5xx is left to aiohttp. So is
the traceback aiohttp logs when, after the handler has answered (``read_body``: 400),
it drains a body whose ``Content-Encoding`` does not decode.

Built on aiohttp's server internals (``Server._kwargs``), which
tests/flows/test_hostile_input.py exercises through a real socket.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest

from router.adapters.http.errors import problem_response

log = logging.getLogger(__name__)


class _JsonErrors(RequestHandler):
    __slots__ = ()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, RequestPayloadError | BadHttpMessage):
            log.info("a request body did not decode: %s", str(exc).splitlines()[-1][:200])
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        reason = (message or "malformed HTTP request")[:200]
        log.info("refused a malformed HTTP request (%d): %s", status, reason)
        response = problem_response(status, "malformed_http", f"malformed HTTP request: {reason}")
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrors(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections answer malformed HTTP with the JSON error."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        kwargs: dict[str, Any] = server._kwargs
        return _Server(
            server.request_handler, request_factory=server.request_factory, loop=server._loop,
            **kwargs,
        )  # fmt: skip
