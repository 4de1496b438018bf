"""docs/rules.md is the tests as they are: current, and every rule held by a test."""

from __future__ import annotations

from tests.rules import RULES
from tools import rule_index


def test_every_rule_is_held_by_at_least_one_test() -> None:
    held = rule_index.marked_tests()
    assert [rule for rule in RULES if not held.get(rule)] == []
    assert sorted(set(held) - set(RULES)) == []  # marks name only known rules


def test_the_rule_index_is_current() -> None:
    expected = rule_index.render(rule_index.marked_tests())
    assert rule_index.INDEX.read_text() == expected, (
        "docs/rules.md is not current: run `python -m tools.rule_index`"
    )
