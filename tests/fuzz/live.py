"""A real ``router serve`` process to fuzz: its own config, port and store, secrets
of its own, Slack messages on its stdout (no bot token), its log in a file.

The config has an on-call schedule, so alerts open pages and buttons decide them:
the fuzzers reach the paging lifecycle, not only the parsers.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

AM_TOKEN = "fuzz-alertmanager-token"
SIGNING_SECRET = "fuzz-slack-signing-secret"
PD_SECRET = "fuzz-pagerduty-secret"
PRIMARY, SECONDARY, LEAD, RESPONDER = "U0FUZZPRI1", "U0FUZZSEC2", "U0FUZZLEAD", "U0FUZZRESP"

_PAGE_KEY = re.compile(r"router press page\.declare (p[0-9a-f]{16})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config_document(port: int, store_url: str, oncall: bool = True) -> dict[str, object]:
    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    document: dict[str, object] = {
        "server": {"host": "127.0.0.1", "port": port, "shutdown_grace_seconds": 2},
        "store": {"url": store_url},
        "slack": {"incident_channel": "C0FUZZINCS", "operator_channel": "C0FUZZOPS0"},
        "paging": {"ack_timeout_seconds": 300, "storm_limit": 50},
        "oncall": {
            "rotations": {
                "eng-primary": {"members": [PRIMARY], **rotation},
                "eng-secondary": {"members": [SECONDARY], **rotation},
                "leadership": {"members": [LEAD], **rotation},
            },
            "responders": [RESPONDER],
        },
    }
    if not oncall:
        del document["oncall"]
    return document


@dataclass
class Live:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    stdout: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def page_keys(self) -> list[str]:
        """Keys of the pages the router printed (its console stand-in for Slack)."""
        found = dict.fromkeys(m.group(1) for line in self.stdout for m in _PAGE_KEY.finditer(line))
        return list(found)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_problems(self) -> list[str]:
        """Lines of the router's log that mean a bug: unhandled errors, tracebacks."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [
            line
            for line in text.splitlines()
            if "unhandled error" in line or line.startswith("Traceback")
        ]


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"router exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"router not ready within {seconds}s:\n{log.read_text()}")


@contextmanager
def live_router(
    workdir: Path, store_url: str | None = None, *, oncall: bool = True
) -> Iterator[Live]:
    """``router serve`` on a free port of 127.0.0.1, stopped (SIGTERM) on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "router.yaml"
    url = store_url or f"sqlite:///{workdir}/router.db"
    config.write_text(json.dumps(config_document(port, url, oncall)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "SLACK_"))}
    for name in ("GITHUB_TOKEN", "PAGERDUTY_ROUTING_KEY", "ALERTMANAGER_TOKEN"):
        env.pop(name, None)
    env |= {
        "ALERTMANAGER_TOKEN": AM_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PAGERDUTY_WEBHOOK_SECRET": PD_SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    log = workdir / "router.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "router", "--config", str(config), "serve"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    live = Live("127.0.0.1", port, process, log)

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            live.stdout.append(line.decode(errors="replace"))

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        _wait_ready(live.url, process, log, seconds=30)
        yield live
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=5)
