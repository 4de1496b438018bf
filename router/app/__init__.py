"""Use cases, one transaction each, and the ports they need (store, adapters, clock)."""
