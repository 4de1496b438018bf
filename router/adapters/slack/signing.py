"""Slack request signatures: HMAC-SHA256 over ``v0:<ts>:<raw body>``, 5-minute window.

Verification uses slack_sdk's ``SignatureVerifier`` with our injected clock, so tests
can freeze time. ``sign`` is for the ``router press`` helper and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from router.app.clock import Clock


class _ClockAdapter(SlackClock):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


def verifier(secret: str, clock: Clock) -> SignatureVerifier:
    return SignatureVerifier(signing_secret=secret, clock=_ClockAdapter(clock))


TIMESTAMP = "X-Slack-Request-Timestamp"
SIGNATURE = "X-Slack-Signature"
# Unix seconds: ten digits until 2286. Anything else is not a timestamp Slack sends,
# and slack_sdk would raise on it (int() of "abc", or of 5,000 digits).
_TIMESTAMP_DIGITS = 12


def problem(
    verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]
) -> tuple[str, str] | None:
    """(header, why) when the request is not Slack's: missing, malformed, stale or
    wrong. None when it is."""
    timestamp = headers.get(TIMESTAMP)
    signature = headers.get(SIGNATURE)
    if not timestamp:
        return TIMESTAMP, f"missing {TIMESTAMP}"
    if not signature:
        return SIGNATURE, f"missing {SIGNATURE}"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _TIMESTAMP_DIGITS):
        return TIMESTAMP, f"{TIMESTAMP} is not a Unix time in seconds"
    if not signature.isascii():  # compare_digest refuses a str holding anything else
        return SIGNATURE, f"{SIGNATURE} is not v0=<hex>"
    try:
        body.decode("utf-8")  # slack_sdk decodes the body to sign it, and raises if it cannot
    except UnicodeDecodeError:
        return SIGNATURE, "the body is not UTF-8, so not signed by Slack"
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return SIGNATURE, f"stale (over 5 minutes) or wrong {SIGNATURE}"
    return None


def is_valid(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    return problem(verifier, body, headers) is None


def sign(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers Slack would send with ``body``."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None  # only None for an empty timestamp
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}
