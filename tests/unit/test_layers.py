"""The layers, as the imports show them (read with ``ast``, nothing is imported).

``router/core`` is the pure domain: it imports no use case, no adapter, no wiring and
no library that talks to the outside world. ``router/app`` (use cases and their ports)
imports no adapter. Adapters and the wiring (``router/adapters``, ``router.cli``,
``router.config``, ``router.metrics``) may import anything below them.

Known exceptions are listed in ``ALLOWED`` with the reason each is still there; the
list only shrinks (a stale entry fails too).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "router"

# Libraries that do I/O or belong to one outside system.
OUTSIDE = ("aiohttp", "slack_sdk", "github", "psycopg", "prometheus_client", "requests",
           "googleapiclient", "sqlite3", "jinja2", "uvloop")  # fmt: skip

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "router.core": (
        "router.app",
        "router.adapters",
        "router.config",
        "router.metrics",
        "router.cli",
        "router.logs",
        *OUTSIDE,
    ),
    "router.app": ("router.adapters", "router.cli", *OUTSIDE),
}

# (importing module, imported module prefix): why it is still allowed.
ALLOWED: dict[tuple[str, str], str] = {}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, at any depth (TYPE_CHECKING and function bodies too),
    with ``from a import b`` counted as both ``a`` and ``a.b`` (b may be a module)."""
    found: set[str] = set()
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package.pop()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations() -> set[tuple[str, str]]:
    """(module, forbidden prefix) for each layer rule a module breaks."""
    found: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        for layer, forbidden in FORBIDDEN.items():
            if not _within(module, layer):
                continue
            for imported in imports(path):
                for prefix in forbidden:
                    if _within(imported, prefix):
                        found.add((module, _allowed_prefix(module, imported) or prefix))
    return found


def _allowed_prefix(module: str, imported: str) -> str | None:
    for allowed_module, prefix in ALLOWED:
        if allowed_module == module and _within(imported, prefix):
            return prefix
    return None


def test_the_core_and_the_use_cases_import_nothing_above_them() -> None:
    broken = sorted(violations() - ALLOWED.keys())
    assert broken == [], "layer rules broken (module, forbidden import): " + repr(broken)


def test_every_allowed_exception_is_still_needed() -> None:
    stale = sorted(ALLOWED.keys() - violations())
    assert stale == [], "no longer needed, remove from ALLOWED: " + repr(stale)


def test_the_scan_sees_a_forbidden_import(tmp_path: Path) -> None:
    # The rule has teeth: an import of an adapter, however written, is found.
    source = tmp_path / "router" / "core" / "sample.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from router.adapters.store.sql import SqlTx\n"
        "def f():\n"
        "    import aiohttp\n"
        "from ..app import units\n"
    )
    found = imports(source, root=tmp_path)
    assert {"router.adapters.store.sql.SqlTx", "aiohttp", "router.app.units"} <= found


def test_the_layers_are_folders() -> None:
    for layer in ("core", "app", "adapters"):
        assert (PACKAGE / layer / "__init__.py").is_file()
    flat = sorted(p.stem for p in PACKAGE.glob("*.py"))
    # Only the wiring and the process's own concerns stay at the top.
    assert set(flat) <= {"__init__", "__main__", "bootstrap", "cli", "config", "logs", "metrics"}
