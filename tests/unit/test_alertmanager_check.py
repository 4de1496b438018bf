"""``check_body`` accepts exactly what the Alertmanager message model accepts.

The webhook answers once ``check_body`` has validated the whole body; the inbox
processor later parses the stored bytes with the model (``parse_raw``). A body the
check accepts and the model refuses would be stored and fail forever; one the check
refuses and the model accepts would lose alerts. So each mutated body below goes
through both: the model path (``_message``, then the time rules, as ``check_body``
did before it had a schema of its own) and ``check_body``, and they must agree: the
same ``Checked`` (statuses in order), the same None, the same ``PayloadError``.

The bodies: real payloads from tests/fixtures and generated ones, each mutated at
every path of the document (a key deleted or renamed; a value set to null, a number,
a bool, a list, an object, an empty string, a string with NUL or a lone surrogate, a
huge or negative int, another case, a wrapped or deeply nested value), with keys
added or repeated, the version changed, then a few mutations at once, then the JSON
text itself cut and spliced. Seeded: every run tests the same bodies.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

from router.adapters.alertmanager import webhook as alertmanager
from router.adapters.payload import PayloadError
from router.core.alerts import AlertStatus, Source
from tests.conftest import am_alert, am_payload

FIXTURES = Path(__file__).parent.parent / "fixtures"
SEED = 20240501

Loc = tuple[str | int, ...]
Outcome = tuple[Any, ...]


def model_check(body: bytes) -> alertmanager.Checked | None:
    """``check_body`` as it was before its own schema: the model, then the time rules."""
    message = alertmanager._message(body)
    if message is None:
        return None
    for index, am in enumerate(message.alerts):
        if alertmanager._time(am.startsAt, index, "startsAt") is None:
            raise PayloadError("startsAt must be a real time", field=f"alerts.{index}.startsAt")
        if am.status is AlertStatus.RESOLVED:
            alertmanager._time(am.endsAt, index, "endsAt")
    return alertmanager.Checked(
        Source.ALERTMANAGER.value, tuple(am.status.value for am in message.alerts)
    )


def outcome(check: Callable[[bytes], alertmanager.Checked | None], body: bytes) -> Outcome:
    try:
        checked = check(body)
    except PayloadError as exc:
        return ("refused", exc.message, exc.field, exc.status)
    if checked is None:
        return ("none",)
    return ("checked", checked.source, checked.statuses)


# -- the bodies mutated ----------------------------------------------------------------


def generated() -> dict[str, Any]:
    """A valid body using what the fixtures do not: a resolved alert, an alert with only
    its required fields, null maps, the largest truncatedAlerts, non-ASCII text."""
    minimal = {"status": "firing", "labels": {}, "startsAt": "2024-05-01T10:00:00+02:00"}
    resolved = am_alert("r\u00e9solu-\U0001f600", "resolved", instance="api-2")
    resolved["annotations"] = None
    return am_payload(
        status="resolved",
        truncatedAlerts=2**64 - 1,
        groupLabels=None,
        commonLabels={},
        commonAnnotations=None,
        alerts=[am_alert("a"), resolved, minimal],
    )


def bases() -> list[tuple[str, Any]]:
    found = [(path.name, json.loads(path.read_text()))
             for path in sorted((FIXTURES / "alertmanager").glob("*.json"))]  # fmt: skip
    # Grafana's (version "1" is not for check_body), as version 4: their own fields
    # (values, silenceURL, orgId) are then extras to ignore.
    found += [(f"{path.name} as v4", json.loads(path.read_text()) | {"version": "4"})
              for path in sorted((FIXTURES / "grafana").glob("*.json"))]  # fmt: skip
    return [*found, ("am_payload", am_payload()), ("generated", generated())]


class Pairs:
    """A JSON object that may hold a key twice (json.dumps cannot write one)."""

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items


class _HasPairs(Exception):
    pass


def _no_pairs(value: Any) -> Any:
    raise _HasPairs


def encode(value: Any, ascii_only: bool) -> str:
    if isinstance(value, Pairs | dict):
        items = value.items if isinstance(value, Pairs) else value.items()
        written = (f"{json.dumps(k, ensure_ascii=ascii_only)}:{encode(v, ascii_only)}"
                   for k, v in items)  # fmt: skip
        return "{" + ",".join(written) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def to_bytes(doc: Any, ascii_only: bool = True) -> bytes:
    try:
        text = json.dumps(doc, ensure_ascii=ascii_only, default=_no_pairs)
    except _HasPairs:
        text = encode(doc, ascii_only)
    # Without ensure_ascii a lone surrogate is written as such: invalid UTF-8.
    return text.encode("utf-8", "surrogatepass")


def locations(doc: Any, here: Loc = ()) -> Iterator[Loc]:
    yield here
    if isinstance(doc, dict):
        for key, child in doc.items():
            yield from locations(child, (*here, key))
    elif isinstance(doc, list):
        for index, child in enumerate(doc):
            yield from locations(child, (*here, index))


def at(doc: Any, loc: Loc) -> Any:
    for part in loc:
        doc = doc[part]
    return doc


def changed(doc: Any, loc: Loc, change: Callable[[Any, str | int], None]) -> Any:
    """A copy of ``doc`` with ``change(parent, key)`` applied at ``loc``; only the
    containers on the way are copied (nothing is changed in place)."""
    if not loc:
        holder = [doc]
        change(holder, 0)
        return holder[0] if holder else None
    top = _copied(doc)
    parent = top
    for part in loc[:-1]:
        parent[part] = _copied(parent[part])
        parent = parent[part]
    change(parent, loc[-1])
    return top


def _copied(container: Any) -> Any:
    return dict(container) if isinstance(container, dict) else list(container)


def replaced(doc: Any, loc: Loc, value: Any) -> Any:
    def put(parent: Any, key: str | int) -> None:
        parent[key] = value

    return changed(doc, loc, put)


def deleted(doc: Any, loc: Loc) -> Any:
    def remove(parent: Any, key: str | int) -> None:
        del parent[key]

    return changed(doc, loc, remove)


def renamed(doc: Any, loc: Loc, name: str) -> Any:
    def rename(parent: Any, key: str | int) -> None:
        parent[name] = parent.pop(key)

    return changed(doc, loc, rename)


def deep(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


# Set at every location: what the brief of a check-only schema must get right.
EVERY_TIME: list[Any] = [
    None, 0, -1, 2**64, True, False, [], {}, "", "\u0000", "x\u0000", {"a": "b"}, ["x"],
]  # fmt: skip
# A sample of these at each location.
SOMETIMES: list[Any] = [
    1, 7, 2**63, 2**64 - 1, 10**30, -(2**64), 1.0, 1.5, -0.0, 1e300, float("nan"),
    float("inf"), "4", "04", "4 ", "1", "3", "firing", "resolved", "FIRING", "Resolved",
    "0", "7", " ", "\u0000x", "x\ud800", "\udc00", "\U0001f600", "\u00e9" * 300, "k" * 5000,
    "0001-01-01T00:00:00Z", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00",
    "2024-05-01T10:00:00.123456789+02:00", "yesterday", "9999-12-31T23:00:00-05:00",
    "2024-02-30T00:00:00Z", [1], [None], [{}], {"a": 1}, {"a": None}, {"": ""},
    {"a\u0000": "b"}, {"a": "b\u0000"}, {"a": ["b"]}, {"a": "x\ud800"},
]  # fmt: skip


def derived(value: Any) -> list[Any]:
    """Values made from the one at a location: another case, padded, cut, wrapped."""
    made: list[Any] = [[value], {"v": value}]
    if isinstance(value, str):
        made += [value.upper(), value.capitalize(), value + " ", value[:-1], value + "\u0000"]
    elif isinstance(value, bool):
        made += [int(value), str(value).lower()]
    elif isinstance(value, int | float):
        made += [value + 1, -value - 1, float(value), str(value), value + 0.5]
    elif isinstance(value, dict):
        made += [{k: None for k in value}, {k: 1 for k in value}, dict.fromkeys(value, "")]
    elif isinstance(value, list):
        made += [value * 2, value[::-1], [*value, None], value[:1]]
    return made


def structural(doc: Any, rng: random.Random) -> Iterator[tuple[str, Any]]:
    """Each location's own mutations: values, deletion, keys renamed, added, repeated."""
    for loc in locations(doc):
        here = at(doc, loc)
        name = ".".join(map(str, loc)) or "(root)"
        # Nested near and past the parser's limit (201 levels); a string made long.
        big = [deep(here, 196), deep(here, 240)]
        if isinstance(here, str):
            big.append(here * 300)
        values = EVERY_TIME + rng.sample(SOMETIMES, 6) + derived(here) + big
        for value in values:
            yield f"{name} = {value!r:.40}", replaced(doc, loc, value)
        if loc:
            yield f"del {name}", deleted(doc, loc)
        if loc and isinstance(loc[-1], str):
            for other in (loc[-1].lower(), loc[-1].upper(), loc[-1] + "_", "_" + loc[-1]):
                if other != loc[-1]:
                    yield f"rename {name} -> {other}", renamed(doc, loc, other)
        if isinstance(here, dict):
            extra = rng.choice([None, 1, "x", [], {"future": True}, deep(1, 240)])
            yield f"{name} + futureField", replaced(doc, loc, here | {"futureField": extra})
            for key, child in here.items():
                odd = rng.choice(EVERY_TIME + SOMETIMES)
                later = Pairs([*here.items(), (key, odd)])
                earlier = Pairs([(key, odd), *here.items()])
                yield f"{name}.{key} twice, odd last", replaced(doc, loc, later)
                yield f"{name}.{key} twice, odd first", replaced(doc, loc, earlier)
                same = Pairs([(key, child), *here.items()])
                yield f"{name}.{key} twice, same", replaced(doc, loc, same)
        if isinstance(here, list) and here:
            yield f"{name} doubled", replaced(doc, loc, here + here)
            yield f"{name} emptied", replaced(doc, loc, [])


def several(doc: Any, rng: random.Random, count: int) -> Iterator[tuple[str, Any]]:
    """Two to four mutations at once, at random locations."""
    for _ in range(count):
        mutated, names = doc, []
        for _ in range(rng.randint(2, 4)):
            loc = rng.choice(list(locations(mutated)))
            if loc and rng.random() < 0.3:
                mutated, what = deleted(mutated, loc), "del"
            else:
                value = rng.choice(EVERY_TIME + SOMETIMES + derived(at(mutated, loc)))
                mutated, what = replaced(mutated, loc, value), f"= {value!r:.20}"
            names.append(f"{'.'.join(map(str, loc))} {what}")
        yield "; ".join(names), mutated


def spliced(body: bytes, rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    """The JSON text itself: cut short, a byte dropped, changed or added, wrapped."""
    yield "empty", b""
    yield "whitespace", b" \n\t"
    yield "BOM", b"\xef\xbb\xbf" + body
    yield "padded", b" \n" + body + b"\n "
    yield "trailing garbage", body + b"x"
    yield "two documents", body + body
    yield "in an array", b"[" + body + b"]"
    for _ in range(count):
        pos = rng.randrange(len(body))
        byte = rng.choice([b'"', b",", b":", b"{", b"}", b"[", b"]", b"\\", b"\x00", b"\xff",
                           b" ", b"0", b"-", b"e"])  # fmt: skip
        yield f"cut at {pos}", body[:pos]
        yield f"byte {pos} dropped", body[:pos] + body[pos + 1 :]
        yield f"byte {pos} = {byte!r}", body[:pos] + byte + body[pos + 1 :]
        yield f"{byte!r} inserted at {pos}", body[:pos] + byte + body[pos:]


def cases() -> Iterator[tuple[str, bytes]]:
    rng = random.Random(SEED)
    for base_name, doc in bases():
        for name, mutated in [*structural(doc, rng), *several(doc, rng, 150)]:
            yield f"{base_name}: {name}", to_bytes(mutated)
            if rng.random() < 0.2:  # raw UTF-8 too (a lone surrogate: invalid UTF-8)
                yield f"{base_name}: {name} (UTF-8)", to_bytes(mutated, ascii_only=False)
        for name, body in spliced(to_bytes(doc), rng, 40):
            yield f"{base_name}: {name}", body
    for name, top in [("array", []), ("null", None), ("number", 4), ("string", "4"),
                      ("empty object", {}), ("payload in an array", [am_payload()])]:  # fmt: skip
        yield f"top-level {name}", to_bytes(top)


# -- the test --------------------------------------------------------------------------


def test_check_body_accepts_and_refuses_exactly_what_the_model_does() -> None:
    seen: Counter[str] = Counter()  # outcomes, and the fields of the time rules' refusals
    differ: list[str] = []
    total = 0
    for name, body in cases():
        total += 1
        expected = outcome(model_check, body)
        seen[expected[0]] += 1
        if expected[0] == "refused":
            seen[expected[2].rpartition(".")[2]] += 1
        got = outcome(alertmanager.check_body, body)
        if got != expected:
            differ.append(f"{name}: model {expected!r:.120}, check_body {got!r:.120}")
    assert not differ, f"{len(differ)} of {total} bodies differ:\n" + "\n".join(differ[:20])
    # Not vacuous: thousands of bodies, and many of each outcome.
    assert total > 5000
    assert min(seen["checked"], seen["none"], seen["refused"]) > 100, seen
    assert min(seen["startsAt"], seen["endsAt"]) > 20, seen


def test_the_check_takes_the_statuses_the_model_does() -> None:
    # The check reads a status as one of these strings: an AlertStatus added later
    # must be added there too (the mutations only try the statuses known now).
    assert set(get_args(alertmanager._Status)) == {status.value for status in AlertStatus}


def test_the_fast_path_says_valid_only_of_what_the_model_accepts() -> None:
    """msgspec's fast path may send a valid body to the schema, never the other way:
    whatever it accepts the model accepts, with the same statuses. And it is the path
    real deliveries take (the fixtures, and most accepted mutations)."""
    fast = wrong = 0
    for name, body in cases():
        shape = alertmanager._fast_shape(body)
        if shape is None:
            continue
        fast += 1
        message = alertmanager._message(body)
        statuses = tuple(status for status, _, _ in shape)
        if message is None or tuple(a.status.value for a in message.alerts) != statuses:
            wrong += 1
            print(f"{name}: fast path accepted, model {message!r:.120}")
    assert wrong == 0
    assert fast > 1000
    for path in sorted((FIXTURES / "alertmanager").glob("*.json")):
        assert alertmanager._fast_shape(path.read_bytes()) is not None, path.name
