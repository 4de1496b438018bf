"""The web console for responders: incidents, timelines, pages and alert quality.

An aiohttp sub-application (``create_console``), mounted at ``/ui/``, behind Sign in
with Slack or a trusted sign-in proxy. It reads through one port
(:class:`~router.adapters.web.views.ConsoleSource`; the store's is
:class:`~router.adapters.web.source.StoreSource`) and renders server-side: Jinja2
templates, one stylesheet, SVG charts, no JavaScript.

The names below are imported on first use: ``router.config`` reads the ``web``
section's model from :mod:`router.adapters.web.config`, and loading the configuration
must not load aiohttp, Jinja2 and slack_sdk with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.adapters.web.access import AccessPolicy, ResponderAccess, Viewer
    from router.adapters.web.app import create_console
    from router.adapters.web.config import ConsoleSecrets, WebConfig
    from router.adapters.web.directory import SlackDirectory, StaticDirectory, UserDirectory
    from router.adapters.web.metrics import ConsoleMetrics
    from router.adapters.web.views import ConsoleSource

_WHERE = {
    "AccessPolicy": "access",
    "ResponderAccess": "access",
    "Viewer": "access",
    "create_console": "app",
    "ConsoleSecrets": "config",
    "WebConfig": "config",
    "SlackDirectory": "directory",
    "StaticDirectory": "directory",
    "UserDirectory": "directory",
    "ConsoleMetrics": "metrics",
    "ConsoleSource": "views",
}

__all__ = [
    "AccessPolicy",
    "ConsoleMetrics",
    "ConsoleSecrets",
    "ConsoleSource",
    "ResponderAccess",
    "SlackDirectory",
    "StaticDirectory",
    "UserDirectory",
    "Viewer",
    "WebConfig",
    "create_console",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
