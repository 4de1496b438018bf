"""Slack, in and out.

Out: ``client.SlackAdapter`` talks to the Web API through slack_sdk; ``console.ConsoleAdapter``
prints the same jobs to a terminal when no bot token is set. Both carry out the Slack job
kinds (``SLACK_DM``, ``SLACK_POST``, ``SLACK_UPDATE``, ``SLACK_RESPOND``, and an incident
channel's ``SLACK_CHANNEL``, ``SLACK_INVITE``, ``SLACK_TOPIC``, ``SLACK_BOOKMARK``,
``SLACK_ARCHIVE``) and return ``{"channel", "ts"}`` (a channel: ``{"channel", "name"}``)
so later jobs can thread under, post in or edit what an earlier job made
(``router.app.effects`` has the contract). ``directory``: people's names and e-mails.
``channels``: conversations.create/invite/setTopic/archive and bookmarks, as plain
functions taking an ``AsyncWebClient``. ``views``: views.open/update, called from a
handler right after verifying (a trigger_id lives 3 seconds); ``opener``: Slack's or the
console's; ``forms``: opening the forms and applying their submissions.

In: ``inbound_commands`` (the ``/incident`` slash command) and ``inbound_interactions``
(buttons, selects, modals) verify with ``signing`` and parse with ``inbound_payload``.
``socket_mode``: button presses, slash commands and modal submissions over a WebSocket for
routers the internet cannot reach; ``socket`` hands them to the same handlers.
``scopes``: what the app asks for and why; ``missing_scope`` named.
"""
