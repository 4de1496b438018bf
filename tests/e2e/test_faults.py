"""The fault runs of ``bench.faults``, small: real router processes, real PostgreSQL
(only the router's own sessions are terminated, found by a per-run application_name),
a loopback proxy that refuses connections, a tmpfs that fills up. They assert counts;
``make soak`` runs them long and prints the times (``python -m bench.faults``).
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from bench import faults
from bench.intake import crash_check
from tests.conftest import postgres_url, skip_unless_ci


@pytest.fixture
def postgres() -> None:
    try:
        psycopg.connect(postgres_url(), connect_timeout=2).close()
    except psycopg.Error:
        skip_unless_ci(f"no PostgreSQL at {postgres_url()}")


def test_sigkill_under_load_loses_no_acknowledged_alert(tmp_path: Path) -> None:
    for trial in range(3):
        home = tmp_path / f"trial-{trial}"
        home.mkdir()
        crash = crash_check(home, 600, 16, 0.3)
        assert crash.result.killed_at is not None
        assert crash.acknowledged > 0
        assert crash.missing == 0, f"trial {trial}: {crash.missing} acknowledged alerts lost"


async def test_killed_sessions_page_each_group_once_without_waiting_for_a_lease(
    tmp_path: Path, postgres: None
) -> None:
    result = await faults.pg_kills(tmp_path, groups=6, kill_for=3.0)
    assert result.kills > 0  # the router's sessions were really terminated
    # waited for at most 90 s in all, 60 s past the kills: a page held back by a lease
    # (60 s) would come after the wait; all came, once each
    assert result.pages.missing == 0
    assert result.pages.doubles == 0
    assert sum(result.pages.per_group.values()) == 6


async def test_a_database_that_refuses_connections_gets_503s_and_heals(
    tmp_path: Path, postgres: None
) -> None:
    result = await faults.pg_outage(tmp_path, kill_for=1.0, refuse_for=3.0, tail=3.0)
    statuses = result.load.statuses
    assert statuses[503] > 0 and statuses[200] > 0
    assert set(statuses) <= {200, 503}  # never a 500
    assert not result.load.errors  # no request went unanswered within Alertmanager's 10 s
    assert result.ready_during and 200 not in result.ready_during  # not ready meanwhile
    assert result.ready_again_after is not None  # ready again, without a restart
    assert result.accepted_again_after is not None
    assert result.acknowledged > 0 and result.missing == 0


async def test_a_full_disk_gets_503s_and_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        skip_unless_ci("mounting a tmpfs needs root")
    result = await faults.disk_full(tmp_path, full_for=2.0)
    assert result.statuses_while_full[503] > 0
    assert result.load.statuses[500] == 0
    assert result.accepted_again_after is not None  # once there is room again
    assert result.acknowledged > 0 and result.missing == 0
