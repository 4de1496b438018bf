"""Atlassian Statuspage: the public notice of an incident, only on an explicit confirm."""
