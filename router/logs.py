"""Logging for the service: repeated lines are rate-limited, with a count.

When a part fails for a while (the database is gone, Slack answers 503), the same
warning would be written for every webhook and every retry: thousands of lines a
second that bury the first one, the one that says what went wrong. ``RepeatFilter``
lets the first line of a statement through, holds back the repeats for ``window``
seconds, and then writes the last of them once with ``(repeated N times in Ws)``.
Lines are "the same" when they come from the same statement (logger, level and
message template): the ids in them differ, the story does not. Only warnings and
above are limited; info lines are few by design.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_Key = tuple[str, int, str]


@dataclass
class _Run:
    started: float
    repeats: int = 0
    last: logging.LogRecord | None = None


class RepeatFilter(logging.Filter):
    """A handler filter; ``emit`` writes a summary (the handler's ``handle``)."""

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], object],
        window: float = 10.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._emit = emit
        self.window = window
        self.level = level
        self._clock = clock
        self._runs: dict[_Key, _Run] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # a summary being written passes unfiltered
        self._swept = clock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level or getattr(self._local, "summarising", False):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            due = self._take_due(now)
            run = self._runs.get(key)
            if run is not None and now - run.started < self.window:
                run.repeats += 1
                run.last = record
                keep = False
            else:
                if run is not None and run.repeats:
                    due.append(run)
                self._runs[key] = _Run(now)
                keep = True
        for ended in due:
            self._summarise(ended)
        return keep

    def flush(self) -> None:
        """Write the summaries still held (at shutdown)."""
        with self._lock:
            held = [run for run in self._runs.values() if run.repeats]
            self._runs.clear()
        for run in held:
            self._summarise(run)

    def _take_due(self, now: float) -> list[_Run]:
        """Runs whose window has ended, swept at most once a second."""
        if now - self._swept < 1.0:
            return []
        self._swept = now
        ended = [k for k, run in self._runs.items() if now - run.started >= self.window]
        return [run for run in (self._runs.pop(k) for k in ended) if run.repeats]

    def _summarise(self, run: _Run) -> None:
        record = run.last
        if record is None:
            return
        summary = logging.makeLogRecord(record.__dict__)
        summary.msg = f"{record.getMessage()} (repeated {run.repeats} times in {self.window:g}s)"
        summary.args = None
        summary.exc_info = summary.exc_text = None
        self._local.summarising = True
        try:
            self._emit(summary)
        finally:
            self._local.summarising = False


def limit_repeats(window: float = 10.0) -> list[RepeatFilter]:
    """Put a ``RepeatFilter`` on each of the root logger's handlers."""
    filters = []
    for handler in logging.getLogger().handlers:
        repeat = RepeatFilter(handler.handle, window)
        handler.addFilter(repeat)
        filters.append(repeat)
    return filters
