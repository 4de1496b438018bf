"""Base model for configuration: unknown keys are errors, not silently ignored.

A misspelt key in an on-call schedule must fail at load, not page nobody at 3 a.m.
"""

from pydantic import BaseModel, ConfigDict, ValidationError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def describe_errors(exc: ValidationError, separator: str = "\n", unknown_key: bool = True) -> str:
    """Each error as ``where: what``, the field's dotted path first (a cross-field check
    names its own keys, so it has none). ``unknown_key``: a misspelt key says so,
    instead of pydantic's "Extra inputs are not permitted"."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if unknown_key and error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}: {message}" if where else message)
    return separator.join(lines)
