"""Alert-to-incident router: pages eng-primary, declares incidents, runs the policy."""

__version__ = "0.1.0"
