"""Slack adapters: ``client.SlackAdapter`` talks to the Web API through slack_sdk;
``console.ConsoleAdapter`` prints the same jobs to a terminal when no bot token is set.

Both carry out the Slack job kinds (``SLACK_DM``, ``SLACK_POST``, ``SLACK_UPDATE``,
``SLACK_RESPOND``) and return ``{"channel", "ts"}`` so later jobs can thread under or
edit what an earlier job posted (``router.effects`` has the contract).
"""
