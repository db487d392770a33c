"""Day timelines and daily totals: midnight, DST days, carry-in, open sessions, unknown time and its reasons."""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.builders import Client, follow, person, tracker, username
from tests.history import builders as b
from tests.history.builders import local

Row = tuple[str, bool, str | None]  # local time, is_online, source


@dataclass(frozen=True)
class Case:
    """A day of recorded facts and what its timeline must say."""

    name: str
    tz: str
    day: str
    rows: list[Row]
    online_s: float
    offline_s: float
    unknown_s: float
    segments: list[tuple[str, str, str, str | None]] | None = None  # state, local start, local end, reason
    since: str | None = None  # the tracked user's creation (default: a week before)
    facts: list[tuple[str, str, str]] = field(default_factory=list)  # ("down"|"hidden"|"unwatched", start, end)


CASES = [
    Case(
        "session_crossing_midnight_counts_on_both_days",
        "Europe/Berlin",
        "2026-11-10",
        [("2026-11-09 23:30", True, "push"), ("2026-11-10 00:40", False, "was_online")],
        online_s=2400,
        offline_s=86400 - 2400,
        unknown_s=0,
        segments=[
            ("online", "2026-11-10 00:00", "2026-11-10 00:40", None),
            ("offline", "2026-11-10 00:40", "2026-11-11 00:00", None),
        ],
    ),
    Case(
        "spring_forward_day_in_berlin_has_23_hours",
        "Europe/Berlin",
        "2026-03-29",
        [
            ("2026-03-28 12:00", False, "was_online"),
            ("2026-03-29 01:30", True, "push"),
            ("2026-03-29 03:30", False, "was_online"),
        ],
        online_s=3600,  # 01:30 CET -> 03:30 CEST is one real hour
        offline_s=82800 - 3600,
        unknown_s=0,
    ),
    Case(
        "fall_back_day_in_new_york_has_25_hours",
        "America/New_York",
        "2026-11-01",
        [
            ("2026-10-31 12:00", False, "was_online"),
            ("2026-11-01 01:30", True, "push"),
            ("2026-11-01 01:30 #2", False, "was_online"),
        ],
        online_s=3600,  # 01:30 EDT -> 01:30 EST
        offline_s=90000 - 3600,
        unknown_s=0,
    ),
    Case(
        "state_before_the_day_is_carried_in",
        "UTC",
        "2026-06-10",
        [("2026-06-09 10:00", True, "push"), ("2026-06-11 02:00", False, "was_online")],
        online_s=86400,
        offline_s=0,
        unknown_s=0,
    ),
    Case(
        "tracker_down_is_unknown_and_cuts_the_session",
        "UTC",
        "2026-06-10",
        [("2026-06-10 11:30", True, "push"), ("2026-06-10 12:30", False, "resync")],
        online_s=1800,
        offline_s=86400 - 1800 - 3600,
        unknown_s=3600,
        segments=[
            ("offline", "2026-06-10 00:00", "2026-06-10 11:30", None),
            ("online", "2026-06-10 11:30", "2026-06-10 12:00", None),
            ("unknown", "2026-06-10 12:00", "2026-06-10 13:00", "tracker_down"),
            ("offline", "2026-06-10 13:00", "2026-06-11 00:00", None),
        ],
        facts=[("down", "2026-06-10 12:00", "2026-06-10 13:00")],
    ),
    Case(
        "hidden_status_is_unknown_not_offline",
        "UTC",
        "2026-06-10",
        [("2026-06-10 14:50", True, "push")],  # then the target hides: no offline row comes
        online_s=600,
        offline_s=86400 - 600 - 3600 * 9,
        unknown_s=3600 * 9,
        segments=[
            ("offline", "2026-06-10 00:00", "2026-06-10 14:50", None),
            ("online", "2026-06-10 14:50", "2026-06-10 15:00", None),
            ("unknown", "2026-06-10 15:00", "2026-06-11 00:00", "hidden"),
        ],
        facts=[("hidden", "2026-06-10 15:00", "")],
    ),
    Case(
        "time_without_a_tracker_is_unassigned",
        "UTC",
        "2026-06-10",
        [],
        online_s=0,
        offline_s=18 * 3600,
        unknown_s=6 * 3600,
        facts=[("unwatched", "2026-06-10 18:00", "")],
    ),
    Case(
        "rows_at_one_instant_the_later_wins",
        "UTC",
        "2026-06-10",
        [("2026-06-10 10:00", True, "push"), ("2026-06-10 10:00", False, "was_online")],
        online_s=0,
        offline_s=86400,
        unknown_s=0,
    ),
    Case(
        "hidden_since_before_the_day_is_carried_in",
        "UTC",
        "2026-06-10",
        [],
        online_s=0,
        offline_s=18 * 3600,
        unknown_s=6 * 3600,
        segments=[
            ("unknown", "2026-06-10 00:00", "2026-06-10 06:00", "hidden"),
            ("offline", "2026-06-10 06:00", "2026-06-11 00:00", None),
        ],
        facts=[("hidden", "2026-06-09 20:00", "2026-06-10 06:00")],
    ),
    Case(
        "before_the_subscription_is_before_tracking",
        "UTC",
        "2026-06-10",
        [("2026-06-10 06:00", False, "was_online")],
        online_s=0,
        offline_s=18 * 3600,
        unknown_s=6 * 3600,
        segments=[
            ("unknown", "2026-06-10 00:00", "2026-06-10 06:00", "before_tracking"),
            ("offline", "2026-06-10 06:00", "2026-06-11 00:00", None),
        ],
        since="2026-06-10 06:00",
    ),
]


async def build(db: Any, case: Case) -> b.Subject:
    """The case's bot user, tracked user and facts."""
    owner = await b.owner(db, case.tz)
    day = datetime.date.fromisoformat(case.day)
    since = local(case.tz, case.since) if case.since else local(case.tz, f"{day - datetime.timedelta(days=7)} 00:00")
    down = [fact for fact in case.facts if fact[0] == "down"]
    unwatched = [fact for fact in case.facts if fact[0] == "unwatched"]
    person = await b.subject(db, owner, since, watched_by=None)
    # Watched by tracker 1 from creation (until an "unwatched" fact), up except for "down" facts.
    await b.watch(db, person.target_id, 1, since, local(case.tz, unwatched[0][1]) if unwatched else None)
    edges = [since] + [t for _, start, end in down for t in (local(case.tz, start), local(case.tz, end))]
    for begin, until in zip(edges[::2], [*edges[1::2], None], strict=False):
        await b.uptime(db, 1, begin, until)
    for kind, start, end in case.facts:
        if kind == "hidden":
            await b.visibility(db, person.target_id, local(case.tz, start), "hidden")
            if end:
                await b.visibility(db, person.target_id, local(case.tz, end), "visible")
    rows = [(local(case.tz, "2026-01-01 00:00"), False, "was_online")] if case.since is None else []
    await b.statuses(db, person.id, rows + [(local(case.tz, at), online, source) for at, online, source in case.rows])
    return person


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_timeline(client: Client, db: Any, case: Case) -> None:
    person = await build(db, case)
    response = await client.get(f"/tracked-users/{person.id}/timeline/", params={"date": case.day})
    assert response.status_code == 200, response.text
    timeline = response.json()
    assert timeline["date"] == case.day
    assert timeline["tz"] == case.tz  # the bot user's zone by default
    assert (timeline["online_s"], timeline["offline_s"], timeline["unknown_s"]) == (
        case.online_s,
        case.offline_s,
        case.unknown_s,
    )
    segments = timeline["segments"]
    assert segments[0]["started_at"] == local(case.tz, f"{case.day} 00:00").isoformat()
    for previous, following in itertools.pairwise(segments):
        assert previous["ended_at"] == following["started_at"]  # contiguous
        assert (previous["state"], previous["reason"]) != (following["state"], following["reason"])  # merged
    if case.segments is not None:
        expected = [
            {"state": state, "started_at": local(case.tz, start).isoformat(),
             "ended_at": local(case.tz, end).isoformat(), "reason": reason}
            for state, start, end, reason in case.segments
        ]  # fmt: skip
        assert segments == expected


async def test_daily_counts_a_midnight_session_on_both_days(client: Client, db: Any) -> None:
    person = await build(db, CASES[0])
    response = await client.get(
        f"/tracked-users/{person.id}/daily/", params={"date_from": "2026-11-09", "date_to": "2026-11-11"}
    )
    assert response.status_code == 200, response.text
    days = {day["date"]: day for day in response.json()}
    assert days["2026-11-09"]["online_s"] == 1800
    assert days["2026-11-10"]["online_s"] == 2400
    assert days["2026-11-11"]["online_s"] == 0
    assert days["2026-11-09"]["sessions"] == days["2026-11-10"]["sessions"] == 1
    assert days["2026-11-09"]["last_offline_at"] is None  # the session ended the next day
    assert days["2026-11-10"]["last_offline_at"] == local("Europe/Berlin", "2026-11-10 00:40").isoformat()
    assert days["2026-11-10"]["first_online_at"] == local("Europe/Berlin", "2026-11-10 00:00").isoformat()
    assert all(day["known_s"] == 86400 for day in days.values())


async def test_daily_dst_days_and_other_zones(client: Client, db: Any) -> None:
    person = await build(db, CASES[1])
    response = await client.get(
        f"/tracked-users/{person.id}/daily/", params={"date_from": "2026-03-28", "date_to": "2026-03-30"}
    )
    known = [day["known_s"] for day in response.json()]
    assert known == [86400, 82800, 86400]
    # The same facts seen from New York: its days are 24 h then, and the session falls on 2026-03-28.
    response = await client.get(
        f"/tracked-users/{person.id}/daily/",
        params={"date_from": "2026-03-28", "date_to": "2026-03-28", "tz": "America/New_York"},
    )
    assert response.json()[0]["online_s"] == 3600


async def test_daily_a_merged_gap_over_a_whole_dst_day_is_one_session_on_it(client: Client, db: Any) -> None:
    # Offline 23:30 on March 28th until 00:10 on March 30th (Berlin): 23 h 40 min, merged with a gap of a day.
    # The 23-hour day between lies wholly inside that session's gap.
    owner = await b.owner(db, "Europe/Berlin")
    person = await b.subject(db, owner, local("Europe/Berlin", "2026-03-01 00:00"))
    await b.statuses(db, person.id, [(local("Europe/Berlin", "2026-03-01 00:00"), False, "was_online"),
                                     (local("Europe/Berlin", "2026-03-28 23:00"), True, "push"),
                                     (local("Europe/Berlin", "2026-03-28 23:30"), False, "was_online"),
                                     (local("Europe/Berlin", "2026-03-30 00:10"), True, "push"),
                                     (local("Europe/Berlin", "2026-03-30 01:00"), False, "was_online")])  # fmt: skip
    params = {"date_from": "2026-03-28", "date_to": "2026-03-30", "merge_gap_s": "86400"}
    days = (await client.get(f"/tracked-users/{person.id}/daily/", params=params)).json()
    assert [(day["online_s"], day["sessions"], day["longest_s"]) for day in days] == [
        (1800, 1, 3600), (0, 1, 82800), (3000, 1, 3600)]  # fmt: skip
    assert days[1]["first_online_at"] == local("Europe/Berlin", "2026-03-29 00:00").isoformat()
    ended = local("Europe/Berlin", "2026-03-30 01:00").isoformat()
    assert [day["last_offline_at"] for day in days] == [None, None, ended]


async def test_daily_a_session_ending_at_midnight_belongs_to_its_day(client: Client, db: Any) -> None:
    owner = await b.owner(db, "Europe/Berlin")
    person = await b.subject(db, owner, local("Europe/Berlin", "2026-11-01 00:00"))
    await b.statuses(db, person.id, [(local("Europe/Berlin", "2026-11-01 00:00"), False, "was_online"),
                                     (local("Europe/Berlin", "2026-11-09 22:00"), True, "push"),
                                     (local("Europe/Berlin", "2026-11-10 00:00"), False, "was_online")])  # fmt: skip
    params = {"date_from": "2026-11-09", "date_to": "2026-11-10"}
    days = (await client.get(f"/tracked-users/{person.id}/daily/", params=params)).json()
    assert [(day["online_s"], day["sessions"]) for day in days] == [(7200, 1), (0, 0)]
    assert days[0]["last_offline_at"] == local("Europe/Berlin", "2026-11-10 00:00").isoformat()


async def test_a_days_figures_do_not_depend_on_the_range_asked_for(client: Client, db: Any) -> None:
    # Online 23:58:00-23:59:40, offline 40 s over midnight, online 00:00:20-00:30: one merged session (gap 60 s)
    # from 23:58 to 00:30. Each day must say the same whether it is asked for alone or with its neighbour.
    owner = await b.owner(db, "UTC")
    person = await b.subject(db, owner, local("UTC", "2026-11-01 00:00"))
    await b.statuses(db, person.id, [(local("UTC", "2026-11-01 00:00"), False, "was_online"),
                                     (local("UTC", "2026-11-09 23:58"), True, "push"),
                                     (local("UTC", "2026-11-09 23:59:40"), False, "was_online"),
                                     (local("UTC", "2026-11-10 00:00:20"), True, "push"),
                                     (local("UTC", "2026-11-10 00:30"), False, "was_online")])  # fmt: skip

    async def daily(first: str, last: str) -> dict[str, Any]:
        response = await client.get(f"/tracked-users/{person.id}/daily/", params={"date_from": first, "date_to": last})
        assert response.status_code == 200, response.text
        return {day["date"]: day for day in response.json()}

    both = await daily("2026-11-09", "2026-11-10")
    assert (await daily("2026-11-09", "2026-11-09"))["2026-11-09"] == both["2026-11-09"]
    assert (await daily("2026-11-10", "2026-11-10"))["2026-11-10"] == both["2026-11-10"]
    assert both["2026-11-09"]["last_offline_at"] is None  # the session went on after midnight
    assert (both["2026-11-09"]["longest_s"], both["2026-11-09"]["online_s"]) == (120, 100)
    assert both["2026-11-10"]["first_online_at"] == local("UTC", "2026-11-10 00:00").isoformat()
    assert (both["2026-11-10"]["longest_s"], both["2026-11-10"]["online_s"]) == (1800, 1780)


async def test_open_session_runs_until_now(client: Client, db: Any) -> None:
    owner = await b.owner(db, "UTC")
    now = datetime.datetime.now(b.UTC)
    person = await b.subject(db, owner, now - datetime.timedelta(days=2))
    await b.statuses(db, person.id, [(now - datetime.timedelta(days=1), False, "was_online"),
                                     (now - datetime.timedelta(minutes=10), True, "push")])  # fmt: skip
    sessions = (await client.get(f"/tracked-users/{person.id}/sessions/")).json()
    assert len(sessions) == 1
    assert sessions[0]["ended_at"] is None
    assert 600 <= sessions[0]["duration_s"] < 700
    timeline = (await client.get(f"/tracked-users/{person.id}/timeline/")).json()
    assert timeline["segments"][-1]["state"] == "online"
    assert datetime.datetime.fromisoformat(timeline["segments"][-1]["ended_at"]) >= now


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../etc/passwd"}, "tz"),
        ({"date": "2026-02-30"}, "date"),
        ({"date": "yesterday"}, "date"),
    ],
)
async def test_bad_day_values_are_400_naming_them(client: Client, db: Any, raw: dict[str, str], field: str) -> None:
    person = await build(db, CASES[3])
    response = await client.get(f"/tracked-users/{person.id}/timeline/", params=raw)
    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_range_limits(client: Client, db: Any) -> None:
    person = await build(db, CASES[3])
    too_long = await client.get(
        f"/tracked-users/{person.id}/daily/", params={"date_from": "2025-01-01", "date_to": "2026-01-02"}
    )
    assert too_long.status_code == 400
    assert too_long.json()["field"] == "date_to"
    backwards = await client.get(
        f"/tracked-users/{person.id}/daily/", params={"date_from": "2026-01-02", "date_to": "2026-01-01"}
    )
    assert backwards.status_code == 400
    defaulted_too_long = await client.get(f"/tracked-users/{person.id}/daily/", params={"date_from": "2020-01-01"})
    assert defaulted_too_long.status_code == 400
    assert defaulted_too_long.json()["field"] == "date_from"
    assert len((await client.get(f"/tracked-users/{person.id}/daily/")).json()) == 30
    assert (await client.get("/tracked-users/999999/daily/")).status_code == 404
    assert (await client.get("/tracked-users/999999/timeline/")).status_code == 404


async def test_rows_posted_through_the_api_count_as_known(client: Client) -> None:
    # No worker ever watched this target: only the rows the bot posted say anything, and they are believed.
    await tracker(client)
    tracked = await follow(client, await person(client), username())
    for at, online in [
        ("2025-05-05T08:00:00Z", False),
        ("2025-05-05T10:00:00Z", True),
        ("2025-05-05T10:30:00Z", False),
    ]:
        body = {"tracked_user_id": tracked["id"], "is_online": online, "created_at": at}
        assert (await client.post("/online-statuses/", json=body)).status_code == 201
    timeline = (await client.get(f"/tracked-users/{tracked['id']}/timeline/", params={"date": "2025-05-05"})).json()
    assert [(s["state"], s["reason"]) for s in timeline["segments"]] == [
        ("unknown", "before_tracking"),
        ("offline", None),
        ("online", None),
        ("offline", None),
    ]
    assert (timeline["online_s"], timeline["unknown_s"]) == (1800, 8 * 3600)
