"""HTTP routes for a tracked user's history: /tracked-users/{id}/sessions, timeline, daily, heatmap, overlap, chart."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Stream

from seeonline.api.handler_types import AnyRequest, PathId, Pool, Streams
from seeonline.api.listing import json_response, next_page_url, path_id
from seeonline.api.openapi import DOES_NOT_EXIST, query_operation, returns
from seeonline.api.params import parse_id
from seeonline.history import images
from seeonline.history.exports import CSV, statuses_csv
from seeonline.history.params import (
    CHART,
    DAY,
    MAX_DAYS,
    RANGE,
    SESSIONS,
    ChartQuery,
    DayQuery,
    RangeQuery,
    SessionQuery,
    parse_tz,
    wants_csv,
)
from seeonline.history.reads import HistoryReader
from seeonline.history.schemas import DayTotalsOut, HeatmapOut, OverlapOut, SessionOut, TimelineOut

# The range routes refuse a well-formed window that runs backwards or spans too long: no schema can say so.
RANGE_REFUSED = {400: f"`invalid_range`: `date_to` before `date_from`, or more than {MAX_DAYS} days after it"}


History = NamedDependency[HistoryReader]


def query_of(request: AnyRequest) -> dict[str, str]:
    """The query string as a plain mapping (the last value of a repeated key)."""
    return {key: request.query_params[key] for key in request.query_params}


class HistoryController(Controller):
    """Read-only history of one tracked user, computed in SQL in the viewer's time zone."""

    path = "/tracked-users"
    tags = ["history"]

    @get(
        "/{tracked_id:str}/sessions",
        operation_class=query_operation(SESSIONS, media_types={200: (CSV,)}),
        responses=returns(SessionOut, many=True),
    )
    async def sessions(self, request: AnyRequest, history: History, tracked_id: PathId) -> Response[Any]:
        """Online sessions (JSON, or CSV with ``format=csv`` / ``Accept: text/csv``)."""
        query = query_of(request)
        parsed = SessionQuery.parse(query)
        if wants_csv(query, request.headers.get("accept")):
            return Stream(await history.sessions_csv(path_id(tracked_id), parsed), media_type=CSV)
        body, more = await history.sessions(path_id(tracked_id), parsed)
        link = {"Link": f'<{next_page_url(request, parsed.limit, parsed.offset + parsed.limit)}>; rel="next"'}
        return json_response(body, headers=link if more else None)

    @get("/{tracked_id:str}/timeline", operation_class=query_operation(DAY), responses=returns(TimelineOut))
    async def timeline(self, request: AnyRequest, history: History, tracked_id: PathId) -> Response[bytes]:
        """One local day as online, offline and unknown segments."""
        view = await history.day(path_id(tracked_id), DayQuery.parse(query_of(request)))
        return json_response(view.body)

    @get(
        "/{tracked_id:str}/daily",
        operation_class=query_operation(RANGE),
        responses=returns(DayTotalsOut, many=True, refusals=RANGE_REFUSED),
    )
    async def daily(self, request: AnyRequest, history: History, tracked_id: PathId) -> Response[bytes]:
        """Totals per local day (at most 366 days)."""
        return json_response(await history.daily(path_id(tracked_id), RangeQuery.parse(query_of(request))))

    @get(
        "/{tracked_id:str}/heatmap",
        operation_class=query_operation(RANGE),
        responses=returns(HeatmapOut, refusals=RANGE_REFUSED),
    )
    async def heatmap(self, request: AnyRequest, history: History, tracked_id: PathId) -> Response[bytes]:
        """Online and known seconds per local weekday and hour."""
        return json_response(await history.heatmap(path_id(tracked_id), RangeQuery.parse(query_of(request))))

    @get(
        "/{tracked_id:str}/overlap",
        operation_class=query_operation(
            {"other_id": parse_id, **RANGE},
            described={"other_id": "Another tracked user of the same bot user"},
            required=("other_id",),
        ),
        responses=returns(OverlapOut, refusals={400: f"{RANGE_REFUSED[400]}; {DOES_NOT_EXIST} (`other_id`)"}),
    )
    async def overlap(self, request: AnyRequest, history: History, tracked_id: PathId) -> Response[bytes]:
        """When this target and ``other_id`` (the same bot user's) were online together."""
        query = query_of(request)
        other = parse_id("other_id", query.get("other_id") or "")
        return json_response(await history.overlap(path_id(tracked_id), other, RangeQuery.parse(query)))

    @get(
        "/{tracked_id:str}/chart",
        operation_class=query_operation(CHART, media_types={200: ("image/png", "image/svg+xml")}),
        responses={
            **returns(None),
            200: ResponseSpec(None, description="The day chart, image/png or image/svg+xml", media_type="image/png"),
            304: ResponseSpec(None, description="Not modified (If-None-Match matched the ETag)"),
        },
    )
    async def chart(self, request: AnyRequest, history: History, tracked_id: PathId) -> Response[bytes]:
        """The day chart as PNG or SVG."""
        query = ChartQuery.parse(query_of(request))
        view = await history.day(path_id(tracked_id), query.day)
        return await images.chart_response(view, query, request.headers.get("if-none-match"))


def online_statuses_csv_wanted(request: AnyRequest) -> bool:
    """Whether ``GET /online-statuses/`` asks for CSV."""
    return wants_csv(query_of(request), request.headers.get("accept"))


async def online_statuses_csv(request: AnyRequest, pool: Pool, streams: Streams) -> Stream:
    """``GET /online-statuses/`` as CSV (``tz`` for the times; default UTC)."""
    query = query_of(request)
    return Stream(await statuses_csv(pool, streams, query, parse_tz(query.get("tz"))), media_type=CSV)
