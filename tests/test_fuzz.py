"""The fuzzers, small, against a real ``router serve``: mutated real requests on both
store engines, and schemathesis from the OpenAPI description. ``make fuzz`` runs
them big. Zero 5xx, and every answer the documented one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import postgres_url, skip_unless_ci
from tests.fuzz import mutate, schemathesis_run
from tests.fuzz.live import live_router


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
