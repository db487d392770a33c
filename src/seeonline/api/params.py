"""Parsers for query and path values, DRF-compatible, each raising a 400 that names the field.

Every parser is a :class:`Rule`: the function together with the OpenAPI schema of what it accepts, both
built from the same constants, so the document never promises a value the parser refuses.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema
from litestar.params import PathParameter

from seeonline.api.errors import invalid

T = TypeVar("T")

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
TRUE_VALUES = frozenset({"true", "True", "1"})
FALSE_VALUES = frozenset({"false", "False", "0"})
NO_NUL = "^[^\\x00]*$"  # Postgres text cannot hold NUL

# Error messages quote at most this much of a client's value (a 1 MB value must not come back).
ECHO_CHARS = 60


@dataclass(frozen=True)
class Rule(Generic[T]):
    """A query or path value: how it is parsed (a 400 naming the field otherwise) and how OpenAPI describes it.

    The schema may be narrower than the parser, which also takes DRF's spellings (``True``, a date without
    a time, surrounding spaces), but never wider: whatever the schema allows, the parser accepts.
    """

    parse: Callable[[str, str], T]
    schema: Schema

    def __call__(self, field: str, raw: str) -> T:
        """Parse ``raw``, the value of ``field``."""
        return self.parse(field, raw)

    def documented(self, **schema: Any) -> Rule[T]:
        """The same rule with more said about it (``description``, ``default``)."""
        return Rule(self.parse, dataclasses.replace(self.schema, **schema))


def schema_fields(schema: Schema) -> dict[str, Any]:
    """The attributes ``schema`` sets, as Litestar's ``schema_extra`` takes them."""
    return {
        field.name: value for field in dataclasses.fields(schema) if (value := getattr(schema, field.name)) is not None
    }


def in_path(rule: Rule[Any]) -> PathParameter:
    """Litestar's marker for a path parameter the handler parses itself with ``rule``: documents it as ``rule`` does.

    (The handler takes the raw string so that a bad value is the contract's 400 naming the field.)
    """
    return PathParameter(schema_extra=schema_fields(rule.schema))


def shown(raw: str) -> str:
    """``raw`` quoted for an error message, shortened when long."""
    return repr(raw) if len(raw) <= ECHO_CHARS else f"{raw[:ECHO_CHARS]!r}… ({len(raw)} characters)"


def _integer(field: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise invalid(field, f"a valid integer is required, got {shown(raw)}") from None
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        raise invalid(field, "integer out of range")
    return value


def integer_schema(low: int, high: int) -> Schema:
    """An integer in ``low..high`` (exact: Python ints, where Litestar's own bounds are floats)."""
    return Schema(type=OpenAPIType.INTEGER, minimum=low, maximum=high)


parse_int = Rule(_integer, integer_schema(BIGINT_MIN, BIGINT_MAX))
"""A 64-bit integer."""

# Ids are identity values and start at 1; a smaller one is still a valid integer, naming no row (a 404).
parse_id = Rule(_integer, integer_schema(1, BIGINT_MAX))
"""A row id."""


def int_between(low: int, high: int) -> Rule[int]:
    """An integer in ``low..high``."""

    def parse(field: str, raw: str) -> int:
        value = _integer(field, raw)
        if not low <= value <= high:
            raise invalid(field, f"must be between {low} and {high}")
        return value

    return Rule(parse, integer_schema(low, high))


def _boolean(field: str, raw: str) -> bool:
    if raw in TRUE_VALUES:
        return True
    if raw in FALSE_VALUES:
        return False
    raise invalid(field, f"must be true/false, True/False or 1/0, got {shown(raw)}")


parse_bool = Rule(_boolean, Schema(type=OpenAPIType.BOOLEAN, description="true/false (also True/False, 1/0)"))
"""``true/false``, ``True/False`` or ``1/0``."""


def _text(field: str, raw: str) -> str:
    if "\x00" in raw:
        raise invalid(field, "must not contain NUL characters")
    return raw


parse_text = Rule(_text, Schema(type=OpenAPIType.STRING, pattern=NO_NUL))
"""Any string without NUL characters (Postgres rejects them)."""


def text_matching(pattern: str) -> Rule[str]:
    """Text documented by ``pattern``: values that cannot match it are still parsed, and simply match no row."""
    return Rule(_text, Schema(type=OpenAPIType.STRING, pattern=pattern))


FIRST_INSTANT = datetime.datetime.min.replace(tzinfo=datetime.UTC)
LAST_INSTANT = datetime.datetime.max.replace(tzinfo=datetime.UTC)
# The first and last representable days are left out of the document: on them a zone offset (at most a day)
# can carry a time out of range, and asyncpg stores their extreme instants as -infinity/infinity.
REPRESENTABLE_DAYS = f"^(?!{FIRST_INSTANT.date().isoformat()}|{LAST_INSTANT.date().isoformat()})"
EXAMPLE_INSTANT = "2026-01-01T12:00:00+00:00"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _datetime(field: str, raw: str) -> datetime.datetime:
    text = raw.strip().replace(" ", "T", 1) if not _DATE_ONLY.match(raw.strip()) else raw.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise invalid(field, f"a date or ISO 8601 date-time is required, got {shown(raw)}") from None
    return to_utc(field, value)


parse_datetime = Rule(
    _datetime,
    Schema(
        type=OpenAPIType.STRING,
        format=OpenAPIFormat.DATE_TIME,
        pattern=REPRESENTABLE_DAYS,
        description="ISO 8601; also a date (2025-01-01) or a date-time without offset, taken as UTC",
        examples=[EXAMPLE_INSTANT],
    ),
)
"""A date or ISO 8601 date-time; without an offset it is UTC."""


def to_utc(field: str, value: datetime.datetime) -> datetime.datetime:
    """``value`` in UTC (naive means UTC), or a 400 when it falls outside the representable years."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    try:
        value = value.astimezone(datetime.UTC)
    except OverflowError:
        raise invalid(field, "date-time out of range") from None
    # asyncpg stores the very first and last representable instants as -infinity/infinity.
    if value in (FIRST_INSTANT, LAST_INSTANT):
        raise invalid(field, "date-time out of range")
    return value


def choice_parser(*choices: str) -> Rule[str]:
    """A rule accepting one of ``choices``."""

    def parse(field: str, raw: str) -> str:
        if raw not in choices:
            raise invalid(field, f"{shown(raw)} is not one of {', '.join(choices)}")
        return raw

    return Rule(parse, Schema(type=OpenAPIType.STRING, enum=list(choices)))


PAGE_MAX = 2**62  # far beyond any table, and safe to add to without overflowing a bigint

parse_non_negative = int_between(0, PAGE_MAX)
"""A non-negative integer (offsets, event ids)."""
