"""The name of an incident's Slack channel, from a template (default ``inc-{number}-{slug}``).

Slack takes a channel name of lowercase letters, digits, ``-`` and ``_``, at most 80
characters (``conversations.create`` answers ``invalid_name_specials``,
``invalid_name_maxlength`` or ``invalid_name_punctuation`` otherwise), so a name is made
to fit: accents and ligatures are folded to ASCII (``Zürich`` -> ``zurich``, ``ß`` ->
``ss``), everything else becomes a hyphen, runs of hyphens collapse, and a long title is
cut at a word. A title with nothing foldable (another script, only emoji) leaves just
the number: the number is what makes the name unique.

Template fields: ``{number}``, ``{slug}`` (the title), ``{severity}``, ``{date}``
(``YYYYMMDD`` of the declaration). A confidential incident's name never carries its
title: a channel's name is seen where its messages are not.

When Slack answers ``name_taken`` the next candidate is tried: ``name``, ``name-2``,
``name-3``, ... each still within 80 characters (``candidates``).
"""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import datetime

from router.core.severity import Severity

DEFAULT_TEMPLATE = "inc-{number}-{slug}"
MAX_LENGTH = 80
FIELDS = frozenset({"number", "slug", "severity", "date"})
# What a template may take before the title: the rest is left for a slug and a suffix.
_MAX_FIXED = 60
# What NFKD does not decompose, folded the way a reader of that language would.
_FOLD = str.maketrans(
    {
        "ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o",
        "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ð": "d", "Ð": "d",
        "þ": "th", "Þ": "th", "ı": "i", "ħ": "h", "Ħ": "h",
    }
)  # fmt: skip
_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")
_HYPHENS = re.compile(r"-{2,}")
_FALLBACK = "incident"


class TemplateError(ValueError):
    """The name template cannot make channel names; the message says why."""


def slugify(text: str) -> str:
    """``text`` in Slack's channel-name alphabet, without a length limit."""
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD))
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c) and c.isascii())
    return _clean(ascii_only)


def _clean(text: str) -> str:
    text = _NOT_ALLOWED.sub("-", text.lower())
    return _HYPHENS.sub("-", text).strip("-")


def _parts(template: str) -> list[tuple[str, str | None, str]]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"not a valid template: {exc}") from None
    parts = []
    for literal, field, spec, conversion in parsed:
        if field is not None:
            if field == "" or field.isdigit():
                raise TemplateError("positional fields ({}) are not allowed; name one")
            if field not in FIELDS:
                known = ", ".join("{" + f + "}" for f in sorted(FIELDS))
                raise TemplateError(f"unknown field {{{field}}}; known: {known}")
            if conversion:
                raise TemplateError(f"{{{field}!{conversion}}}: conversions are not allowed")
        parts.append((literal, field, spec or ""))
    return parts


def check_template(template: str) -> None:
    """Raise ``TemplateError`` unless ``template`` makes valid, distinct channel names."""
    parts = _parts(template)
    used = {field for _, field, _ in parts if field}
    if not used & {"number", "slug"}:
        raise TemplateError("the template needs {number} or {slug} to tell incidents apart")
    fixed = _render(parts, number=1, slug="", severity=Severity.CRITICAL, date="20240101")
    if len(fixed) > _MAX_FIXED:
        raise TemplateError(
            f"too long: {len(fixed)} characters before the title; at most {_MAX_FIXED}, "
            f"so the name stays within Slack's {MAX_LENGTH}"
        )


def _render(
    parts: list[tuple[str, str | None, str]],
    *,
    number: int,
    slug: str,
    severity: Severity | None,
    date: str | None,
) -> str:
    out = []
    for literal, field, spec in parts:
        out.append(_clean(literal) and f"-{_clean(literal)}-")
        if field == "number":
            out.append(f"-{format(number, spec)}-")
        elif field == "slug":
            out.append(f"-{slug}-")
        elif field == "severity":
            if severity is None:
                raise ValueError("the channel name template uses {severity}: give severity")
            out.append(f"-{severity.value}-")
        elif field == "date":
            if date is None:
                raise ValueError("the channel name template uses {date}: give declared_at")
            out.append(f"-{date}-")
    return _clean("".join(out))


def channel_name(
    template: str,
    *,
    number: int,
    title: str,
    severity: Severity | None = None,
    declared_at: datetime | None = None,
    confidential: bool = False,
) -> str:
    """The channel name for an incident: Slack's rules applied, at most 80 characters."""
    parts = _parts(template)
    date = declared_at.strftime("%Y%m%d") if declared_at is not None else None
    words = [] if confidential else [w for w in slugify(title).split("-") if w]

    def build(slug: str) -> str:
        return _render(parts, number=number, slug=slug, severity=severity, date=date)

    made = build("-".join(words))
    while len(made) > MAX_LENGTH and len(words) > 1:
        words.pop()  # cut at a word
        made = build("-".join(words))
    if len(made) > MAX_LENGTH:  # one word longer than the room left: cut it hard
        room = MAX_LENGTH - len(build(""))
        made = build(words[0][: max(0, room - 1)])
        made = made[:MAX_LENGTH].rstrip("-_")
    return made if any(c.isalnum() for c in made) else _FALLBACK


def with_suffix(name: str, n: int) -> str:
    """``name`` with ``-n`` (n >= 2), cut so the whole stays within 80 characters."""
    if n < 2:
        raise ValueError("suffixes start at 2: the first try is the name itself")
    suffix = f"-{n}"
    base = name[: MAX_LENGTH - len(suffix)].rstrip("-_")
    return (base if any(c.isalnum() for c in base) else _FALLBACK) + suffix


def candidates(name: str, tries: int) -> list[str]:
    """The names to try in turn while Slack answers ``name_taken``."""
    return [name] + [with_suffix(name, n) for n in range(2, tries + 1)]
