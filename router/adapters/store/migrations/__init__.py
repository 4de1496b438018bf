"""Versioned schema migrations, one folder per engine, applied in file-name order."""

from __future__ import annotations

from importlib import resources


def migrations(engine: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration of ``engine``, oldest first."""
    folder = resources.files(__package__).joinpath(engine)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)
