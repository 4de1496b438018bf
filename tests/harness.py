"""A router wired to loopback fakes, for flow tests: the real app, the real outbox
worker, the real slack_sdk client against FakeSlack, optionally the real PyGithub
client against FakeGitHub, and a frozen clock moved by hand.

People act the way Slack delivers it: ``command`` posts a signed ``/incident`` slash
command, ``press`` and ``control`` post signed button presses and selections.
``settle`` runs the outbox until nothing is due, stepping the frozen clock over the
short waits between dependent jobs (a thread post waits ~1 s for its parent message).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient, TestServer

from router.adapters.http.context import SERVICES
from router.adapters.slack.signing import sign
from router.adapters.store import Store, open_store
from router.app.clock import FrozenClock
from router.bootstrap import WORKER, create_app
from router.config import RouterConfig, Secrets, load_config
from router.core import messages, modals
from router.core.incident import Incident
from router.core.jobs import JobKind, JobStatus, StoredJob
from router.metrics import Metrics
from tests.conftest import AM_TOKEN, T0
from tests.fakes.github_api import FakeGitHub
from tests.fakes.slack_api import FakeSlack

SLACK_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
GITHUB_TOKEN = "ghp_HarnessT0kenNeverLogged0123456789"
GITHUB_REPO = "acme/incidents"
PRIMARY, SECONDARY, LEAD, RESPONDER, STRANGER = (
    "U0PRIMARY1", "U0SECOND02", "U0LEADER03", "U0RESPOND4", "U0STRANGE5",
)  # fmt: skip
INCIDENTS, OPS = "C0INCIDENTS", "C0OPERATORS"
USERS = {
    uid: {"name": uid.lower(), "real_name": uid, "email": f"{uid.lower()}@example.com", "tz": "UTC"}
    for uid in (PRIMARY, SECONDARY, LEAD, RESPONDER, STRANGER)
}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def router_config(
    tmp_path: Path, slack_url: str, *, extra: Mapping[str, Any] | None = None, **overrides: str
) -> RouterConfig:
    """The harness's config; ``extra`` is merged into the document (sections deep),
    ``overrides`` are ``ROUTER__SECTION__KEY`` env overrides without the prefix."""
    document = {
        "store": {"url": f"sqlite:///{tmp_path}/router.db"},
        "slack": {"api_url": slack_url, "incident_channel": INCIDENTS, "operator_channel": OPS},
        "paging": {"ack_timeout_seconds": 300, "storm_limit": 5},
        "oncall": {
            "rotations": {
                role: {"members": [user], "start": "2026-01-05T09:00:00",
                       "handoff_time": "09:00", "timezone": "UTC"}
                for role, user in (("eng-primary", PRIMARY), ("eng-secondary", SECONDARY),
                                   ("leadership", LEAD))
            },
            "responders": [RESPONDER],
        },
        # The flows written before incident channels read the announcement's thread;
        # tests of channels set mode: channel (tests/test_channel_flow.py).
        "incident": {"channel": {"mode": "thread"}},
    }  # fmt: skip
    _merge(document, extra or {})
    path = tmp_path / "router.yaml"
    path.write_text(json.dumps(document))
    return load_config(path, {f"ROUTER__{k}": v for k, v in overrides.items()})


class Harness:
    def __init__(self, client: TestClient[Any, Any], slack: FakeSlack, clock: FrozenClock,
                 metrics: Metrics, github: FakeGitHub | None = None,
                 repo: str = GITHUB_REPO) -> None:  # fmt: skip
        self.client = client
        self.slack = slack
        self.clock = clock
        self.metrics = metrics
        self.github = github
        self.repo = repo
        self._responses = itertools.count(1)

    @property
    def store(self) -> Any:
        return self.client.server.app[SERVICES].store

    async def alertmanager(self, payload: dict[str, Any], *, applied: bool = True) -> Any:
        """Post a webhook as Alertmanager does; with ``applied``, also wait until the
        inbox processor has applied it (the answer comes once it is durable)."""
        response = await self.client.post(
            "/webhooks/alertmanager", json=payload, headers={"Authorization": f"Bearer {AM_TOKEN}"}
        )
        assert response.status == 200, await response.text()
        answer = await response.json()
        if applied:
            await inbox_drained(self.store)
        return answer

    # -- people acting in Slack ---------------------------------------------------

    async def _signed_form(self, path: str, form: Mapping[str, str]) -> Any:
        body = urlencode(form).encode()
        headers = sign(SIGNING_SECRET, int(self.clock.now().timestamp()), body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.client.post(path, data=body, headers=headers)

    async def command(self, text: str, user: str, *, channel: str = INCIDENTS,
                      trigger_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        """``/incident <text>`` typed by ``user``: Slack's signed form; the JSON answer
        (ephemeral: only ``user`` sees it). ``trigger_id``: one from
        ``slack.issue_trigger_id()`` lets a form open (the default one is unknown)."""
        form = {
            "command": "/incident",
            "text": text,
            "user_id": user,
            "user_name": user.lower(),
            "channel_id": channel,
            "team_id": "T0FAKETEAM",
            "response_url": self.slack.response_url_for(f"cmd-{next(self._responses)}"),
            "trigger_id": trigger_id or f"{next(self._responses)}.2.3",
        }
        response = await self._signed_form("/slack/commands", form)
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer

    async def act(self, action: dict[str, Any], user: str, *, response_name: str | None = None,
                  message_ts: str = "1700000000.000100",
                  trigger_id: str | None = None) -> Any:  # fmt: skip
        """One signed ``block_actions`` delivery carrying ``action``; the raw response.

        Answers for the person go to ``response_url_for(response_name)``
        (``resp-<user>`` unless named: FakeSlack takes five posts per URL)."""
        action = {"action_ts": f"{time.time():.6f}", **action}
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": "T0FAKETEAM"},
            "team": {"id": "T0FAKETEAM", "domain": "acme"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": "D1"},
            "trigger_id": trigger_id or "1.2.3",
            "response_url": self.slack.response_url_for(response_name or f"resp-{user}"),
            "actions": [action],
        }
        return await self._signed_form("/slack/interactions", {"payload": json.dumps(payload)})

    async def press(self, action_id: str, value: str, user: str, *,
                    selected: str | None = None, action_ts: str | None = None,
                    message_ts: str = "1700000000.000100", block_id: str = "b",
                    response_name: str | None = None,
                    trigger_id: str | None = None) -> Any:  # fmt: skip
        action: dict[str, Any] = {"type": "button", "action_id": action_id, "block_id": block_id,
                                  "action_ts": action_ts or f"{time.time():.6f}"}  # fmt: skip
        if selected is not None:
            action = action | {"type": "static_select", "selected_option": {"value": selected}}
        else:
            action["value"] = value
        return await self.act(action, user, message_ts=message_ts, response_name=response_name,
                              trigger_id=trigger_id)  # fmt: skip

    async def control(self, action_id: str, user: str, ref: str = "INC-1", *,
                      severity: str | None = None, selected_user: str | None = None,
                      block_id: str | None = None, action_ts: str | None = None,
                      response_name: str | None = None,
                      trigger_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Use an incident control the way Slack sends it: the severity static_select
        (``severity``), the comms/handoff users_select (``selected_user``, the incident
        only in the block id), or a button whose value is ``ref``. The JSON answer."""
        if action_id == messages.INC_SEVERITY:
            assert severity is not None, "the severity select needs severity="
            action: dict[str, Any] = {
                "type": "static_select", "action_id": action_id,
                "block_id": block_id or f"incident|{ref}|roles",
                "selected_option": {"text": {"type": "plain_text", "text": severity},
                                    "value": f"{ref}|{severity}"},
            }  # fmt: skip
        elif action_id in (messages.INC_COMMS, messages.INC_HANDOFF):
            assert selected_user is not None, "a users_select needs selected_user="
            action = {"type": "users_select", "action_id": action_id,
                      "block_id": block_id or f"incident|{ref}|roles",
                      "selected_user": selected_user}  # fmt: skip
        else:
            where = "handoff" if action_id == messages.INC_ACCEPT else "actions"
            action = {"type": "button", "action_id": action_id, "value": ref,
                      "block_id": block_id or f"incident|{ref}|{where}"}  # fmt: skip
        if action_ts is not None:  # the same action_ts again: a Slack retry
            action["action_ts"] = action_ts
        response = await self.act(
            action,
            user,
            response_name=response_name or f"ctl-{next(self._responses)}",
            trigger_id=trigger_id,
        )
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer

    # -- forms (modals) --------------------------------------------------------------

    def last_view(self) -> dict[str, Any]:
        """The form Slack opened last (as FakeSlack holds it)."""
        assert self.slack.view_log, "no form was opened"
        view: dict[str, Any] = self.slack.views[self.slack.view_log[-1][1]]
        return view

    async def submit(self, view: dict[str, Any], user: str,
                     values: Mapping[str, str | list[str]]) -> tuple[int, Any]:  # fmt: skip
        """Submit ``view`` filled in with ``values`` as Slack does (a signed
        ``view_submission``): the status and the answer (None when empty: it closes)."""
        payload = modals.simulate_submission(view, user=user, values=values, view_id=view["id"])
        response = await self._signed_form("/slack/interactions", {"payload": json.dumps(payload)})
        text = await response.text()
        return response.status, (json.loads(text) if text else None)

    # -- the outbox and the clock -----------------------------------------------

    def kick(self) -> None:
        self.client.server.app[WORKER].kick()

    async def advance(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.kick()

    async def settle(self, horizon: float = 5.0, within: float = 10.0) -> None:
        """Let the inbox drain and the outbox run until no job is due or running. Jobs
        waiting a few seconds (at most ``horizon``: another job's result, a short
        backoff, an edit spaced by ``paging.edit_interval_seconds``) are brought due by
        stepping the frozen clock to them; timers are never brought forward."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        await inbox_drained(self.store, within)
        while True:
            now = self.clock.now()
            jobs: list[StoredJob] = await self.store.run(lambda tx: tx.jobs())
            running = [j for j in jobs if j.status is JobStatus.RUNNING]
            pending = [j for j in jobs if j.status is JobStatus.PENDING]
            due = [j for j in pending if j.due_at <= now]
            waiting = [j for j in pending if j.due_at > now and j.kind is not JobKind.TIMER]
            if not running and not due:
                soonest = min((j.due_at for j in waiting), default=None)
                if soonest is None or soonest - now > timedelta(seconds=horizon):
                    return
                self.clock.set(soonest)
            self.kick()
            if loop.time() > deadline:
                busy = [(j.key, j.status.value, j.last_error) for j in running + due + waiting]
                raise AssertionError(f"the outbox did not settle: {busy}")
            await asyncio.sleep(0.02)

    async def jobs(self, status: JobStatus | None = None) -> list[StoredJob]:
        found: list[StoredJob] = await self.store.run(lambda tx: tx.jobs(status))
        return found

    async def refresh_gauges(self) -> None:
        await self.client.server.app[WORKER].refresh_gauges()

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        value: float | None = self.metrics.registry.get_sample_value(name, dict(labels or {}))
        return value

    # -- what the router holds and posted -----------------------------------------

    async def incident(self, number: int = 1) -> Incident:
        found: Incident | None = await self.store.run(lambda tx: tx.incident(number))
        assert found is not None, f"no INC-{number}"
        return found

    async def incidents(self) -> list[Incident]:
        found: list[Incident] = await self.store.run(lambda tx: tx.incidents())
        return found

    async def announcement(self, number: int = 1) -> dict[str, Any]:
        """The announcement message in the incident channel (its current content)."""
        key = f"incident:{number}:announce"
        found = await self.store.run(lambda tx: tx.job_by_key(key))
        assert found is not None and found[1], f"INC-{number} was not announced"
        message = self.slack.message(found[1]["channel"], found[1]["ts"])
        assert message is not None
        return message

    async def thread(self, number: int = 1) -> list[str]:
        """Texts posted in the thread of the incident's announcement, in order."""
        root = await self.announcement(number)
        return [
            m["text"] for m in self.slack.messages
            if m["channel"] == root["channel"] and m.get("thread_ts") == root["ts"]
        ]  # fmt: skip

    async def wait_thread(self, wanted: str | Callable[[str], bool], number: int = 1) -> str:
        """The first thread message containing ``wanted`` (or matching it), waited for."""
        match = (lambda text: wanted in text) if isinstance(wanted, str) else wanted
        found: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while loop.time() < deadline:
            found = [t for t in await self.thread(number) if match(t)]
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no thread message {wanted!r} in {await self.thread(number)}")

    def issue_with_marker(self, key: str) -> dict[str, Any] | None:
        """The fake GitHub issue opened by the job ``key`` (its marker), if any."""
        assert self.github is not None, "running_router(github=...) was not given"
        marker = f"<!-- incident-router:{key}:"  # then the declaration time
        found = [i for i in self.github.issues(self.repo) if marker in (i["body"] or "")]
        assert len(found) <= 1, f"{len(found)} issues carry {marker}"
        return found[0] if found else None

    # -- pages ----------------------------------------------------------------------

    async def dm_blocks(self, user: str, index: int = 0) -> list[dict[str, Any]]:
        await self.slack.wait_for(lambda: len(self.slack.dms_to(user)) > index)
        return list(self.slack.dms_to(user)[index]["blocks"] or [])

    async def page_key(self, user: str = PRIMARY, index: int = 0) -> str:
        for block in await self.dm_blocks(user, index):
            for element in block.get("elements", []):
                if element.get("action_id") == "page.declare":
                    return str(element["value"])
        raise AssertionError("no Declare button in the page")


async def inbox_drained(store: Any, within: float = 10.0) -> None:
    """Wait until no accepted delivery waits in the inbox (all applied, or set aside)
    and no digest waits to be rendered again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        stats, stale = await store.run(lambda tx: (tx.inbox_stats(T0), tx.stale_digests()))
        if stats.pending == 0 and not stale:
            return
        if loop.time() > deadline:
            raise AssertionError(f"the inbox did not drain: {stats}")
        await asyncio.sleep(0.01)


def fake_github(*, private: bool = True, repo: str = GITHUB_REPO, **options: Any) -> FakeGitHub:
    """A FakeGitHub (not started) holding the tracking repo and taking GITHUB_TOKEN."""
    return FakeGitHub(token=GITHUB_TOKEN, repos={repo: {"private": private}}, **options)


def _started(fake: FakeGitHub) -> bool:
    try:
        return bool(fake.origin)
    except RuntimeError:  # "FakeGitHub is not started"
        return False


@asynccontextmanager
async def running_router(tmp_path: Path, slack: FakeSlack | None = None, *,
                         github: FakeGitHub | bool = False, repo: str = GITHUB_REPO,
                         config: Mapping[str, Any] | None = None,
                         pagerduty_secret: str | None = None,
                         store: Callable[[Store], Store] | None = None,
                         secrets: Mapping[str, str] | None = None,
                         app_token: str | None = None,
                         **overrides: str) -> AsyncIterator[Harness]:  # fmt: skip
    """The router on a test server with its outbox worker, against FakeSlack and, with
    ``github`` (True: a private fake repo made here; or a FakeGitHub, started or not),
    against FakeGitHub through ``github.api_url``/``github.repo`` and ``GITHUB_TOKEN``.
    ``config`` is merged into the config document; ``overrides`` are env overrides;
    ``pagerduty_secret`` is ``PAGERDUTY_WEBHOOK_SECRET`` (PagerDuty webhooks);
    ``store`` wraps the configured store (e.g. in a ``FlakyStore``); ``secrets`` are
    more secrets by name (``STATUSPAGE_API_KEY``, ...); ``app_token`` is
    ``SLACK_APP_TOKEN`` (Socket Mode, with ``slack.socket_mode: true`` in ``config``)."""
    own_slack = slack is None
    slack = slack or FakeSlack(SLACK_TOKEN, channels=(INCIDENTS, OPS), users=USERS)
    gh = fake_github(repo=repo) if github is True else github or None
    own_github = gh is not None and not _started(gh)
    extra: dict[str, Any] = {}
    try:
        if own_slack:
            await slack.start()
        if gh is not None:
            if own_github:
                await gh.start()
            extra = {"github": {"api_url": gh.base_url, "repo": repo}}
        clock = FrozenClock(T0)
        metrics = Metrics()
        router = router_config(tmp_path, slack.base_url, extra=_merge(extra, config or {}),
                               **overrides)  # fmt: skip
        secrets = Secrets(ALERTMANAGER_TOKEN=AM_TOKEN, SLACK_BOT_TOKEN=SLACK_TOKEN,
                          SLACK_SIGNING_SECRET=SIGNING_SECRET,
                          PAGERDUTY_WEBHOOK_SECRET=pagerduty_secret,
                          GITHUB_TOKEN=gh.token if gh is not None else None,
                          SLACK_APP_TOKEN=app_token, **dict(secrets or {}))  # fmt: skip
        engine = open_store(router.store.url)
        app = create_app(router, secrets, clock=clock, metrics=metrics, poll_seconds=0.05,
                         store=store(engine) if store else engine)  # fmt: skip
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        try:
            await client.start_server()  # raises if the app refuses to start
            yield Harness(client, slack, clock, metrics, gh, repo)
        finally:
            await client.close()
    finally:
        if own_slack:
            await slack.stop()
        if own_github and gh is not None:
            await gh.stop()
