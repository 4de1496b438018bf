"""The console's pages: each reads once from the source and renders one template.

Handlers only read. Who may see an incident is asked here, for every row and page,
so a source cannot leak one by forgetting: a row the viewer may not see becomes a
:class:`~router.adapters.web.views.RedactedRow`, an incident page answers 403.
Logs carry incident numbers and user ids, never titles or alert text.
"""

from __future__ import annotations

import logging

from aiohttp import web

from router.adapters.web import charts, humane
from router.adapters.web.context import CONSOLE, SESSION, PageError, page
from router.adapters.web.sessions import Session
from router.adapters.web.views import (
    AGES,
    WINDOWS,
    AlertQuality,
    IncidentDetail,
    IncidentQuery,
    IncidentRow,
    QualityWindow,
    QueryError,
    RedactedRow,
    group_pages,
    mark_standouts,
)
from router.core.incident import IncidentStatus
from router.core.severity import Severity

log = logging.getLogger(__name__)


def _session(request: web.Request) -> Session:
    session: Session = request[SESSION]
    return session


def _bad_filter(exc: QueryError) -> PageError:
    return PageError(400, f"The filter “{exc.field}” cannot be read", exc.message)


async def incidents(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    viewer = _session(request).viewer
    try:
        query = IncidentQuery.from_query(request.query, console.clock.now())
    except QueryError as exc:
        raise _bad_filter(exc) from None
    rows: list[IncidentRow | RedactedRow] = []
    commanders: dict[str, str] = {}
    for row in await console.source.incidents(query):
        commanders[row.commander.user] = row.commander.label
        rows.append(row if console.access.may_view(viewer, row.access) else RedactedRow.of(row))
    return page(
        request,
        "incidents.html",
        rows=rows,
        query=query,
        statuses=["open", "all", *IncidentStatus],
        severities=list(Severity),
        ages=list(AGES),
        commanders=sorted(commanders.items(), key=lambda kv: kv[1].lower()),
    )


async def incident(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    viewer = _session(request).viewer
    number = int(request.match_info["number"])
    detail = await console.source.incident(number)
    if detail is None:
        raise PageError(404, f"No incident INC-{number}", "There is no incident with this number.")
    if not console.access.may_view(viewer, detail.access):
        log.warning("console: %s may not view INC-%d (confidential)", viewer.user, number)
        raise PageError(
            403,
            f"INC-{number} is confidential",
            "Only its responders and the responder group may see this incident.",
        )
    return page(request, "incident.html", incident=detail, alert_chart=alert_chart(detail))


def alert_chart(detail: IncidentDetail) -> tuple[str, str] | None:
    """(caption, SVG) of how the incident's alert paged lately: its alert quality."""
    if detail.alert_name is None or not detail.alert_days:
        return None
    caption = f"{detail.alert_name}: pages and declared per day, last {len(detail.alert_days)} days"
    days = [d.day.strftime("%d %b") for d in detail.alert_days]
    return caption, charts.bar_chart(
        caption,
        days,
        [
            charts.Series("pages", "pages", [d.pages for d in detail.alert_days]),
            charts.Series("declared", "incidents", [d.incidents for d in detail.alert_days]),
        ],
        width=charts.WIDE,
    )


async def pages(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    rows = await console.source.pages()
    total = max(await console.source.open_page_count(), len(rows))
    single, digests = group_pages(rows)
    return page(request, "pages.html", single=single, digests=digests, total=total, shown=len(rows))


async def quality(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    try:
        window = QualityWindow.from_query(request.query, console.clock.now())
    except QueryError as exc:
        raise _bad_filter(exc) from None
    report = await console.source.alert_quality(window)
    return page(
        request,
        "quality.html",
        report=report,
        rows=mark_standouts(report.rows),
        windows=WINDOWS,
        charts=quality_charts(report),
    )


def quality_charts(report: AlertQuality) -> list[tuple[str, str]]:
    """The alert-quality page's charts: (caption, SVG). Deciding takes minutes and
    resolving hours, so they get charts of their own rather than one flat line."""
    days = [d.day.strftime("%d %b") for d in report.per_day]
    timed = [d.day.strftime("%d %b") for d in report.durations]
    caption = (
        "Pages and incidents per day",
        "Time to decide a page (median per day)",
        "Time to mitigate and resolve (median per day)",
    )
    return [
        (
            caption[0],
            charts.bar_chart(
                caption[0],
                days,
                [
                    charts.Series("pages", "pages", [d.pages for d in report.per_day]),
                    charts.Series("incidents", "incidents", [d.incidents for d in report.per_day]),
                ],
                width=charts.WIDE,
            ),
        ),
        (
            caption[1],
            charts.duration_chart(
                caption[1],
                timed,
                [charts.Series("decide", "decide", [d.decide for d in report.durations])],
                humane.duration,
            ),
        ),
        (
            caption[2],
            charts.duration_chart(
                caption[2],
                timed,
                [
                    charts.Series("mitigate", "mitigate", [d.mitigate for d in report.durations]),
                    charts.Series("resolve", "resolve", [d.resolve for d in report.durations]),
                ],
                humane.duration,
            ),
        ),
    ]


async def stylesheet(request: web.Request) -> web.StreamResponse:
    sheet = request.app[CONSOLE].stylesheet
    cache = (
        "public, max-age=31536000, immutable"
        if request.query.get("v") == sheet.version
        else "no-cache"
    )
    return web.Response(
        body=sheet.body,
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": cache, "ETag": f'"{sheet.version}"'},
    )
