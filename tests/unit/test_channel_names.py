"""Incident channel names: a template, Slack's naming rules, and a suffix on name_taken.

Slack's rules (conversations.create, docs.slack.dev/reference/methods/conversations.create):
lowercase letters, digits, hyphens and underscores, at most 80 characters; anything else
is ``invalid_name_specials``, too long is ``invalid_name_maxlength``, a name of only
punctuation is ``invalid_name_punctuation``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from router.core.channel_names import (
    DEFAULT_TEMPLATE,
    MAX_LENGTH,
    TemplateError,
    candidates,
    channel_name,
    check_template,
    slugify,
    with_suffix,
)
from router.core.severity import Severity

SLACK_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def name(title: str, number: int = 12, template: str = DEFAULT_TEMPLATE, **kw: object) -> str:
    return channel_name(template, number=number, title=title, **kw)  # type: ignore[arg-type]


def valid(value: str) -> bool:
    return bool(SLACK_NAME.match(value)) and any(c.isalnum() for c in value)


def test_default_template_numbers_and_slugs_the_title() -> None:
    assert DEFAULT_TEMPLATE == "inc-{number}-{slug}"
    assert name("Checkout API returns 500s") == "inc-12-checkout-api-returns-500s"


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("DB down!!", "db-down"),
        ("  spaces   and\ttabs\n", "spaces-and-tabs"),
        ("p99 > 1s on api-1 (eu_west)", "p99-1s-on-api-1-eu_west"),
        ("--leading and trailing--", "leading-and-trailing"),
        ("Zürich: Störung der Bezahlung", "zurich-storung-der-bezahlung"),
        ("Straße groß", "strasse-gross"),
        ("Ærø og Øresund", "aero-og-oresund"),
        ("Łódź outage", "lodz-outage"),
        ("café crème brûlée", "cafe-creme-brulee"),
        ("ﬁle ﬂow", "file-flow"),  # ligatures fold (NFKD)
        ("Ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ("emoji 🔥 fire", "emoji-fire"),
        ("UPPER_case", "upper_case"),
    ],
)
def test_slug_folds_to_slacks_alphabet(title: str, slug: str) -> None:
    assert slugify(title) == slug


@pytest.mark.parametrize("title", ["", "   ", "!!!", "🔥🔥", "Дата-центр упал", "数据库宕机"])
def test_a_title_with_nothing_foldable_leaves_the_number_alone(title: str) -> None:
    # Scripts with no Latin folding drop out: the number keeps the name unique.
    assert slugify(title) == ""
    assert name(title) == "inc-12"


def test_a_template_of_only_a_slug_still_names_the_channel_when_the_slug_is_empty() -> None:
    assert name("!!!", template="{slug}") == "incident"
    assert name("!!!", template="{slug}", number=7) == "incident"


def test_long_titles_are_cut_at_a_word_within_80() -> None:
    title = "the payment provider times out for every checkout in every region " * 3
    made = name(title, number=123456)
    assert len(made) <= MAX_LENGTH
    assert valid(made)
    assert made.startswith("inc-123456-the-payment-provider")
    assert not made.endswith("-")
    # cut at a word boundary, not mid-word
    assert made.split("-")[-1] in title.split()


def test_one_enormous_word_is_cut_hard() -> None:
    made = name("x" * 500)
    assert made == "inc-12-" + "x" * (MAX_LENGTH - len("inc-12-"))


def test_template_literal_text_obeys_the_rules_too() -> None:
    assert name("DB down", template="INC {number} {slug}") == "inc-12-db-down"
    assert name("DB down", template="Incidents/{severity}/{number}", severity=Severity.HIGH) == (
        "incidents-high-12"
    )


def test_date_and_severity_fields() -> None:
    made = name(
        "DB down", template="{date}-{severity}-{slug}", severity=Severity.CRITICAL, declared_at=AT
    )
    assert made == "20240501-critical-db-down"


def test_a_confidential_incident_keeps_its_title_out_of_the_name() -> None:
    # A channel's name is seen where its messages are not (links, the sidebar of
    # members, admins' lists): a confidential title must not leak through it.
    assert name("Customer data exfiltrated", confidential=True) == "inc-12"


def test_template_check_names_the_problem() -> None:
    check_template(DEFAULT_TEMPLATE)
    check_template("{date}-{severity}-{number}")
    with pytest.raises(TemplateError, match=r"unknown field \{title\}"):
        check_template("inc-{title}")
    with pytest.raises(TemplateError, match=r"needs \{number\} or \{slug\}"):
        check_template("incident")
    with pytest.raises(TemplateError, match="not a valid template"):
        check_template("inc-{number")
    with pytest.raises(TemplateError, match="positional"):
        check_template("inc-{}")
    with pytest.raises(TemplateError, match="too long"):
        check_template("x" * 70 + "-{number}")


def test_fields_the_template_needs_must_be_given() -> None:
    with pytest.raises(ValueError, match="severity"):
        name("x", template="{severity}-{number}")
    with pytest.raises(ValueError, match="declared_at"):
        name("x", template="{date}-{number}")


@pytest.mark.parametrize("n", [2, 3, 10, 999])
def test_suffix_keeps_the_name_within_80(n: int) -> None:
    base = name("a very long title " * 10)
    assert len(base) == MAX_LENGTH or len(base) > 70
    suffixed = with_suffix(base, n)
    assert suffixed.endswith(f"-{n}")
    assert len(suffixed) <= MAX_LENGTH
    assert valid(suffixed)
    assert not suffixed.removesuffix(f"-{n}").endswith(("-", "_"))


def test_suffix_of_a_short_name() -> None:
    assert with_suffix("inc-12-db-down", 2) == "inc-12-db-down-2"
    with pytest.raises(ValueError):
        with_suffix("inc-12", 1)


def test_candidates_are_the_name_then_numbered_suffixes() -> None:
    assert candidates("inc-12-db-down", 4) == [
        "inc-12-db-down",
        "inc-12-db-down-2",
        "inc-12-db-down-3",
        "inc-12-db-down-4",
    ]
    assert candidates("inc-12", 1) == ["inc-12"]
    many = candidates(name("b" * 200), 50)
    assert len(set(many)) == 50
    assert all(valid(c) for c in many)


def test_same_title_different_incidents_get_different_names() -> None:
    assert name("DB down", number=1) != name("DB down", number=2)
