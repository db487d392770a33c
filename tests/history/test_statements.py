"""The history statements' plans: the sweep inlined into each (planned once per connection), no JIT."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from seeonline.database.pool import create_pool
from seeonline.history import daily, resources
from tests.history import builders as b

DAY = datetime.date(2026, 6, 10)
GAP, STALE, NONE = datetime.timedelta(seconds=60), resources.UPTIME_STALE, datetime.timedelta(0)


def statements(subject: int, other: int) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Every statement that sweeps a history, with arguments."""
    first = DAY - datetime.timedelta(days=29)
    return {
        "timeline_stored": (daily.TIMELINE_STORED, (subject, None, DAY, STALE)),
        "timeline_swept": (resources.TIMELINE_SWEPT, (subject, None, DAY, STALE)),
        "daily_stored": (daily.DAILY_STORED, (subject, None, first, DAY, STALE, GAP)),
        "daily_swept": (daily.DAILY_SWEPT, (subject, None, first, DAY, STALE, GAP)),
        "heatmap": (resources.HEATMAP, (subject, None, first, DAY, STALE)),
        "overlap": (resources.OVERLAP, (subject, None, first, DAY, other, STALE, GAP)),
        "sessions": (resources.SESSIONS_PAGE, (subject, None, None, None, STALE, GAP, NONE, 0, None)),
        "sessions_csv": (resources.SESSIONS_CSV, (subject, None, None, None, STALE, GAP, NONE)),
    }


@pytest.mark.parametrize("name", list(statements(0, 0)))
async def test_the_sweep_is_inlined_and_never_jit_compiled(db: Any, name: str) -> None:
    """A call of ``so_history_pieces`` left as a function scan is planned again on every execution (~6 ms),
    and a cost estimate above ``jit_above_cost`` would compile the statement each time."""
    owner = await b.owner(db, "Europe/Berlin")
    subject = await b.subject(db, owner, datetime.datetime(2026, 6, 1, tzinfo=b.UTC))
    other = await b.subject(db, owner, datetime.datetime(2026, 6, 1, tzinfo=b.UTC))
    sql, args = statements(subject.id, other.id)[name]
    for mode in ("force_custom_plan", "force_generic_plan"):
        await db.execute(f"SET plan_cache_mode = {mode}")
        plan = "\n".join(row[0] for row in await db.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + sql, *args))
        assert "so_history_pieces" not in plan, plan
        assert "JIT" not in plan, plan


async def test_api_sessions_never_jit_compile(database_url: str) -> None:
    pool = await create_pool(database_url, size=1)
    try:
        assert await pool.fetchval("SHOW jit") == "off"
    finally:
        await pool.close()
