"""Slack messages link to the web console only when web.public_url is set: the
announcement to the incident's page, the storm digest to the pages list."""

from __future__ import annotations

import dataclasses

from router.core import duties
from router.core.digest import DigestLine
from router.core.messages import digest_part
from router.core.page import PageStatus
from router.core.severity import DEFAULT_RULES, Severity, suggest
from tests.unit.test_duties import POLICY, RESPONDER, ctx

CONSOLE = "https://router.example.com/ui"


def announcement_blocks(console_url: str | None) -> str:
    policy = dataclasses.replace(POLICY, console_url=console_url)
    outcome = duties.declare(3, "Payments down", RESPONDER, ctx(policy), suggest([], DEFAULT_RULES))
    announce = next(j for j in outcome.jobs if j.key == "incident:3:announce")
    return str(announce.payload["blocks"])


def test_the_announcement_links_to_the_incident_in_the_console() -> None:
    assert f"<{CONSOLE}/incidents/3|INC-3 in the console>" in announcement_blocks(CONSOLE)
    assert "/ui/" not in announcement_blocks(None)


def test_a_storm_digest_links_to_the_pages_list() -> None:
    line = DigestLine(position=1, page_key="p1", title="Storm001", severity=Severity.MEDIUM,
                      firing=2, resolved=0, status=PageStatus.OPEN, all_resolved=False)  # fmt: skip
    _, linked = digest_part("U0IC", 1, 0, [line], console_url=CONSOLE)
    assert f"<{CONSOLE}/pages|Every open page in the console>" in str(linked)
    _, plain = digest_part("U0IC", 1, 0, [line])
    assert "/ui/" not in str(plain)
    _, later = digest_part("U0IC", 101, 1, [line], console_url=CONSOLE)
    assert "/pages|" not in str(later)  # once, in the digest's first message
