"""The SET clause of an UPDATE built from a PATCH body's fields, with numbered parameters."""

from __future__ import annotations

from typing import Any


def set_clause(values: dict[str, Any], args: list[Any]) -> str:
    """``col = $n, …`` for ``values``, appending them to ``args`` (column names come from Structs)."""
    parts = []
    for column, value in values.items():
        args.append(value)
        parts.append(f"{column} = ${len(args)}")
    return ", ".join(parts)
