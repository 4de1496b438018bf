"""GitHubAdapter against FakeGitHub, through the real PyGithub."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from github.Requester import HTTPRequestsConnectionClass

from router.adapters.github.issues import GitHubAdapter, github_failure, rate_limit_wait
from router.app.effects import PermanentFailure, ResultLookup, RetryLater
from router.core.jobs import JobKind, JobStatus, StoredJob
from tests.fakes.github_api import SECONDARY_RATE_LIMIT_MESSAGE, FakeGitHub

TOKEN = "ghp_S3cretT0kenNeverLogged0123456789"
REPO = "org/ops"
MARKER = "router:incident:INC-42:tracking"
ISSUE = {
    "title": "INC-42 HighLatency on api-1",
    "body": "Confidential summary: p99 > 1s on api-1",
    "labels": ["incident", "sev1"],
    "marker": MARKER,
}


def job(
    payload: dict[str, Any],
    kind: JobKind = JobKind.GITHUB_ISSUE,
    attempts: int = 1,
    key: str = "k",
) -> StoredJob:
    return StoredJob(
        id=1,
        kind=kind,
        key=key,
        payload=payload,
        due_at=datetime.now(UTC),
        attempts=attempts,
        status=JobStatus.RUNNING,
    )


def results_from(stored: dict[str, dict[str, Any]]) -> ResultLookup:
    async def lookup(key: str) -> dict[str, Any] | None:
        return stored.get(key)

    return lookup


async def no_results(key: str) -> dict[str, Any] | None:
    return None


@pytest.fixture
async def gh() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(token=TOKEN, repos={REPO: {"private": True}}) as fake:
        yield fake


AdapterFactory = Callable[..., GitHubAdapter]


@pytest.fixture
async def make_adapter() -> AsyncIterator[AdapterFactory]:
    made: list[GitHubAdapter] = []

    def make(
        fake: FakeGitHub, token: str = TOKEN, repo: str = REPO, **kwargs: Any
    ) -> GitHubAdapter:
        adapter = GitHubAdapter(fake.base_url, token, repo, timeout=5, **kwargs)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
def adapter(gh: FakeGitHub, make_adapter: AdapterFactory) -> GitHubAdapter:
    return make_adapter(gh)


async def open_issue(adapter: GitHubAdapter) -> dict[str, Any]:
    return await adapter.run(job(ISSUE), no_results)


# --------------------------------------------------------------------------- issues


async def test_creates_an_issue_with_labels_and_marker(gh: FakeGitHub, adapter: GitHubAdapter):
    result = await open_issue(adapter)

    assert result == {
        "number": 1,
        "url": f"{gh.base_url}/repos/org/ops/issues/1",
        "html_url": f"{gh.origin}/org/ops/issues/1",
    }
    [issue] = gh.issues(REPO)
    assert issue["title"] == ISSUE["title"]
    assert issue["body"] == f"{ISSUE['body']}\n\n<!-- {MARKER} -->"
    assert [label["name"] for label in issue["labels"]] == ["incident", "sev1"]
    # Repo visibility, a search for the marker, the newest issues (search lags), the create.
    assert [(c.method, c.path) for c in gh.calls] == [
        ("GET", "/repos/org/ops"),
        ("GET", "/search/issues"),
        ("GET", "/repos/org/ops/issues"),
        ("POST", "/repos/org/ops/issues"),
    ]
    assert gh.calls[1].query["q"] == f'"{MARKER}" repo:org/ops in:body'
    assert gh.calls[0].headers["Authorization"] == f"token {TOKEN}"


async def test_a_body_already_holding_the_marker_is_sent_as_it_is(
    gh: FakeGitHub, adapter: GitHubAdapter
):
    body = f"<!-- {MARKER} -->\nsummary"
    await adapter.run(job({**ISSUE, "body": body}), no_results)
    assert gh.issues(REPO)[0]["body"] == body


async def test_an_issue_found_by_search_is_returned_not_duplicated(
    gh: FakeGitHub, adapter: GitHubAdapter
):
    first = await open_issue(adapter)
    again = await adapter.run(job(ISSUE, key="other-key"), no_results)

    assert again == first
    assert len(gh.issues(REPO)) == 1
    assert len(gh.calls_to("POST", r"/issues$")) == 1


async def test_a_plain_mention_of_the_marker_is_not_its_issue(
    gh: FakeGitHub, adapter: GitHubAdapter
):
    # Search matches the words; only the HTML comment counts.
    await adapter.run(job({**ISSUE, "marker": "router:other", "body": f"see {MARKER}"}), no_results)
    result = await open_issue(adapter)
    assert result["number"] == 2


async def test_retry_after_a_committed_5xx_finds_the_issue(gh: FakeGitHub, adapter: GitHubAdapter):
    gh.fail_next(r"^/repos/org/ops/issues$", status=502, method="POST", commit=True)
    with pytest.raises(RetryLater) as err:
        await open_issue(adapter)
    assert "HTTP 502" in err.value.reason
    assert len(gh.issues(REPO)) == 1  # GitHub did make it

    result = await adapter.run(job(ISSUE, attempts=2), no_results)

    assert result["number"] == 1
    assert len(gh.issues(REPO)) == 1
    assert len(gh.calls_to("POST", r"/issues$")) == 1


async def test_retry_finds_the_issue_in_the_listing_when_search_lags(
    make_adapter: AdapterFactory,
):
    async with FakeGitHub(token=TOKEN, repos={REPO: {"private": True}}, search_delay=60) as fake:
        adapter = make_adapter(fake)
        fake.fail_next(r"^/repos/org/ops/issues$", status=502, method="POST", commit=True)
        with pytest.raises(RetryLater):
            await open_issue(adapter)

        result = await adapter.run(job(ISSUE, attempts=2), no_results)

        assert result["number"] == 1
        assert len(fake.issues(REPO)) == 1
        *_, search_then_list = [
            c for c in fake.calls_to("GET", r"^/repos/org/ops/issues$") if c.status == 200
        ]
        assert search_then_list.query["sort"] == "created"
        assert search_then_list.query["direction"] == "desc"
        assert search_then_list.query["state"] == "all"
        # The search ran on both attempts and missed both times.
        searches = fake.calls_to("GET", r"^/search/issues$")
        assert [c.response["total_count"] for c in searches] == [0, 0]


async def test_even_a_first_attempt_finds_an_issue_search_has_not_indexed_yet(
    make_adapter: AdapterFactory,
):
    # e.g. another replica ran the same job after its lease ran out: attempts is 1 here
    async with FakeGitHub(token=TOKEN, repos={REPO: {"private": True}}, search_delay=60) as fake:
        adapter = make_adapter(fake)
        first = await open_issue(adapter)
        again = await adapter.run(job(ISSUE, key="k2"), no_results)  # search lags
        assert again["number"] == first["number"]
        assert len(fake.issues(REPO)) == 1


async def test_issue_payload_is_checked_before_any_request(gh: FakeGitHub, adapter: GitHubAdapter):
    for bad in (
        {**ISSUE, "title": ""},
        {**ISSUE, "labels": "incident"},
        {**ISSUE, "marker": 'has "quotes"'},
        {**ISSUE, "marker": "a-->b"},
        {k: v for k, v in ISSUE.items() if k != "marker"},
    ):
        with pytest.raises(PermanentFailure):
            await adapter.run(job(bad), no_results)
    assert gh.calls == []


# --------------------------------------------------------------------------- confidentiality


async def test_a_public_repo_is_refused(make_adapter: AdapterFactory):
    async with FakeGitHub(token=TOKEN, repos={REPO: {"private": False}}) as fake:
        adapter = make_adapter(fake)
        with pytest.raises(PermanentFailure) as err:
            await open_issue(adapter)
        assert err.value.reason == (
            "github.repo org/ops is public: incident details are confidential;"
            " set github.allow_public_repo: true to allow it"
        )
        assert fake.issues(REPO) == []
        assert fake.calls_to("POST", ".") == []
        assert fake.calls_to("GET", "^/search") == []


async def test_a_public_repo_is_used_when_allowed(make_adapter: AdapterFactory):
    async with FakeGitHub(token=TOKEN, repos={REPO: {"private": False}}) as fake:
        adapter = make_adapter(fake, allow_public_repo=True)
        result = await open_issue(adapter)
        assert result["number"] == 1
        assert len(fake.issues(REPO)) == 1


async def test_visibility_is_reread_before_each_issue(make_adapter: AdapterFactory):
    async with FakeGitHub(token=TOKEN, repos={REPO: {"private": True}}) as fake:
        adapter = make_adapter(fake)
        made = await open_issue(adapter)
        comment = job({"issue": "k", "body": "acked", "marker": "c1"}, kind=JobKind.GITHUB_COMMENT)

        fake.add_repo(REPO, private=False)  # made public (and emptied) behind our back
        with pytest.raises(PermanentFailure, match="is public"):
            await open_issue(adapter)
        # Now known to be public, a comment re-reads the visibility and is refused too.
        with pytest.raises(PermanentFailure, match="is public"):
            await adapter.run(comment, results_from({"k": made}))
        assert len(fake.calls_to("POST", ".")) == 1  # the first issue only

        fake.add_repo(REPO, private=True)
        made = await open_issue(adapter)
        await adapter.run(comment, results_from({"k": made}))
        assert len(fake.comments(REPO, 1)) == 1


async def test_check_repository(make_adapter: AdapterFactory):
    repos = {
        "org/private": {"private": True},
        "org/public": {"private": False},
        "org/noissues": {"private": True, "has_issues": False},
        "org/archived": {"private": True, "archived": True},
    }
    async with FakeGitHub(token=TOKEN, repos=repos) as fake:
        assert await make_adapter(fake, repo="org/private").check_repository() is None
        assert await make_adapter(fake, repo="org/public").check_repository() == (
            "github.repo org/public is public: incident details are confidential;"
            " set github.allow_public_repo: true to allow it"
        )
        public_ok = make_adapter(fake, repo="org/public", allow_public_repo=True)
        assert await public_ok.check_repository() is None
        assert await make_adapter(fake, repo="org/missing").check_repository() == (
            "github.repo org/missing not found or no access"
        )
        assert await make_adapter(fake, repo="org/noissues").check_repository() == (
            "github.repo org/noissues has issues disabled"
        )
        assert await make_adapter(fake, repo="org/archived").check_repository() == (
            "github.repo org/archived is archived (read-only)"
        )
        wrong_token = make_adapter(fake, token="ghp_wrong", repo="org/private")
        problem = await wrong_token.check_repository()
        assert problem is not None and "401" in problem
        fake.fail_next(r"^/repos/org/private$", status=503)
        problem = await make_adapter(fake, repo="org/private").check_repository()
        assert problem == "github.repo org/private could not be checked: " + (
            "github get repo org/private: HTTP 503"
        )


async def test_the_token_and_issue_text_stay_out_of_logs_and_reasons(
    gh: FakeGitHub, make_adapter: AdapterFactory, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter(gh)
    reasons: list[str] = []
    made = await open_issue(adapter)
    comment = {"issue": "k", "body": "Confidential: customer data at risk", "marker": "c1"}
    await adapter.run(job(comment, kind=JobKind.GITHUB_COMMENT), results_from({"k": made}))
    gh.fail_next(r"/issues$", status=502, method="POST", commit=True)
    gh.fail_next(r"/comments$", status=422, method="POST")
    for kind, payload in ((JobKind.GITHUB_ISSUE, ISSUE), (JobKind.GITHUB_COMMENT, comment)):
        with pytest.raises((RetryLater, PermanentFailure)) as err:
            await adapter.run(
                job({**payload, "marker": "again"}, kind=kind), results_from({"k": made})
            )
        reasons.append(err.value.reason)
    with pytest.raises(PermanentFailure) as err:
        await make_adapter(gh, token=TOKEN + "x").run(job(ISSUE, key="k3"), no_results)
    reasons.append(err.value.reason)

    assert caplog.records  # PyGithub/urllib3/the adapter did log
    for text in (caplog.text, " ".join(reasons), repr(adapter)):
        assert TOKEN not in text
        assert "Confidential" not in text
        assert ISSUE["title"] not in text


# --------------------------------------------------------------------------- comments


async def test_comment_goes_to_the_issue_of_the_named_job(gh: FakeGitHub, adapter: GitHubAdapter):
    await adapter.run(job({**ISSUE, "marker": "other"}, key="other"), no_results)
    made = await open_issue(adapter)
    assert made["number"] == 2
    payload = {"issue": "k", "body": "acked by @jane", "marker": "router:INC-42:ack"}
    calls_before = len(gh.calls)

    result = await adapter.run(job(payload, kind=JobKind.GITHUB_COMMENT), results_from({"k": made}))

    [comment] = gh.comments(REPO, 2)
    assert comment["body"] == "acked by @jane\n\n<!-- router:INC-42:ack -->"
    assert result == {"id": comment["id"], "html_url": comment["html_url"]}
    assert gh.comments(REPO, 1) == []
    # Lazy handles: one request, the POST (the visibility was read with the issue).
    assert [(c.method, c.path) for c in gh.calls[calls_before:]] == [
        ("POST", "/repos/org/ops/issues/2/comments")
    ]


async def test_comment_before_its_issue_exists_retries(gh: FakeGitHub, adapter: GitHubAdapter):
    payload = {"issue": "k", "body": "acked", "marker": "c1"}
    with pytest.raises(RetryLater) as err:
        await adapter.run(job(payload, kind=JobKind.GITHUB_COMMENT), no_results)
    assert err.value.reason == "waiting for job k"
    assert gh.calls == []


async def test_comment_retry_does_not_duplicate(gh: FakeGitHub, adapter: GitHubAdapter):
    made = await open_issue(adapter)
    results = results_from({"k": made})
    payload = {"issue": "k", "body": "acked", "marker": "c1"}
    gh.fail_next(r"/issues/1/comments$", status=500, method="POST", commit=True)
    with pytest.raises(RetryLater):
        await adapter.run(job(payload, kind=JobKind.GITHUB_COMMENT), results)

    again = await adapter.run(job(payload, kind=JobKind.GITHUB_COMMENT, attempts=2), results)

    [comment] = gh.comments(REPO, 1)
    assert again == {"id": comment["id"], "html_url": comment["html_url"]}
    assert len(gh.calls_to("POST", r"/comments$")) == 1


async def test_comment_on_a_missing_issue_is_permanent(gh: FakeGitHub, adapter: GitHubAdapter):
    payload = {"issue": "k", "body": "acked", "marker": "c1"}
    with pytest.raises(PermanentFailure) as err:
        await adapter.run(
            job(payload, kind=JobKind.GITHUB_COMMENT), results_from({"k": {"number": 99}})
        )
    assert "HTTP 404" in err.value.reason
    assert "org/ops#99" in err.value.reason


async def test_comment_refuses_an_issue_of_another_repo(gh: FakeGitHub, adapter: GitHubAdapter):
    other = {"number": 1, "url": f"{gh.base_url}/repos/org/elsewhere/issues/1"}
    payload = {"issue": "k", "body": "acked", "marker": "c1"}
    with pytest.raises(PermanentFailure, match="not in org/ops"):
        await adapter.run(job(payload, kind=JobKind.GITHUB_COMMENT), results_from({"k": other}))
    assert gh.calls == []


async def test_concurrent_jobs_do_not_mix_requests(
    gh: FakeGitHub, adapter: GitHubAdapter, monkeypatch: pytest.MonkeyPatch
):
    # PyGithub keeps one connection object per client: request() stores the verb, URL and
    # body on it and getresponse() sends what is stored, so two threads can swap requests
    # (one job's comment posted twice, another's never). Widen that window to show the
    # adapter runs its calls one at a time.
    original = HTTPRequestsConnectionClass.request

    def slow_request(self: HTTPRequestsConnectionClass, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        time.sleep(0.002)

    monkeypatch.setattr(HTTPRequestsConnectionClass, "request", slow_request)
    made = {}
    for n in range(4):
        made[f"i{n}"] = await adapter.run(
            job({**ISSUE, "marker": f"m{n}"}, key=f"i{n}"), no_results
        )
    jobs = [
        job(
            {"issue": f"i{n % 4}", "body": f"note {n}", "marker": f"c{n}"},
            kind=JobKind.GITHUB_COMMENT,
        )
        for n in range(16)
    ]

    refs = await asyncio.gather(*(adapter.run(j, results_from(made)) for j in jobs))

    for n in range(4):
        bodies = sorted(c["body"].split("\n")[0] for c in gh.comments(REPO, n + 1))
        assert bodies == sorted(f"note {m}" for m in range(16) if m % 4 == n)
    by_id = {c["id"]: c["body"] for n in range(4) for c in gh.comments(REPO, n + 1)}
    assert [by_id[ref["id"]].split("\n")[0] for ref in refs] == [f"note {n}" for n in range(16)]


# --------------------------------------------------------------------------- updates


async def test_update_closes_with_a_state_reason(gh: FakeGitHub, adapter: GitHubAdapter):
    made = await open_issue(adapter)
    payload = {"issue": "k", "state": "closed", "state_reason": "not_planned"}

    result = await adapter.run(job(payload, kind=JobKind.GITHUB_UPDATE), results_from({"k": made}))

    assert result == {"state": "closed"}
    issue = gh.issue(REPO, 1)
    assert (issue["state"], issue["state_reason"]) == ("closed", "not_planned")
    [patch] = gh.calls_to("PATCH", r"/issues/1$")
    assert patch.json == {"state": "closed", "state_reason": "not_planned"}


async def test_update_labels(gh: FakeGitHub, adapter: GitHubAdapter):
    made = await open_issue(adapter)
    results = results_from({"k": made})

    await adapter.run(
        job({"issue": "k", "labels": ["incident", "sev2"]}, kind=JobKind.GITHUB_UPDATE), results
    )
    assert [label["name"] for label in gh.issue(REPO, 1)["labels"]] == ["incident", "sev2"]


async def test_update_adds_labels(gh: FakeGitHub, adapter: GitHubAdapter):
    made = await open_issue(adapter)
    result = await adapter.run(
        job({"issue": "k", "add_labels": ["postmortem"]}, kind=JobKind.GITHUB_UPDATE),
        results_from({"k": made}),
    )
    assert result == {"state": "open"}
    assert "postmortem" in [label["name"] for label in gh.issue(REPO, 1)["labels"]]


async def test_update_swaps_one_label_and_keeps_the_others(gh: FakeGitHub, adapter: GitHubAdapter):
    made = await open_issue(adapter)  # labels: incident, sev1
    results = results_from({"k": made})
    await adapter.run(
        job({"issue": "k", "add_labels": ["customer-facing"]}, kind=JobKind.GITHUB_UPDATE),
        results,
    )
    swap = {"issue": "k", "remove_labels": ["sev1"], "add_labels": ["sev2"]}
    await adapter.run(job(swap, kind=JobKind.GITHUB_UPDATE), results)
    names = [label["name"] for label in gh.issue(REPO, 1)["labels"]]
    assert names == ["incident", "customer-facing", "sev2"]
    # a label already gone is not an error (a retried job, or a person removed it)
    await adapter.run(job(swap, kind=JobKind.GITHUB_UPDATE), results)
    assert [label["name"] for label in gh.issue(REPO, 1)["labels"]] == names


async def test_update_payload_is_checked(gh: FakeGitHub, adapter: GitHubAdapter):
    results = results_from({"k": {"number": 1}})
    for bad in (
        {"issue": "k"},
        {"issue": "k", "state": "resolved"},
        {"issue": "k", "state": "closed", "state_reason": "duplicate"},
        {"issue": "k", "labels": [1]},
    ):
        with pytest.raises(PermanentFailure):
            await adapter.run(job(bad, kind=JobKind.GITHUB_UPDATE), results)
    assert gh.calls == []


# --------------------------------------------------------------------------- failures


async def test_primary_rate_limit_waits_for_the_reset(gh: FakeGitHub, adapter: GitHubAdapter):
    gh.fail_next(r"^/repos/org/ops/issues$", status=403, method="POST", reset_in=120)
    with pytest.raises(RetryLater) as err:
        await open_issue(adapter)
    assert err.value.after is not None
    assert 118 <= err.value.after <= 122
    assert "rate limited (HTTP 403)" in err.value.reason
    assert gh.issues(REPO) == []


async def test_secondary_rate_limits(gh: FakeGitHub, adapter: GitHubAdapter):
    gh.fail_next(
        r"/issues$", status=403, message=SECONDARY_RATE_LIMIT_MESSAGE, remaining=4000, method="POST"
    )
    with pytest.raises(RetryLater) as err:
        await open_issue(adapter)
    assert err.value.after == 60

    gh.fail_next(r"/issues$", status=429, remaining=4000, retry_after=7, method="POST")
    with pytest.raises(RetryLater) as err:
        await open_issue(adapter)
    assert err.value.after == 7


async def test_search_rate_limit_retries(gh: FakeGitHub, adapter: GitHubAdapter):
    gh.fail_next(r"^/search/issues$", status=403, reset_in=30)
    with pytest.raises(RetryLater) as err:
        await open_issue(adapter)
    assert err.value.after is not None and 28 <= err.value.after <= 32
    assert "search" in err.value.reason
    assert gh.issues(REPO) == []


async def test_bad_credentials_are_permanent(gh: FakeGitHub, make_adapter: AdapterFactory):
    adapter = make_adapter(gh, token="ghp_wrong")
    with pytest.raises(PermanentFailure) as err:
        await open_issue(adapter)
    assert "HTTP 401" in err.value.reason


async def test_validation_failure_is_permanent(gh: FakeGitHub, adapter: GitHubAdapter):
    gh.fail_next(r"^/repos/org/ops/issues$", status=422, method="POST")
    with pytest.raises(PermanentFailure) as err:
        await open_issue(adapter)
    assert "HTTP 422" in err.value.reason


async def test_server_errors_and_disabled_issues(make_adapter: AdapterFactory):
    repos = {REPO: {"private": True}, "org/noissues": {"private": True, "has_issues": False}}
    async with FakeGitHub(token=TOKEN, repos=repos) as fake:
        fake.fail_next(r"^/repos/org/ops$", status=503)
        with pytest.raises(RetryLater, match="HTTP 503"):
            await open_issue(make_adapter(fake))
        with pytest.raises(PermanentFailure, match="HTTP 410"):
            await open_issue(make_adapter(fake, repo="org/noissues"))


async def test_unreachable_github_retries():
    adapter = GitHubAdapter("http://127.0.0.1:9", TOKEN, REPO, timeout=2)
    try:
        with pytest.raises(RetryLater, match="ConnectionError"):
            await open_issue(adapter)
    finally:
        await adapter.close()


async def test_enterprise_prefix(make_adapter: AdapterFactory):
    async with FakeGitHub(token=TOKEN, repos={REPO: {"private": True}}, prefix="/api/v3") as fake:
        adapter = make_adapter(fake)
        made = await open_issue(adapter)
        await adapter.run(
            job({"issue": "k", "body": "hi", "marker": "c"}, kind=JobKind.GITHUB_COMMENT),
            results_from({"k": made}),
        )
        assert made["url"] == f"{fake.origin}/api/v3/repos/org/ops/issues/1"
        assert len(fake.comments(REPO, 1)) == 1


def test_rate_limit_wait_prefers_retry_after_then_reset():
    now = time.time()
    assert rate_limit_wait({"Retry-After": "5", "x-ratelimit-remaining": "0"}, now) == 5
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 30)}
    assert 29 <= rate_limit_wait(reset, now) <= 31
    # A secondary limit: remaining is not 0, so the primary reset is not the wait.
    secondary = {"x-ratelimit-remaining": "10", "x-ratelimit-reset": str(int(now) + 3000)}
    assert rate_limit_wait(secondary, now) == 60


def test_unknown_errors_are_permanent():
    assert isinstance(github_failure("github x", ValueError("boom")), PermanentFailure)
