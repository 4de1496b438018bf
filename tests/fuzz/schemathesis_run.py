"""schemathesis against a live router, with real auth (``schemathesis_hooks``).

    python -m tests.fuzz.schemathesis_run [--max-examples N] [--seed N]

Checks that nothing answers 5xx and that every answer (status code, content type,
headers, body) is one the OpenAPI description documents. Exits as schemathesis does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fuzz.live import live_router

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
ROOT = Path(__file__).parents[2]


def schemathesis_command() -> list[str]:
    beside = Path(sys.executable).with_name("schemathesis")  # in the same virtualenv
    found = str(beside) if beside.exists() else shutil.which("schemathesis")
    if found is None:
        raise RuntimeError("schemathesis is not installed (pip install -e '.[dev]')")
    return [found]


def run(max_examples: int, seed: int, workdir: Path | None = None) -> tuple[int, str]:
    """(schemathesis' exit code, its output and the router's own findings)."""
    with (
        tempfile.TemporaryDirectory(prefix="router-schemathesis-") as scratch,
        live_router(workdir or Path(scratch)) as live,
    ):
        env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.fuzz.schemathesis_hooks")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        command = [
            *schemathesis_command(), "--no-color", "run", f"{live.url}/openapi.json",
            "--checks", CHECKS, "--max-examples", str(max_examples), "--seed", str(seed),
            "--generation-with-security-parameters", "false",
            "--generation-database", "none", "--suppress-health-check", "all",
            "--workers", "2",
        ]  # fmt: skip
        # In the scratch directory: schemathesis keeps a cache of its own where it runs.
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=live.log.parent)
        problems = live.log_problems()
        output = done.stdout + done.stderr
        if problems:
            output += "\nunhandled errors in the router's log:\n" + "\n".join(problems)
        code = done.returncode or (1 if problems or not live.alive() else 0)
        return code, output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.schemathesis_run")
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    code, output = run(args.max_examples, args.seed)
    print(output)
    return code


if __name__ == "__main__":
    sys.exit(main())
