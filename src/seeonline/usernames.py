"""Telegram usernames as SeeOnline matches them: one leading ``@`` dropped, compared case-insensitively.

The same rule is written once for Python (``normalize``) and once for SQL (``sql_normalized``); a test
table holds them to the same answers. What a username may be is written once too (``CORE``): the validator
and the OpenAPI document both take it from here.
"""

from __future__ import annotations

import re

# Telegram's rule: 5-32 letters, digits and underscores, starting with a letter.
CORE = "[A-Za-z][A-Za-z0-9_]{4,31}"
RULE = re.compile(f"^{CORE}$")
# How a client may send one: with one optional leading "@" (surrounding spaces are tolerated as well).
PATTERN = f"^@?{CORE}$"


def display_form(raw: str) -> str:
    """The spelling kept for display: surrounding spaces and one leading ``@`` removed."""
    return raw.strip().removeprefix("@")


def normalize(raw: str) -> str:
    """The key a target is stored and matched under (lower case, no leading ``@``)."""
    return display_form(raw).lower()


def sql_normalized(value: str) -> str:
    """SQL for ``normalize(value)``; ``value`` is an SQL expression such as ``$1``."""
    return f"lower(regexp_replace(btrim({value}, E' \\t\\n\\r\\f\\v'), '^@', ''))"
