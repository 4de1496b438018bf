"""The pure domain: the policy's rules, with no I/O and no clock of its own."""
