"""The fuzzers, small, against a real ``router serve``: mutated real requests on both
store engines, and schemathesis from the OpenAPI description. ``make fuzz`` runs
them big. Zero 5xx, and every answer the documented one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import postgres_url, skip_unless_ci
from tests.fuzz import mutate, raw, schemathesis_run
from tests.fuzz.live import AM_TOKEN, live_router


def test_mutated_requests_get_no_5xx_on_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = mutate.run(count=400, seed=2026, workdir=tmp_path)
    out = capsys.readouterr().out
    assert ok, out
    assert "5xx: 0   unanswered: 0" in out


@pytest.mark.postgres
def test_mutated_requests_get_no_5xx_on_postgres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    try:
        psycopg.connect(postgres_url(), connect_timeout=2).close()
    except psycopg.Error:
        skip_unless_ci(f"no PostgreSQL at {postgres_url()}")
    ok = mutate.run(count=250, seed=2027, store="postgres", workdir=tmp_path)
    out = capsys.readouterr().out
    assert ok, out


def test_schemathesis_finds_no_5xx_and_nothing_undocumented(tmp_path: Path) -> None:
    code, output = schemathesis_run.run(max_examples=25, seed=1, workdir=tmp_path)
    assert code == 0, output
    assert "No issues found" in output


def test_serve_warns_at_start_when_there_is_no_oncall_section(tmp_path: Path) -> None:
    with live_router(tmp_path, oncall=False) as live:
        assert live.alive()
    log = live.log.read_text()
    [line] = [line for line in log.splitlines() if "oncall:" in line]
    assert " WARNING " in line and "nobody is paged" in line


def test_serve_answers_malformed_http_with_the_json_error(tmp_path: Path) -> None:
    """aiohttp's own parser refuses these before any route; serve still answers JSON."""
    body = b'{"version": "4"}'
    cases = [
        [("Content-Type", "application/json"), ("Content-Type", "application/json")],
        [("Content-Type", "application/json"), ("Content-Encoding", "br")],
        [("Content-Type", "application/json"), ("X-Big", "x" * 9000)],
    ]
    with live_router(tmp_path) as live:

        async def send_all() -> list[raw.Answer]:
            answers = []
            for headers in cases:
                headers = [*headers, ("Authorization", f"Bearer {AM_TOKEN}")]
                request = raw.request_bytes("POST", "/webhooks/alertmanager", headers, body)
                answers.append(await raw.send(live.host, live.port, request))
            return answers

        answers = asyncio.run(send_all())
        assert live.log_problems() == []
    for answer in answers:
        assert answer.status == 400, answer
        assert json.loads(answer.body)["error"] == "malformed_http"
