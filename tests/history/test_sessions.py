"""Sessions: merges, exactness of starts and ends, filters, pages and CSV; overlap and heatmap."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import pytest

from tests.api.builders import Client
from tests.history import builders as b
from tests.history.builders import local

DAY = "2026-06-10"


async def person_with(
    db: Any, rows: Sequence[tuple[str, bool, str | None]], tz: str = "UTC", owner: int | None = None
) -> b.Subject:
    """A tracked user watched since June 1st, offline until ``rows``."""
    owner_id = owner if owner is not None else await b.owner(db, tz)
    person = await b.subject(db, owner_id, local(tz, "2026-06-01 00:00"))
    await b.statuses(db, person.id, [(local(tz, "2026-06-01 00:00"), False, "was_online")]
                     + [(local(tz, f"{DAY} {at}"), online, source) for at, online, source in rows])  # fmt: skip
    return person


WINDOW = {"created_at_after": f"{DAY}T00:00:00Z", "created_at_before": "2026-06-11T00:00:00Z"}
TWO_CLOSE = [("10:00", True, "push"), ("10:10", False, "was_online"), ("10:10:30", True, "push"),
             ("10:20", False, "was_online")]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "params", "expected"),
    [
        pytest.param(TWO_CLOSE, {}, [("10:00", "10:20", 1200.0, True, True)], id="short_gap_merges"),
        pytest.param(
            TWO_CLOSE,
            {"merge_gap_s": "0"},
            [("10:00", "10:10", 600.0, True, True), ("10:10:30", "10:20", 570.0, True, True)],
            id="no_merge_gap",
        ),
        pytest.param(
            TWO_CLOSE,
            {"merge_gap_s": "0", "min_duration_s": "590"},
            [("10:00", "10:10", 600.0, True, True)],
            id="min_duration_filters_after_merging",
        ),
        pytest.param(
            [("10:00", True, "push"), ("10:05", False, "expires")],
            {},
            [("10:00", "10:05", 300.0, True, False)],
            id="expires_closed_end_is_not_exact",
        ),
        pytest.param(
            [("10:00", True, "resync"), ("10:05", False, "was_online")],
            {},
            [("10:00", "10:05", 300.0, False, True)],
            id="resync_start_is_not_exact",
        ),
        pytest.param(
            [("10:00", True, "api"), ("10:00:20", True, "api"), ("10:05", False, "api")],
            {},
            [("10:00", "10:05", 300.0, True, True)],
            id="repeated_online_rows_are_one_session",
        ),
        pytest.param(
            [("10:00", True, "api"), ("10:00:20", True, "api"), ("10:05", False, "api")],
            {"merge_gap_s": "0"},
            [("10:00", "10:05", 300.0, True, True)],
            id="repeated_online_rows_are_one_session_without_a_merge_gap",
        ),
    ],
)
async def test_sessions(
    client: Client, db: Any, rows: list[tuple[str, bool, str | None]], params: dict[str, str], expected: list[Any]
) -> None:
    person = await person_with(db, rows)
    response = await client.get(f"/tracked-users/{person.id}/sessions/", params={**WINDOW, **params})
    assert response.status_code == 200, response.text
    got = [(s["started_at"], s["ended_at"], s["duration_s"], s["start_exact"], s["end_exact"]) for s in response.json()]
    assert got == [
        (local("UTC", f"{DAY} {start}").isoformat(), local("UTC", f"{DAY} {end}").isoformat(), length, s_exact, e_exact)
        for start, end, length, s_exact, e_exact in expected
    ]


async def test_daily_counts_raw_seconds_but_merged_sessions(client: Client, db: Any) -> None:
    person = await person_with(db, TWO_CLOSE)
    day = (await client.get(f"/tracked-users/{person.id}/daily/", params={"date_from": DAY, "date_to": DAY})).json()[0]
    assert day["online_s"] == 1170  # raw
    assert (day["sessions"], day["longest_s"]) == (1, 1200)  # merged
    assert day["first_online_at"] == local("UTC", f"{DAY} 10:00").isoformat()
    assert day["last_offline_at"] == local("UTC", f"{DAY} 10:20").isoformat()


async def test_session_clipped_at_window_start_is_not_exact(client: Client, db: Any) -> None:
    person = await person_with(db, [("23:00", True, "push")])
    await b.statuses(db, person.id, [(local("UTC", "2026-06-11 01:00"), False, "was_online")])
    before = {"created_at_after": f"{DAY}T00:00:00Z", "created_at_before": "2026-06-11T00:00:00Z"}
    after = {"created_at_after": "2026-06-11T00:00:00Z", "created_at_before": "2026-06-12T00:00:00Z"}
    first = (await client.get(f"/tracked-users/{person.id}/sessions/", params=before)).json()
    second = (await client.get(f"/tracked-users/{person.id}/sessions/", params=after)).json()
    assert first == [{"started_at": local("UTC", f"{DAY} 23:00").isoformat(), "ended_at": None, "duration_s": 3600,
                      "start_exact": True, "end_exact": False}]  # fmt: skip
    assert second[0]["start_exact"] is False
    assert second[0]["duration_s"] == 3600
    whole = (await client.get(f"/tracked-users/{person.id}/sessions/")).json()
    assert [s["duration_s"] for s in whole] == [7200]


async def test_sessions_pages_with_a_next_link(client: Client, db: Any) -> None:
    rows = [(f"{h:02d}:00", True, "push") for h in range(1, 6)] + [
        (f"{h:02d}:30", False, "was_online") for h in range(1, 6)
    ]
    person = await person_with(db, sorted(rows))
    page = await client.get(f"/tracked-users/{person.id}/sessions/", params={"limit": "2", "offset": "1"})
    assert [s["started_at"][11:16] for s in page.json()] == ["02:00", "03:00"]
    assert 'rel="next"' in page.headers["link"]
    assert "offset=3" in page.headers["link"]
    last = await client.get(f"/tracked-users/{person.id}/sessions/", params={"limit": "2", "offset": "4"})
    assert len(last.json()) == 1
    assert "link" not in last.headers


async def test_sessions_csv_in_the_zone(client: Client, db: Any) -> None:
    person = await person_with(db, [("10:00", True, "push"), ("10:05", False, "was_online")], tz="Europe/Berlin")
    for request in ({"params": {"format": "csv"}}, {"headers": {"Accept": "text/csv"}}):
        response = await client.get(f"/tracked-users/{person.id}/sessions/", **request)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert rows == [
            {"started_at": "2026-06-10T10:00:00.000000+02:00", "ended_at": "2026-06-10T10:05:00.000000+02:00",
             "duration_s": "300", "start_exact": "true", "end_exact": "true"}
        ]  # fmt: skip
    kolkata = await client.get(f"/tracked-users/{person.id}/sessions/", params={"format": "csv", "tz": "Asia/Kolkata"})
    assert "2026-06-10T13:30:00.000000+05:30" in kolkata.text
    assert (await client.get("/tracked-users/999999/sessions/", params={"format": "csv"})).status_code == 404
    bad = await client.get(f"/tracked-users/{person.id}/sessions/", params={"format": "xml"})
    assert (bad.status_code, bad.json()["field"]) == (400, "format")


async def test_online_statuses_csv_keeps_filters(client: Client, db: Any) -> None:
    person = await person_with(db, [("10:00", True, "push"), ("10:05", False, "was_online")])
    other = await person_with(db, [("11:00", True, "push")])
    response = await client.get(
        "/online-statuses/", params={"format": "csv", "tracked_user_id": str(person.id), "tz": "America/New_York"}
    )
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["tracked_user_id"] for row in rows] == [str(person.id)] * 3
    assert rows[1]["created_at"] == "2026-06-10T06:00:00.000000-04:00"
    assert (rows[1]["is_online"], rows[1]["source"]) == ("true", "push")
    assert other.id not in {int(row["tracked_user_id"]) for row in rows}
    paged = await client.get("/online-statuses/", params={"limit": "1"}, headers={"Accept": "text/csv"})
    assert len(paged.text.strip().splitlines()) == 2  # header + one row
    assert (await client.get("/online-statuses/", params={"format": "csv", "tz": "Nowhere/Land"})).status_code == 400


async def test_overlap_of_two_targets(client: Client, db: Any) -> None:
    owner = await b.owner(db, "UTC")
    first = await person_with(db, [("10:00", True, "push"), ("11:00", False, "was_online")], owner=owner)
    second = await person_with(db, [("10:30", True, "push"), ("12:00", False, "was_online")], owner=owner)
    response = await client.get(
        f"/tracked-users/{first.id}/overlap/",
        params={"other_id": str(second.id), "date_from": DAY, "date_to": "2026-06-11"},
    )
    assert response.status_code == 200, response.text
    overlap = response.json()
    assert overlap["overlap_s"] == 1800
    assert overlap["intervals"] == [
        {"started_at": local("UTC", f"{DAY} 10:30").isoformat(), "ended_at": local("UTC", f"{DAY} 11:00").isoformat()}
    ]
    assert overlap["days"] == [{"date": DAY, "overlap_s": 1800}, {"date": "2026-06-11", "overlap_s": 0}]
    assert overlap["known_both_s"] == 2 * 86400
    stranger = await person_with(db, [("10:00", True, "push")])
    refused = await client.get(f"/tracked-users/{first.id}/overlap/", params={"other_id": str(stranger.id)})
    assert (refused.status_code, refused.json()["field"]) == (400, "other_id")
    missing = await client.get(f"/tracked-users/{first.id}/overlap/")
    assert (missing.status_code, missing.json()["field"]) == (400, "other_id")


async def test_heatmap_cells_in_local_hours(client: Client, db: Any) -> None:
    # 2026-06-08 is a Monday; 10:00-11:30 in Kolkata (+05:30) is 04:30-06:00 UTC.
    person = await person_with(db, [], tz="Asia/Kolkata")
    await b.statuses(db, person.id, [(local("Asia/Kolkata", "2026-06-08 10:00"), True, "push"),
                                     (local("Asia/Kolkata", "2026-06-08 11:30"), False, "was_online")])  # fmt: skip
    response = await client.get(
        f"/tracked-users/{person.id}/heatmap/", params={"date_from": "2026-06-08", "date_to": "2026-06-14"}
    )
    assert response.status_code == 200, response.text
    cells = response.json()["cells"]
    assert len(cells) == 7 * 24
    by_key = {(cell["weekday"], cell["hour"]): cell for cell in cells}
    assert by_key[(0, 10)]["online_s"] == 3600
    assert by_key[(0, 11)]["online_s"] == 1800
    assert sum(cell["online_s"] for cell in cells) == 5400
    assert all(cell["known_s"] == 3600 for cell in cells)  # each weekday-hour once in a week, all known


async def test_heatmap_sums_a_repeated_hour_on_fall_back(client: Client, db: Any) -> None:
    person = await person_with(db, [], tz="America/New_York")
    response = await client.get(
        f"/tracked-users/{person.id}/heatmap/", params={"date_from": "2026-11-01", "date_to": "2026-11-01"}
    )
    sunday = {cell["hour"]: cell["known_s"] for cell in response.json()["cells"] if cell["weekday"] == 6}
    assert sunday[1] == 7200  # 01:00-02:00 happens twice
    assert sum(sunday.values()) == 90000
