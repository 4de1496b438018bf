"""Base model for configuration: unknown keys are errors, not silently ignored.

A misspelt key in an on-call schedule must fail at load, not page nobody at 3 a.m.
"""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
