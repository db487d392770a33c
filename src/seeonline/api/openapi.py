"""OpenAPI details Litestar cannot infer from handlers that parse their own query strings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema

from seeonline.api.listing import Resource

PAGINATION = {
    "limit": "Page size, at most 1000 (a larger value is lowered to it); without it (or 0) the whole list is"
    " returned, streamed when long.",
    "offset": "Rows to skip (with limit; validated but ignored without it).",
    "ordering": "Fields to order by, comma-separated, '-' prefix for descending; default id.",
}


def query_operation(*names: str, described: dict[str, str] | None = None) -> type[Operation]:
    """An Operation class documenting optional query parameters the handler parses itself."""
    descriptions = {**dict.fromkeys(names, None), **(described or {})}
    extra = [
        Parameter(
            name=name,
            param_in=ParamType.QUERY,
            required=False,
            description=text,
            schema=Schema(type=OpenAPIType.STRING),
        )
        for name, text in descriptions.items()
    ]

    @dataclass
    class QueryOperation(Operation):
        def __post_init__(self) -> None:
            self.parameters = [*(self.parameters or []), *extra]

    return QueryOperation


def list_operation(resource: Resource) -> type[Operation]:
    """An Operation class documenting a list endpoint's filters and pagination parameters."""
    return query_operation(*resource.filters, described=PAGINATION)


class ErrorBody(msgspec.Struct):
    """Every error response: ``detail``, plus a stable ``code`` and the offending ``field`` when they apply."""

    detail: str
    code: str | None = None
    field: str | None = None


class DeletedCount(msgspec.Struct):
    """The answer of the bulk deletes."""

    deleted_count: int


ERROR_RESPONSES = {
    400: ResponseSpec(ErrorBody, description="Invalid body, filter or path value; `field` names it"),
    401: ResponseSpec(ErrorBody, description="Missing or wrong X-API-Key"),
    404: ResponseSpec(ErrorBody, description="No such row"),
    409: ResponseSpec(ErrorBody, description="Unique clash (`field`) or a domain refusal (`code`)"),
    415: ResponseSpec(ErrorBody, description="`unsupported_media_type`: a body that is not JSON"),
    429: ResponseSpec(ErrorBody, description="`throttled`: too many wrong keys from this address (see Retry-After)"),
    503: ResponseSpec(ErrorBody, description="Database unreachable or busy, statement timeout (see Retry-After)"),
}


def returns(model: type[msgspec.Struct] | None, *, status: int = 200, many: bool = False) -> dict[int, ResponseSpec]:
    """OpenAPI responses for a handler that returns JSON rendered by Postgres (or nothing, for 204)."""
    responses = dict(ERROR_RESPONSES)
    if model is not None:
        container: Any = list.__class_getitem__(model) if many else model
        responses[status] = ResponseSpec(container, description="A JSON array" if many else "The full object")
    return responses
