"""HTTP adapters: thin handlers that verify, parse, hand over, and answer fast."""
