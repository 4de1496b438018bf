"""Repeated log lines are rate-limited, with a count (router.logs)."""

from __future__ import annotations

import logging

from router.logs import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(
    msg: str, *args: object, level: int = logging.ERROR, name: str = "router.x"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_the_first_line_passes_repeats_are_held_then_counted() -> None:
    written: list[str] = []
    clock = Clock()
    repeat = RepeatFilter(lambda r: written.append(r.getMessage()), window=10, clock=clock)
    lines = [repeat.filter(record("store failed for job %s", i)) for i in range(500)]
    assert lines == [True] + [False] * 499  # job ids differ: the statement is the same
    assert written == []
    clock.now = 11
    assert repeat.filter(record("store failed for job %s", 500)) is True  # a new window
    assert written == ["store failed for job 499 (repeated 499 times in 10s)"]


def test_other_statements_and_info_lines_are_not_held() -> None:
    written: list[str] = []
    repeat = RepeatFilter(lambda r: written.append(r.getMessage()), clock=Clock())
    assert repeat.filter(record("a %s", 1)) and repeat.filter(record("b %s", 1))
    assert repeat.filter(record("a %s", 1, level=logging.WARNING))  # another level
    assert all(repeat.filter(record("listening", level=logging.INFO)) for _ in range(5))
    assert written == []


def test_held_repeats_are_written_when_their_window_ends_or_at_flush() -> None:
    written: list[str] = []
    clock = Clock()
    repeat = RepeatFilter(lambda r: written.append(r.getMessage()), window=5, clock=clock)
    for _ in range(3):
        repeat.filter(record("reconnect failed"))
        repeat.filter(record("slack down"))
    clock.now = 6
    repeat.filter(record("something else"))  # any line sweeps the ended windows
    assert sorted(written) == [
        "reconnect failed (repeated 2 times in 5s)",
        "slack down (repeated 2 times in 5s)",
    ]
    repeat.filter(record("again"))
    repeat.filter(record("again"))
    repeat.flush()
    assert written[-1] == "again (repeated 1 times in 5s)"


def test_summaries_reach_the_handler_through_the_filter(caplog: object) -> None:
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda r: seen.append(r.getMessage())  # type: ignore[method-assign]
    clock = Clock()
    handler.addFilter(RepeatFilter(handler.handle, window=1, clock=clock))
    logger = logging.getLogger("router.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for _ in range(4):
            logger.error("db gone: %s", "refused")
        clock.now = 2
        logger.error("db gone: %s", "refused")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert seen == [
        "db gone: refused",
        "db gone: refused (repeated 3 times in 1s)",
        "db gone: refused",
    ]
