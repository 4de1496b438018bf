"""Adapters: one folder per outside system, each carrying out jobs or feeding the core."""
