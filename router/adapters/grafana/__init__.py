"""Grafana alerting: its webhook contact point into ``Alert`` values."""
