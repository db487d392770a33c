"""The ``@NAME@`` tokens the routine files in ``db/sql/`` use, so the SQL spells no name or value twice.

Channel names and lock keys come from :mod:`seeonline.database.channels`; every value of a closed set
(health states, roles, visibilities, status sources, unknown-time reasons, event types) is
``@<SET>_<MEMBER>@``, a quoted literal, and a few named sets of them are comma lists for ``IN (...)``.
"""

from __future__ import annotations

import enum
import re

from seeonline.choices import EventType, Role, StatusSource, UnknownReason, Visibility, sql_list
from seeonline.database.channels import SQL_PLACEHOLDERS
from seeonline.health import NEVER_RUN_STATES, HealthState
from seeonline.history.daily import SQL_PLACEHOLDERS as HISTORY_PLACEHOLDERS

ENUMS: dict[str, type[enum.StrEnum]] = {
    "HEALTH": HealthState,
    "ROLE": Role,
    "VISIBILITY": Visibility,
    "SOURCE": StatusSource,
    "REASON": UnknownReason,
    "EVENT": EventType,
}
SETS = {"HEALTH_NEVER_RUN": NEVER_RUN_STATES}
TOKEN = re.compile(r"@[A-Z][A-Z0-9_]*@")


class UnknownPlaceholderError(ValueError):
    """A routine file uses a token nothing defines (a typo would otherwise install as literal text)."""


def placeholders() -> dict[str, str]:
    """Every token and the SQL text it stands for."""
    values = dict(SQL_PLACEHOLDERS) | HISTORY_PLACEHOLDERS
    for prefix, values_of in ENUMS.items():
        values |= {f"@{prefix}_{member.name}@": sql_list([member.value]) for member in values_of}
    values |= {f"@{name}@": sql_list(members) for name, members in SETS.items()}
    return values


def substitute(script: str) -> str:
    """``script`` with every token replaced; raises on a token nothing defines."""
    values = placeholders()

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token not in values:
            msg = f"db/sql: unknown placeholder {token}"
            raise UnknownPlaceholderError(msg)
        return values[token]

    return TOKEN.sub(replace, script)
