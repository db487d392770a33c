"""OpenAPI details Litestar cannot infer from handlers that parse their own query strings.

Query parameters are documented from the very rules that parse them (:class:`seeonline.api.params.Rule`),
so the document and the validation cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Parameter, Schema

from seeonline.api.listing import Resource, page_rules
from seeonline.api.params import Rule


def query_operation(
    rules: Mapping[str, Rule[Any]],
    *,
    described: Mapping[str, str] | None = None,
    required: tuple[str, ...] = (),
    media_types: Mapping[int, tuple[str, ...]] | None = None,
) -> type[Operation]:
    """An Operation class documenting the query parameters a handler parses itself, each by its rule.

    ``media_types`` adds the other content types a status may be answered in (CSV beside JSON, PNG or SVG),
    each a text or binary document rather than JSON.
    """
    extra = [_parameter(name, rule, (described or {}).get(name), name in required) for name, rule in rules.items()]

    @dataclass
    class QueryOperation(Operation):
        def __post_init__(self) -> None:
            self.parameters = [*(self.parameters or []), *extra]
            for status, types in (media_types or {}).items():
                response = (self.responses or {}).get(str(status))
                if isinstance(response, OpenAPIResponse):
                    response.content = {
                        **(response.content or {}),
                        **{kind: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)) for kind in types},
                    }

    return QueryOperation


def _parameter(name: str, rule: Rule[Any], description: str | None, required: bool) -> Parameter:
    # A copy per parameter (Litestar may annotate what it is given); the description goes on the parameter.
    schema = dataclasses.replace(rule.schema, description=None)
    is_list = schema.type == OpenAPIType.ARRAY
    return Parameter(
        name=name,
        param_in=ParamType.QUERY,
        required=required,
        description=description or rule.schema.description,
        schema=schema,
        # A list travels as one comma-separated value (``types=status,visibility``).
        style="form" if is_list else None,
        explode=False if is_list else None,
    )


def list_operation(resource: Resource, extra: Mapping[str, Rule[Any]] | None = None, **options: Any) -> type[Operation]:
    """An Operation class documenting a list endpoint's filters and pagination parameters."""
    rules = {name: spec.parse for name, spec in resource.filters.items()} | page_rules(resource) | dict(extra or {})
    return query_operation(rules, **options)


class ErrorBody(msgspec.Struct):
    """Every error response: ``detail``, plus a stable ``code`` and the offending ``field`` when they apply."""

    detail: str
    code: str | None = None
    field: str | None = None


class DeletedCount(msgspec.Struct):
    """The answer of the bulk deletes."""

    deleted_count: int


def error(description: str) -> ResponseSpec:
    """An error response documented by ``description`` (no generated examples: they would be nonsense)."""
    return ResponseSpec(ErrorBody, description=description, generate_examples=False)


ERROR_RESPONSES = {
    400: error("`invalid` or `parse_error`: an invalid body, filter or path value; `field` names it"),
    401: error("Missing or wrong X-API-Key"),
    404: error("`not_found`: no such row"),
    409: error("Unique clash (`unique`, `field`) or a domain refusal (`code`)"),
    415: error("`unsupported_media_type`: a body that is not JSON"),
    429: error("`throttled`: too many wrong keys from this address (see Retry-After)"),
    503: error("Database unreachable or busy, statement timeout (see Retry-After)"),
}


def returns(
    model: type[msgspec.Struct] | None,
    *,
    status: int = 200,
    many: bool = False,
    refusals: Mapping[int, str] | None = None,
) -> dict[int, ResponseSpec]:
    """OpenAPI responses for a handler that returns JSON rendered by Postgres (or nothing, for 204).

    ``refusals`` adds, per status, the refusals of a well-formed request that depend on what exists (a
    referenced row, Telegram's answer) and so cannot be stated by a schema, each as `code`: when.
    """
    responses = dict(ERROR_RESPONSES)
    for code, text in (refusals or {}).items():
        known = responses.get(code)
        responses[code] = error(
            f"{known.description}; also, however well-formed the request, {text}" if known else text
        )
    if model is not None:
        container: Any = list.__class_getitem__(model) if many else model
        description = "A JSON array" if many else "The full object"
        responses[status] = ResponseSpec(container, description=description, generate_examples=False)
    return responses


DOES_NOT_EXIST = "`does_not_exist`: `field` names a row that does not exist"
