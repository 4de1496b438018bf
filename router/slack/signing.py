"""Slack request signatures: HMAC-SHA256 over ``v0:<ts>:<raw body>``, 5-minute window.

Verification uses slack_sdk's ``SignatureVerifier`` with our injected clock, so tests
can freeze time. ``sign`` is for the ``router press`` helper and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from router.clock import Clock


class _ClockAdapter(SlackClock):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


def verifier(secret: str, clock: Clock) -> SignatureVerifier:
    return SignatureVerifier(signing_secret=secret, clock=_ClockAdapter(clock))


def is_valid(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return False
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


def sign(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers Slack would send with ``body``."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None  # only None for an empty timestamp
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}
