"""Fuzzing the router as a stranger would: mutated real requests (``mutate``) and
schemathesis from the OpenAPI description (``schemathesis_hooks``), both against a
real ``router serve`` process (``live``)."""
