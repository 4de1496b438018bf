"""Slack, in and out: incident channels, modals, Socket Mode, and the scopes they need.

``channels``: conversations.create/invite/setTopic/archive and bookmarks, as plain
functions taking an ``AsyncWebClient``. ``views``: views.open/update, called from a
handler right after verifying (a trigger_id lives 3 seconds). ``socket_mode``: button
presses, slash commands and modal submissions over a WebSocket for routers the internet
cannot reach. ``scopes``: what the app asks for and why; ``missing_scope`` named.
Messages, DMs and response_url replies are still ``router.slack.client``.
"""
