"""Mutation testing of the pure core: is every rule held by a test that fails without it?

``make mutation`` runs this. It runs mutmut (configured in pyproject.toml: the core's
modules against their unit tests), then prints the score per module and every mutant
that survived, with its place in the source and the change it made.

The score counts untested code as surviving: a mutant no unit test reaches is a rule
nobody holds. Mutants that cannot change behaviour (equivalent ones) are listed one a
line in ``tests/mutation-equivalent.txt``: the function, the line before and after, and
the reason (keyed by the change, not by mutmut's number, which shifts whenever the
function changes). They leave the count, and the list is checked here: an entry that
no longer matches a surviving mutant fails the run, so the list cannot grow stale.

    python -m tools.mutation                  # all core modules
    python -m tools.mutation --module duties  # one module (while writing its tests)
    python -m tools.mutation --report         # print the last results, run nothing

Exits 1 when the core's score is below ``--min`` (90 by default).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tests" / "mutation-equivalent.txt"
CLASS_SEPARATOR = "ǁ"

# mutmut's exit codes of one mutant's test run (mutmut/stats.py)
KILLED = {1, 3, 24, -24, 152, 255, 36, 37}  # failed, pytest error, timeout, type check
NO_TESTS = {5, 33}


@dataclass
class Module:
    path: str  # router/core/lifecycle.py
    killed: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    @property
    def counted(self) -> int:
        """Mutants that count: all but the listed equivalent ones."""
        return len(self.killed) + len(self.survived) + len(self.untested)

    def score(self) -> float:
        return 100.0 * len(self.killed) / self.counted if self.counted else 100.0


def core_paths() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


Key = tuple[str, str, str]  # (the mutated function, the line before, the line after)


def function_of(name: str) -> str:
    """``router.core.lifecycle.x__pd_job`` of ``router.core.lifecycle.x__pd_job__mutmut_18``."""
    return name.partition("__mutmut_")[0]


def equivalents() -> dict[Key, str]:
    """(function, old line, new line) -> why that mutant cannot change behaviour. Keyed by
    the change, not mutmut's number, which shifts when the function changes."""
    found: dict[Key, str] = {}
    if not EQUIVALENT.exists():
        return found
    for number, line in enumerate(EQUIVALENT.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split(" | ")]
        if len(parts) != 4 or not parts[3]:
            sys.exit(f"{EQUIVALENT.name}:{number}: want `function | old | new | why`")
        found[(parts[0], parts[1], parts[2])] = parts[3]
    return found


def load(paths: list[str], listed: dict[Key, str]) -> list[Module]:
    functions = {key[0] for key in listed}
    modules = []
    for path in paths:
        module = Module(path)
        meta = ROOT / "mutants" / (path + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        for name, code in sorted(codes.items(), key=lambda kv: _natural(kv[0])):
            if code in KILLED:
                module.killed.append(name)
            elif code == 0 and function_of(name) in functions and _key(path, name) in listed:
                module.equivalent.append(name)
            elif code == 0:
                module.survived.append(name)
            elif code in NO_TESTS:
                module.untested.append(name)
            else:
                module.unchecked.append(name)
        modules.append(module)
    return modules


def _key(path: str, name: str) -> Key:
    removed, added, _ = change(path, name)
    return function_of(name), removed, added


def _natural(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition("__mutmut_")
    return base, int(number) if number.isdigit() else 0


def _function_lines(path: str) -> dict[tuple[str | None, str], int]:
    """(class, function) -> the line its ``def`` is on."""
    tree = ast.parse((ROOT / path).read_text())
    lines: dict[tuple[str | None, str], int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines[(None, node.name)] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines[(node.name, item.name)] = item.lineno
    return lines


def _where(name: str) -> tuple[str | None, str]:
    tail = name.partition("__mutmut_")[0].rpartition(".")[2]
    if CLASS_SEPARATOR in tail:
        _, cls, function = tail.split(CLASS_SEPARATOR)
        return cls, function
    return None, tail.removeprefix("x_")


def change(path: str, name: str) -> tuple[str, str, int | None]:
    """(the line as it was, the line as the mutant has it, its line in the file) for the
    mutant's first changed line; ("", "", None) when mutmut cannot show it."""
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        diff = get_diff_for_mutant(name, path=path).splitlines()
    except Exception:  # mutmut's internals: degrade to the name alone
        return "", "", None
    start = _function_lines(path).get(_where(name))
    line, removed, added, original = None, "", "", 0
    for text in diff[2:]:  # after the ---/+++ header
        hunk = re.match(r"@@ -(\d+)", text)
        if hunk:
            original = int(hunk.group(1)) - 1  # lines of the function before this one
        elif text.startswith("+"):
            added = added or text[1:].strip()
        else:
            if text.startswith("-") and line is None:
                removed, line = text[1:].strip(), original
            original += 1
    at = start + line if start is not None and line is not None else None
    return removed, added, at


def describe(module: Module, name: str) -> str:
    """``path:line  - old  + new`` for one mutant (its first changed line)."""
    removed, added, line = change(module.path, name)
    at = f"{module.path}:{line}" if line is not None else module.path
    return f"{at}  - {removed}  + {added}"


def report(modules: list[Module], listed: dict[Key, str], minimum: float) -> int:
    width = max(len(m.name) for m in modules)
    print()
    print(f"{'module'.ljust(width)}  killed / counted   score  (survived, untested, equivalent)")
    for m in modules:
        print(
            f"{m.name.ljust(width)}  {len(m.killed):6} / {m.counted:<7} {m.score():5.1f}%"
            f"  ({len(m.survived)}, {len(m.untested)}, {len(m.equivalent)})"
        )
    killed = sum(len(m.killed) for m in modules)
    counted = sum(m.counted for m in modules)
    score = 100.0 * killed / counted if counted else 0.0
    core = "core".ljust(width)
    print(f"{core}  {killed:6} / {counted:<7} {score:5.1f}%  (minimum {minimum:.0f}%)")
    for m in modules:
        for title, names in (("survived", m.survived), ("no unit test reaches", m.untested)):
            if names:
                print(f"\n{m.name}: {title} ({len(names)})")
                for name in names:
                    print(f"  {name}\n      {describe(m, name)}")
        if m.unchecked:
            print(f"\n{m.name}: not checked yet ({len(m.unchecked)}): run without --report")
    present = {_key(m.path, n) for m in modules for n in m.equivalent}
    ran = {m.name for m in modules if m.counted}
    stale = [k for k in listed if k not in present and k[0].rpartition(".")[0] in ran]
    for key in stale:
        print(f"\n{EQUIVALENT.name}: no surviving mutant of {key[0]} changes")
        print(f"    {key[1]}\n    to {key[2]}\n  any more: remove the line (or update it)")
    return 0 if score >= minimum and not stale else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", action="append", help="a core module's name, e.g. duties")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "2")))
    parser.add_argument("--min", type=float, default=90.0)
    parser.add_argument("--report", action="store_true", help="print the last results only")
    args = parser.parse_args()
    os.chdir(ROOT)
    paths = core_paths()
    if args.module:
        chosen = [p for p in paths if Path(p).stem in args.module]
        if len(chosen) != len(args.module):
            sys.exit(f"core modules are: {', '.join(Path(p).stem for p in paths)}")
        paths = chosen
    if not args.report:
        mutmut = Path(sys.executable).parent / "mutmut"
        names = [p.removesuffix(".py").replace("/", ".") + ".*" for p in paths]
        globs = names if args.module else []
        command = [str(mutmut), "run", "--max-children", str(args.jobs), *globs]
        # mutmut's progress line is rewritten in place: keep only its summary
        run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0:
            print(run.stdout[-4000:])
            return run.returncode
        lines = run.stdout.replace("\r", "\n").splitlines()
        print("\n".join(line for line in lines if "mutations/second" in line))
    listed = equivalents()
    return report(load(paths, listed), listed, args.min)


if __name__ == "__main__":
    sys.exit(main())
