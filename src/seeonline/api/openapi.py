"""OpenAPI details Litestar cannot infer from handlers that parse their own query strings."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.enums import ParamType
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema

from seeonline.api.listing import Resource

PAGINATION = {
    "limit": "Page size; without it the whole list is returned (streamed).",
    "offset": "Rows to skip (with limit).",
    "ordering": "Field to order by, '-' prefix for descending; default id.",
}


def list_operation(resource: Resource) -> type[Operation]:
    """An Operation class documenting a list endpoint's filters and pagination parameters."""
    parameters = [
        Parameter(name=name, param_in=ParamType.QUERY, required=False, schema=Schema(type=OpenAPIType.STRING))
        for name in resource.filters
    ] + [
        Parameter(
            name=name,
            param_in=ParamType.QUERY,
            required=False,
            description=text,
            schema=Schema(type=OpenAPIType.STRING),
        )
        for name, text in PAGINATION.items()
    ]

    @dataclass
    class ListOperation(Operation):
        def __post_init__(self) -> None:
            self.parameters = [*(self.parameters or []), *parameters]

    return ListOperation


def query_operation(*names: str) -> type[Operation]:
    """An Operation class documenting extra optional query parameters (``force``, …)."""

    @dataclass
    class QueryOperation(Operation):
        def __post_init__(self) -> None:
            extra = [
                Parameter(name=name, param_in=ParamType.QUERY, required=False, schema=Schema(type=OpenAPIType.STRING))
                for name in names
            ]
            self.parameters = [*(self.parameters or []), *extra]

    return QueryOperation
