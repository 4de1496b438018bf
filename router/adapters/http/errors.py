"""Every refusal is a JSON body a person can act on, never an HTML page or a 500.

``{"error": "<code>", "message": "<what is wrong and what to do>", "field": "<path>"}``
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError
from pydantic_core import to_json

from router.adapters.payload import PayloadError, decode_json
from router.metrics import Metrics

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """An answer to refuse a request with; raised by handlers, rendered by middleware."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def problem_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers)


_AIOHTTP_CODES = {
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "this endpoint does not accept that method"),
    413: ("body_too_large", "request body is larger than server.max_body_bytes"),
}


def make_middleware(metrics: Metrics) -> Middleware:
    @functools.cache
    def children(endpoint: str, status: int) -> tuple[Any, Any]:
        # labels() validates and locks on every call; endpoints and codes are few.
        return (
            metrics.webhook_requests.labels(endpoint, str(status)),
            metrics.webhook_latency.labels(endpoint),
        )

    @web.middleware
    async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        endpoint = _endpoint(request)
        try:
            response = await handler(request)
        except Problem as p:
            metrics.rejections.labels(endpoint, p.code).inc()
            response = problem_response(p.status, p.code, p.message, p.field, p.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code, message = _AIOHTTP_CODES.get(exc.status, ("http_error", exc.reason))
            metrics.rejections.labels(endpoint, code).inc()
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            response = problem_response(exc.status, code, message, headers=headers)
        except Exception:
            # A bug, not bad input: bad input is refused with a 4xx where it is read.
            log.exception("unhandled error on %s", endpoint)
            metrics.http_errors.labels(endpoint).inc()
            response = problem_response(500, "internal", "internal error; see the router log")
        requests, latency = children(endpoint, response.status)
        requests.inc()
        latency.observe(time.perf_counter() - started)
        return response

    return errors_and_metrics


def _endpoint(request: web.Request) -> str:
    # The route's template, never the raw path: unmatched paths must not add series.
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


def check_json_request(request: web.Request, max_bytes: int) -> int | None:
    """Before reading the body: it must be JSON (415) and, by its length, fit (413).
    Returns the length it declares (None: chunked)."""
    if request.content_type != "application/json":
        raise Problem(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got {request.content_type or 'none'}",
        )
    return _check_length(request, max_bytes)


def _check_length(request: web.Request, max_bytes: int) -> int | None:
    length = request.content_length  # parsed from the header at each access
    if length is not None and length > max_bytes:
        raise Problem(413, "body_too_large", f"body is {length} bytes; limit {max_bytes}")
    return length


def json_ok(body: Any, status: int = 200) -> web.Response:
    # pydantic_core's encoder: several times faster than json.dumps per answer.
    return web.Response(body=to_json(body), status=status, content_type="application/json")


async def read_body(request: web.Request, max_bytes: int, *, checked: bool = False) -> bytes:
    """The body, refused with a 413 over ``max_bytes`` (``checked``: its declared length
    was already, by ``check_json_request``)."""
    if not checked:
        _check_length(request, max_bytes)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise Problem(
            413, "body_too_large", f"body is over the limit of {max_bytes} bytes"
        ) from exc
    except RequestPayloadError as exc:
        # aiohttp decodes Content-Encoding (gzip, deflate) as it reads: bytes that do
        # not decompress end up here. (A sender gone mid-body is not answered at all.)
        encoding = request.headers.get("Content-Encoding")
        if encoding:
            raise Problem(400, "malformed_body", f"body is not valid {encoding[:20]} data",
                          field="Content-Encoding") from exc  # fmt: skip
        raise Problem(400, "malformed_body", "the body could not be read") from exc


def parse_json(body: bytes) -> Any:
    """The decoded body, or a 400 saying where it is not JSON."""
    try:
        return decode_json(body)
    except PayloadError as exc:
        raise Problem(exc.status, "malformed_json", exc.message, field=exc.field) from exc
