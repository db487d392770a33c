"""Request bodies: strict msgspec decoding into Structs, with 400s that name the field."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

import msgspec

from seeonline.api.params import BIGINT_MAX, BIGINT_MIN, EXAMPLE_INSTANT, REPRESENTABLE_DAYS


def documented(**schema: Any) -> dict[str, Any]:
    """``extra_json_schema`` for a msgspec ``Meta`` that sets these attributes of the field's OpenAPI schema.

    Litestar copies the ``extra`` entry over what it derived (``pattern``, ``maximum``, ``read_only``, ...).
    """
    return {"extra": schema}


def bounded(low: int, high: int) -> msgspec.Meta:
    """An integer in ``low..high``, for msgspec and, exactly, for the document.

    Litestar writes the bounds it derives as floats, and ``float(2**63 - 1)`` is ``2**63``, a value the
    decoder refuses: the document gets the exact integers instead.
    """
    return msgspec.Meta(ge=low, le=high, extra_json_schema=documented(minimum=low, maximum=high))


BigInt = Annotated[int, bounded(BIGINT_MIN, BIGINT_MAX)]
PositiveInt32 = Annotated[int, bounded(1, 2**31 - 1)]
Count = Annotated[int, bounded(0, 2**31 - 1)]
Id = Annotated[int, bounded(1, BIGINT_MAX)]
# Every date-time, in requests and responses: answered with an explicit offset; the example says so.
Instant = Annotated[
    datetime.datetime,
    msgspec.Meta(examples=[EXAMPLE_INSTANT], extra_json_schema=documented(pattern=REPRESENTABLE_DAYS)),
]


def provided(update: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually carried."""
    return {name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not msgspec.UNSET}
