"""Loopback fakes of the external APIs the router calls (Slack Web API, GitHub REST)."""
