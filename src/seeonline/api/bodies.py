"""Request bodies: strict msgspec decoding into Structs, with 400s that name the field."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

BigInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
PositiveInt32 = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


def provided(update: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually carried."""
    return {name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not msgspec.UNSET}
