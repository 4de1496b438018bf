"""The web console for responders: incidents, timelines, pages and alert quality.

An aiohttp sub-application (``create_console``), mounted at ``/ui/``, behind Sign in
with Slack or a trusted sign-in proxy. It reads through one port
(:class:`~router.adapters.web.views.ConsoleSource`) and renders server-side: Jinja2
templates, one stylesheet, SVG charts, no JavaScript.
"""

from router.adapters.web.access import AccessPolicy, ResponderAccess, Viewer
from router.adapters.web.app import create_console
from router.adapters.web.config import ConsoleSecrets, WebConfig
from router.adapters.web.directory import SlackDirectory, StaticDirectory, UserDirectory
from router.adapters.web.metrics import ConsoleMetrics
from router.adapters.web.views import ConsoleSource

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
