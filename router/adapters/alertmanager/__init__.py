"""Alertmanager: its webhook (payload version 4) into ``Alert`` values."""
