"""The SQL routines (functions, views, triggers) in ``db/sql/``: a repeatable step after every upgrade.

Revisions in ``db/versions/`` own the tables and never change once shipped. The routines are the
current code instead: the files hold each function, view and trigger as it should be now, and every
``seeonline db upgrade`` makes the database match them. SeeOnline owns the functions and views named
``so_*`` and the triggers that call those functions; everything else in the schema is left alone.

Installing drops every owned routine and re-runs the files in the migration's transaction, so a
routine removed from the files disappears and a changed signature leaves no stale overload. That
takes short exclusive locks on the tables with triggers, so it is skipped when nothing changed: the
ledger table ``routines_installed`` keeps the files' checksum and the definitions Postgres reported
right after installing them, and ``db check`` compares the installed definitions with that record.
"""

from __future__ import annotations

import enum
import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from seeonline import paths
from seeonline.database.placeholders import substitute

SQL_DIR = paths.SQL_DIR  # the files this module installs (a test points it at an edited copy)
OWNED_PREFIX = "so\\_%"  # a LIKE pattern: the names of the functions and views SeeOnline owns

# (kind, identity) -> definition, for every routine SeeOnline owns in the current schema. Objects that
# an extension installed are not ours; triggers cloned onto partitions follow their parent's.
_INSTALLED = text(
    """
    SELECT 'function' AS kind, p.oid::regprocedure::text AS identity, pg_get_functiondef(p.oid) AS definition
    FROM pg_proc p
    WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE :owned AND p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.deptype = 'e')
    UNION ALL
    SELECT 'view', c.oid::regclass::text, pg_get_viewdef(c.oid)
    FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'v' AND c.relname LIKE :owned
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
    UNION ALL
    SELECT 'trigger', format('%I ON %s', t.tgname, t.tgrelid::regclass), pg_get_triggerdef(t.oid)
    FROM pg_trigger t
    JOIN pg_proc p ON p.oid = t.tgfoid
    WHERE NOT t.tgisinternal AND t.tgparentid = 0
      AND p.pronamespace = current_schema()::regnamespace AND p.proname LIKE :owned
    """
)
_RECORD = text(
    "INSERT INTO routines_installed (script_sha256, definitions) VALUES (:checksum, CAST(:definitions AS jsonb))"
)


class Step(enum.StrEnum):
    """What a migration run does with the routines (``db/env.py`` reads it from the Alembic config)."""

    INSTALL = "install"  # upgrade to head: reinstall what changed
    DROP = "drop"  # downgrade, or upgrade to an older revision: the routines belong to head
    VERIFY = "verify"  # db check: fail on drift


class RoutinesDriftError(Exception):
    """The installed routines are not what the files in ``db/sql/`` define."""


def sql_files() -> list[Path]:
    """The routine files, in the order they are applied."""
    return sorted(SQL_DIR.glob("*.sql"))


def load_script() -> str:
    """Every routine file, in order, with its placeholders substituted (:mod:`seeonline.database.placeholders`)."""
    return substitute("\n".join(path.read_text() for path in sql_files()))


def script_checksum(script: str) -> str:
    """What the ledger records to tell whether the files changed since they were installed."""
    return hashlib.sha256(script.encode()).hexdigest()


def installed(connection: Connection) -> dict[str, str]:
    """The definitions of every routine SeeOnline owns, keyed ``"<kind> <identity>"``."""
    rows = connection.execute(_INSTALLED, {"owned": OWNED_PREFIX}).all()
    return {f"{row.kind} {row.identity}": row.definition for row in rows}


def drop(connection: Connection) -> int:
    """Drop every routine SeeOnline owns (derived from the catalog); how many there were."""
    owned: dict[str, list[str]] = {"trigger": [], "view": [], "function": []}
    for key in installed(connection):
        kind, _, identity = key.partition(" ")
        owned[kind].append(identity)
    # Triggers before the functions they call; views, then functions, each kind in one statement so
    # dependencies among them do not matter.
    for trigger in owned["trigger"]:
        connection.exec_driver_sql(f"DROP TRIGGER {trigger}")
    if owned["view"]:
        connection.exec_driver_sql(f"DROP VIEW {', '.join(owned['view'])}")
    if owned["function"]:
        connection.exec_driver_sql(f"DROP FUNCTION {', '.join(owned['function'])}")
    return sum(len(identities) for identities in owned.values())


def _recorded(connection: Connection) -> tuple[str, dict[str, str]] | None:
    row = connection.execute(text("SELECT script_sha256, definitions FROM routines_installed")).first()
    if row is None:
        return None
    definitions = row.definitions if isinstance(row.definitions, dict) else json.loads(row.definitions)
    return row.script_sha256, definitions


def ensure_installed(connection: Connection) -> bool:
    """Make the installed routines match the files; False when they already did (nothing touched)."""
    script = load_script()
    checksum = script_checksum(script)
    if _recorded(connection) == (checksum, installed(connection)):
        return False
    drop(connection)
    # asyncpg's simple query protocol runs a multi-statement script in one call.
    driver_connection: Any = connection.connection.dbapi_connection
    driver_connection.run_async(lambda raw: raw.execute(script))
    definitions = json.dumps(installed(connection))
    connection.execute(text("DELETE FROM routines_installed"))
    connection.execute(_RECORD, {"checksum": checksum, "definitions": definitions})
    return True


def verify(connection: Connection) -> None:
    """Raise ``RoutinesDriftError`` naming what differs between the installed routines and the files."""
    recorded = _recorded(connection)
    if recorded is None:
        raise RoutinesDriftError("the SQL routines were never installed: run `seeonline db upgrade`")
    checksum, expected = recorded
    if checksum != script_checksum(load_script()):
        raise RoutinesDriftError("db/sql/ changed since the routines were installed: run `seeonline db upgrade`")
    actual = installed(connection)
    problems = [f"missing {key}" for key in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected {key}" for key in sorted(actual.keys() - expected.keys())]
    problems += [f"changed {key}" for key in sorted(expected.keys() & actual.keys()) if expected[key] != actual[key]]
    if problems:
        raise RoutinesDriftError(
            "installed SQL routines differ from db/sql/ (`seeonline db upgrade` reinstalls them): "
            + "; ".join(problems)
        )
