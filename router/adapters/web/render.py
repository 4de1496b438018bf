"""Templates: plain Jinja2 from the package, autoescaped, strict about missing names.

StrictUndefined makes a misspelt field an error in the tests instead of an empty cell
on a page someone relies on during an incident.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from router.adapters.web import humane

_PACKAGE = "router.adapters.web"

SEVERITY_ORDER = ("critical", "high", "medium", "low")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=humane.when,
        iso=humane.iso,
        duration=humane.duration,
        svg=lambda text: Markup(text),  # charts.py escapes every text it draws
    )
    env.globals.update(ago=humane.ago, severity_order=SEVERITY_ORDER)
    return env


def render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return env.get_template(name).render(context)


class Stylesheet:
    """The console's one CSS file, served by the console itself (no CDN)."""

    def __init__(self) -> None:
        self.body = resources.files(_PACKAGE).joinpath("static/console.css").read_bytes()
        self.version = hashlib.sha256(self.body).hexdigest()[:12]
