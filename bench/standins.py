"""Slack and PagerDuty stand-ins for the benchmarks, on a thread of their own.

They are the loopback fakes of the tests (``tests/fakes``), which follow the real
APIs strictly: the router's real slack_sdk and Events API clients talk to them. They
run on their own event loop in a background thread, so they keep answering while
the benchmark waits on ``wrk`` or sleeps; ``call`` runs a function on that loop to
read or change their state safely.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from tests.fakes.pagerduty_api import DEFAULT_ROUTING_KEY, FakePagerDuty
from tests.fakes.slack_api import FakeSlack

T = TypeVar("T")

SLACK_TOKEN = "xoxb-bench-token"
SIGNING_SECRET = "bench-signing-secret"
ROUTING_KEY = DEFAULT_ROUTING_KEY


class StandIns:
    """FakeSlack (knowing ``users``, with ``channels``) and FakePagerDuty."""

    def __init__(self, users: list[str], channels: list[str]) -> None:
        info = {u: {"name": u.lower(), "email": f"{u.lower()}@example.com", "tz": "UTC"}
                for u in users}  # fmt: skip
        self.slack = FakeSlack(SLACK_TOKEN, channels=tuple(channels), users=info)
        self.pagerduty = FakePagerDuty(routing_key=ROUTING_KEY)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stand-ins",
                                        daemon=True)  # fmt: skip

    def __enter__(self) -> StandIns:
        self._thread.start()
        self._run(self.slack.start())
        self._run(self.pagerduty.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.slack.stop())
        self._run(self.pagerduty.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    @property
    def env(self) -> dict[str, str]:
        """The router's secrets for these stand-ins."""
        return {
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        }

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the stand-ins' loop (their state is only touched there)."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the caller
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=60)

    def reset(self) -> None:
        """Forget every call and message (between runs)."""

        def clear() -> None:
            self.slack.calls.clear()
            self.slack.messages.clear()
            self.pagerduty.calls.clear()
            self.pagerduty.events.clear()
            self.pagerduty.alerts.clear()

        self.call(clear)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)
