"""Read queries for a resource: one row by id, and filtered, ordered, paginated or streamed lists.

Every read is a single SQL statement that renders the contract's JSON in Postgres, so a request
costs one round trip and no Python objects per row.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import asyncpg
from litestar import Request, Response
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.response import Stream

from seeonline.api.disconnect import on_request_end
from seeonline.api.errors import ApiError, invalid, not_found
from seeonline.api.params import Rule, integer_schema, parse_id, parse_non_negative, shown
from seeonline.database.pool import StreamsBusyError, StreamSource

JSON = "application/json"
# Lists up to this size are answered from one query; larger ones are streamed from a cursor.
DIRECT_LIST_ROWS = 1000
# The largest page: a bigger ``limit`` is lowered to it silently, as DRF's ``max_limit`` does.
MAX_LIMIT = DIRECT_LIST_ROWS


@dataclass(frozen=True)
class Filter:
    """A query parameter: its parser and the SQL condition, with ``{}`` for the bound value."""

    parse: Rule[Any]
    condition: str


@dataclass(frozen=True)
class Resource:
    """How to read one contract resource: its name, rows, JSON shape, filters and orderings."""

    name: str
    source: str  # FROM clause; the resource's own table is aliased ``r``
    json: str  # SQL expression rendering one row as the contract's JSON object
    filters: Mapping[str, Filter]
    orderings: Mapping[str, str]  # field name -> SQL expression
    base_condition: str = "true"
    by_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", f"SELECT {self.json}::text FROM {self.source} WHERE r.id = $1")


def json_response(body: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    """A response with a JSON body rendered elsewhere (usually by Postgres)."""
    content = body.encode() if isinstance(body, str) else body
    return Response(content=content, status_code=status, media_type=JSON, headers=headers)


async def fetch_one(pool: asyncpg.Pool, resource: Resource, row_id: int) -> str:
    """The JSON of one row, or a 404."""
    body: str | None = await pool.fetchval(resource.by_id, row_id)
    if body is None:
        raise not_found(resource.name)
    return body


def where_clause(resource: Resource, query: Mapping[str, str], args: list[Any]) -> str:
    """Conditions for the filters present in ``query``, appending bound values to ``args``."""
    conditions = [resource.base_condition]
    for name, spec in resource.filters.items():
        raw = query.get(name)
        if raw is None or raw == "":
            continue
        args.append(spec.parse(name, raw))
        conditions.append(spec.condition.format(f"${len(args)}"))
    return " AND ".join(conditions)


def order_clause(resource: Resource, raw: str | None) -> str:
    """``ORDER BY`` for DRF's ``ordering`` (comma-separated fields, ``-`` for descending)."""
    terms: list[str] = []
    for part in (raw or "id").split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name.lstrip("-")
        if not name:
            continue
        expression = resource.orderings.get(name)
        if expression is None:
            raise invalid("ordering", f"cannot order by {shown(name)}; choose from {', '.join(resource.orderings)}")
        terms.append(f"{expression} {'DESC' if descending else 'ASC'}")
    if "r.id" not in {term.rsplit(" ", 1)[0] for term in terms}:
        terms.append("r.id ASC")  # a total order, so pages never overlap
    return ", ".join(terms)


async def list_response(
    pool: asyncpg.Pool, streams: StreamSource, resource: Resource, request: Request[Any, Any, Any]
) -> Response[Any]:
    """The list endpoint: a JSON array, one page with a ``Link`` header, or a stream."""
    query = {key: request.query_params[key] for key in request.query_params}
    args: list[Any] = []
    where = where_clause(resource, query, args)
    order = order_clause(resource, query.get("ordering"))
    select = f"SELECT {resource.json}::text FROM {resource.source} WHERE {where} ORDER BY {order}"

    # As DRF's LimitOffsetPagination: limit=0 (or none) means the whole list (and ignores offset, which
    # must still be valid); a larger limit than MAX_LIMIT is lowered to it, so a page is never unbounded.
    limit = parse_limit(query.get("limit") or "0")
    offset = parse_non_negative("offset", query.get("offset") or "0")
    if limit:
        rows = await pool.fetch(f"{select} LIMIT {limit + 1} OFFSET {offset}", *args)
        headers = {}
        if len(rows) > limit:
            rows = rows[:limit]
            headers["Link"] = f'<{next_page_url(request, limit, offset + limit)}>; rel="next"'
        return json_response("[" + ",".join(row[0] for row in rows) + "]", headers=headers)

    rows = await pool.fetch(f"{select} LIMIT {DIRECT_LIST_ROWS + 1}", *args)
    if len(rows) <= DIRECT_LIST_ROWS:
        return json_response("[" + ",".join(row[0] for row in rows) + "]")
    # Too many to hold: stream the whole list afresh from a cursor (one consistent snapshot).
    return Stream(await open_stream(streams, select, tuple(args)), media_type=JSON)


async def open_stream(
    streams: StreamSource, sql: str, args: tuple[Any, ...], *, head: str = "[", separator: str = ",", tail: str = "]"
) -> AsyncIterator[bytes]:
    """The chunks of a streamed answer (a JSON array by default; ``separator=""`` for CSV lines).

    The slot and the snapshot are taken now, before any header goes out, so a busy server answers 503
    rather than a cut-off 200; they are given back however the request ends, even if the body never starts.
    """
    try:
        stream = await streams.open(sql, args, head=head, separator=separator, tail=tail)
    except StreamsBusyError:
        raise ApiError(
            503, "Too many long answers are being streamed; retry shortly.", code="busy", headers={"Retry-After": "2"}
        ) from None
    on_request_end(stream.close)
    return stream.chunks()


def parse_limit(raw: str) -> int:
    """``limit``: a non-negative integer, capped at ``MAX_LIMIT``."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise invalid("limit", f"a valid integer is required, got {shown(raw)}") from None
    if value < 0:
        raise invalid("limit", "must not be negative")
    return min(value, MAX_LIMIT)


def _limit(_field: str, raw: str) -> int:
    return parse_limit(raw)


# Documented up to MAX_LIMIT: a larger limit is accepted too, and lowered to it.
LIMIT = Rule(_limit, integer_schema(0, MAX_LIMIT)).documented(
    description=f"Page size, at most {MAX_LIMIT} (a larger value is lowered to it); without it (or 0) the whole list"
    " is returned, streamed when long."
)
OFFSET = parse_non_negative.documented(description="Rows to skip (with limit; validated but ignored without it).")


def ordering_rule(resource: Resource) -> Rule[str]:
    """``ordering`` as the document shows it: the resource's orderable fields, ``-`` for descending, comma-separated.

    (The parser also skips empty terms and spaces around them.)
    """
    term = "-?(?:" + "|".join(re.escape(name) for name in resource.orderings) + ")"

    def parse(_field: str, raw: str) -> str:
        return order_clause(resource, raw)

    schema = Schema(
        type=OpenAPIType.STRING,
        pattern=f"^{term}(?:,{term})*$",
        description="Fields to order by, comma-separated, '-' prefix for descending; default id.",
    )
    return Rule(parse, schema)


def page_rules(resource: Resource) -> dict[str, Rule[Any]]:
    """The list parameters besides the filters: ``limit``, ``offset`` and ``ordering``."""
    return {"limit": LIMIT, "offset": OFFSET, "ordering": ordering_rule(resource)}


def next_page_url(request: Request[Any, Any, Any], limit: int, offset: int) -> str:
    """The absolute URL of the next page, keeping every other query parameter."""
    params = [(key, value) for key, value in request.query_params.multi_items() if key not in {"limit", "offset"}]
    params += [("limit", str(limit)), ("offset", str(offset))]
    return f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(params)}"


def path_id(raw: str, field: str = "id") -> int:
    """An id from the path, or a 400 naming it."""
    return parse_id(field, raw)
