"""Parsers for query and path values, DRF-compatible, each raising a 400 that names the field."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from seeonline.api.errors import invalid

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
TRUE_VALUES = frozenset({"true", "True", "1"})
FALSE_VALUES = frozenset({"false", "False", "0"})

Parser = Callable[[str, str], Any]
# Error messages quote at most this much of a client's value (a 1 MB value must not come back).
ECHO_CHARS = 60


def shown(raw: str) -> str:
    """``raw`` quoted for an error message, shortened when long."""
    return repr(raw) if len(raw) <= ECHO_CHARS else f"{raw[:ECHO_CHARS]!r}… ({len(raw)} characters)"


def parse_int(field: str, raw: str) -> int:
    """A 64-bit integer."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise invalid(field, f"a valid integer is required, got {shown(raw)}") from None
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        raise invalid(field, "integer out of range")
    return value


def parse_bool(field: str, raw: str) -> bool:
    """``true/false``, ``True/False`` or ``1/0``."""
    if raw in TRUE_VALUES:
        return True
    if raw in FALSE_VALUES:
        return False
    raise invalid(field, f"must be true/false, True/False or 1/0, got {shown(raw)}")


def parse_text(field: str, raw: str) -> str:
    """Any string without NUL characters (Postgres rejects them)."""
    if "\x00" in raw:
        raise invalid(field, "must not contain NUL characters")
    return raw


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_datetime(field: str, raw: str) -> datetime.datetime:
    """A date or ISO 8601 date-time; without an offset it is UTC."""
    text = raw.strip().replace(" ", "T", 1) if not _DATE_ONLY.match(raw.strip()) else raw.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise invalid(field, f"a date or ISO 8601 date-time is required, got {shown(raw)}") from None
    return to_utc(field, value)


FIRST_INSTANT = datetime.datetime.min.replace(tzinfo=datetime.UTC)
LAST_INSTANT = datetime.datetime.max.replace(tzinfo=datetime.UTC)


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


def choice_parser(*choices: str) -> Parser:
    """A parser accepting one of ``choices``."""

    def parse(field: str, raw: str) -> str:
        if raw not in choices:
            raise invalid(field, f"{shown(raw)} is not one of {', '.join(choices)}")
        return raw

    return parse


PAGE_MAX = 2**62  # far beyond any table, and safe to add to without overflowing a bigint


def parse_non_negative(field: str, raw: str) -> int:
    """A non-negative integer (limit and offset)."""
    value = parse_int(field, raw)
    if not 0 <= value <= PAGE_MAX:
        raise invalid(field, f"must be between 0 and {PAGE_MAX}")
    return value
