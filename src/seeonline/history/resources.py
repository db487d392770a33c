"""The history reads: one SQL statement each over ``so_history_pieces`` (db/sql/06_history.sql).

Each statement renders its JSON in Postgres. The subject (``$1``) is a tracked user; ``$2`` is the zone
(NULL: its bot user's ``timezone``). A statement answers no row for an unknown tracked user, and a
``problem`` instead of a body when a value only SQL can check (a defaulted range, the other target's
owner) is refused.
"""

from __future__ import annotations

import datetime

from seeonline.lease import HEARTBEAT_INTERVAL

# An uptime whose worker has not beaten for this long ended at its last heartbeat (the worker died).
UPTIME_STALE = datetime.timedelta(seconds=3 * HEARTBEAT_INTERVAL)
DEFAULT_RANGE_DAYS = 30

SUBJECT = """subject AS (
    SELECT u.id, u.telegram_user_id, u.target_id, u.username, u.created_at, coalesce($2::text, p.timezone) AS tz,
           p.theme
    FROM tracked_users u JOIN telegram_users p ON p.id = u.telegram_user_id
    WHERE u.id = $1
)"""


def sessions_from(pieces: str, gap: str, name: str = "sessions") -> str:
    """CTEs deriving ``name`` (started_at, ended_at, open, start_exact, end_exact, first_part, last_part) from
    the CTE ``pieces``.

    Sessions are runs of online pieces, cut where time becomes unknown, then merged across gaps shorter
    than ``gap``: over the online pieces alone, a piece that does not touch the one before (the pieces are
    contiguous, so a gap means time in another state) starts a session when that gap is long enough.
    ``open``: still running at the window's end (``ended_at`` is that end). Exact: the start is an online
    row with an exact time (the session's first piece is ``by_exact_row``), the end an offline row with one.
    Window passes in one order and one grouping: no sort per session.
    """
    return f"""{name}_next AS (
    SELECT p.started_at, p.ended_at, p.state, p.part, p.by_exact_row,
           lead(p.state) OVER w AS next_state, lead(p.by_exact_row) OVER w AS next_by_exact_row
    FROM {pieces} p WINDOW w AS (ORDER BY p.started_at)
),
{name}_numbered AS (
    SELECT *, count(*) FILTER (WHERE gap IS NULL OR (gap > interval '0' AND gap >= {gap}))
                  OVER (ORDER BY started_at) AS session
    FROM (SELECT *, started_at - lag(ended_at) OVER (ORDER BY started_at) AS gap
          FROM {name}_next WHERE state = 'online') gapped
),
{name} AS (
    SELECT min(started_at) AS started_at, max(ended_at) AS ended_at, bool_or(next_state IS NULL) AS open,
           coalesce(min(started_at) FILTER (WHERE by_exact_row) = min(started_at), false) AS start_exact,
           coalesce(max(started_at) FILTER (WHERE next_state = 'offline' AND next_by_exact_row) = max(started_at),
                    false) AS end_exact,
           min(part) AS first_part, max(part) AS last_part
    FROM {name}_numbered GROUP BY session
)"""


def seconds(expression: str) -> str:
    """An interval as seconds (a JSON number, milliseconds kept)."""
    return f"coalesce(round(extract(epoch FROM {expression})::numeric, 3)::float8, 0)"


def segments_of(pieces: str, per: str | None = None) -> str:
    """A query of the segments of the CTE ``pieces`` (each day's apart when ``per`` names its column): runs of
    consecutive pieces of one state and reason."""
    partition, keys = (f"PARTITION BY {per} ", f"{per}, ") if per else ("", "")
    return f"""SELECT {keys}state, reason, min(started_at) AS started_at, max(ended_at) AS ended_at
    FROM (SELECT *, count(*) FILTER (WHERE starts) OVER ({partition}ORDER BY started_at) AS segment
          FROM (SELECT *, ROW(lag(state) OVER w, lag(reason) OVER w) IS DISTINCT FROM ROW(state, reason) AS starts
                FROM {pieces} WINDOW w AS ({partition}ORDER BY started_at)) marked) numbered
    GROUP BY {keys}segment, state, reason"""


# A day's segments as the timeline lists them (an aggregate over segments_of's rows).
SEGMENTS_JSON = """coalesce(json_agg(json_build_object(
        'state', state, 'started_at', started_at, 'ended_at', ended_at, 'reason', reason
    ) ORDER BY started_at), '[]'::json)"""


def timeline_json(day: str, tz: str, *, online: str, offline: str, unknown: str, segments: str) -> str:
    """The timeline's body from SQL expressions for its parts."""
    return f"""json_build_object(
    'date', {day}, 'tz', {tz}, 'online_s', {seconds(online)}, 'offline_s', {seconds(offline)},
    'unknown_s', {seconds(unknown)}, 'segments', {segments})"""


# $3 date (NULL: today in the zone), $4 stale. Consecutive pieces of one state and reason are a segment.
TIMELINE_DAY = f"""{SUBJECT},
day AS (
    SELECT s.*, chosen AS day, so_local_midnight(chosen, s.tz) AS starts_at,
           so_local_midnight(chosen + 1, s.tz) AS ends_at
    FROM subject s, coalesce($3::date, (now() AT TIME ZONE s.tz)::date) chosen
)"""
TIMELINE_SWEPT = f"""
WITH {TIMELINE_DAY},
pieces AS (
    SELECT p.* FROM day, so_history_pieces(day.id, day.starts_at, day.ends_at, now(), $4, NULL) p
),
segments AS ({segments_of("pieces")})
SELECT NULL::text AS problem, (SELECT {
    timeline_json(
        "day.day",
        "day.tz",
        online="sum(ended_at - started_at) FILTER (WHERE state = 'online')",
        offline="sum(ended_at - started_at) FILTER (WHERE state = 'offline')",
        unknown="sum(ended_at - started_at) FILTER (WHERE state = 'unknown')",
        segments=SEGMENTS_JSON,
    )
}
FROM segments)::text AS body, day.username::text, day.theme::text, day.ends_at <= now() AS past
FROM day
"""

# A range of local days: $3 date_from, $4 date_to (NULL: today, and 30 days up to date_to). ``days`` numbers
# them from 0 (none when the range is refused); ``bounds`` has the range's first and last instants.
RANGE = f"""{SUBJECT},
span AS (
    SELECT s.*, coalesce($3::date, last_day - {DEFAULT_RANGE_DAYS - 1}) AS first_day, last_day
    FROM subject s, coalesce($4::date, (now() AT TIME ZONE s.tz)::date) last_day
),
validated AS (
    SELECT span.*, CASE WHEN last_day < first_day THEN 'date_from'
                        WHEN last_day - first_day >= 366 THEN 'date_from' END AS problem
    FROM span
),
days AS (
    SELECT d.day - c.first_day AS n, d.* FROM validated c, so_local_days(c.first_day, c.last_day, c.tz) d
    WHERE c.problem IS NULL
),
bounds AS (
    SELECT c.*, (SELECT min(starts_at) FROM days) AS lo, (SELECT max(ends_at) FROM days) AS hi
    FROM validated c
)"""

# Known pieces of the range split into local hours; weekday 0 = Monday. $5 stale.
HEATMAP = f"""
WITH {RANGE},
pieces AS (
    SELECT p.* FROM bounds b, so_history_pieces(b.id, b.lo, b.hi, now(), $5, NULL) p
    WHERE b.problem IS NULL AND p.state <> 'unknown'
),
hours AS (
    SELECT p.state, greatest(p.started_at, h) AS started_at, least(p.ended_at, h + interval '1 hour') AS ended_at,
           (h AT TIME ZONE b.tz) AS local_hour
    FROM pieces p, bounds b,
         LATERAL (SELECT p.started_at - make_interval(
             mins => extract(minute FROM p.started_at AT TIME ZONE b.tz)::int,
             secs => extract(second FROM p.started_at AT TIME ZONE b.tz)) AS first_hour) f,
         generate_series(f.first_hour, p.ended_at - interval '1 microsecond', interval '1 hour') h
),
cells AS (
    SELECT extract(isodow FROM local_hour)::int - 1 AS weekday, extract(hour FROM local_hour)::int AS hour,
           sum(ended_at - started_at) FILTER (WHERE state = 'online') AS online,
           sum(ended_at - started_at) AS known
    FROM hours GROUP BY 1, 2
)
SELECT b.problem, CASE WHEN b.problem IS NULL THEN json_build_object('cells', (
    SELECT json_agg(json_build_object(
        'weekday', w, 'hour', hr, 'online_s', {seconds("c.online")}, 'known_s', {seconds("c.known")}
    ) ORDER BY w, hr)
    FROM generate_series(0, 6) w CROSS JOIN generate_series(0, 23) hr
    LEFT JOIN cells c ON c.weekday = w AND c.hour = hr
))::text END AS body
FROM bounds b
"""

# Two targets of one bot user ($5 the other, $6 stale, $7 merge gap): both online (merged sessions) and
# both known, over the range.
OVERLAP = f"""
WITH {RANGE},
other AS (
    SELECT o.id FROM tracked_users o, bounds b WHERE o.id = $5 AND o.telegram_user_id = b.telegram_user_id
),
checked AS (
    SELECT b.*, coalesce(b.problem, CASE WHEN NOT EXISTS (SELECT 1 FROM other) THEN 'other_id' END) AS refused
    FROM bounds b
),
pieces_a AS (SELECT p.* FROM checked c, so_history_pieces(c.id, c.lo, c.hi, now(), $6, NULL) p WHERE c.refused IS NULL),
pieces_b AS (SELECT p.* FROM checked c, so_history_pieces($5, c.lo, c.hi, now(), $6, NULL) p WHERE c.refused IS NULL),
{sessions_from("pieces_a", "$7", "sessions_a")},
{sessions_from("pieces_b", "$7", "sessions_b")},
sessions AS (
    SELECT started_at, ended_at FROM sessions_a UNION ALL SELECT started_at, ended_at FROM sessions_b
),
known AS (
    SELECT started_at, ended_at FROM pieces_a WHERE state <> 'unknown'
    UNION ALL SELECT started_at, ended_at FROM pieces_b WHERE state <> 'unknown'
),
-- Each list is disjoint in itself, so where two intervals are open at once both targets are in one.
both_online AS (
    SELECT at AS started_at, next_at AS ended_at FROM (
        SELECT at, lead(at) OVER (ORDER BY at) AS next_at, sum(d) OVER (ORDER BY at) AS open
        FROM (SELECT at, sum(d) AS d FROM (
            SELECT started_at AS at, 1 AS d FROM sessions UNION ALL SELECT ended_at, -1 FROM sessions
        ) e GROUP BY at) m
    ) r WHERE open = 2 AND next_at > at
),
both_known AS (
    SELECT sum(next_at - at) AS length FROM (
        SELECT at, lead(at) OVER (ORDER BY at) AS next_at, sum(d) OVER (ORDER BY at) AS open
        FROM (SELECT at, sum(d) AS d FROM (
            SELECT started_at AS at, 1 AS d FROM known UNION ALL SELECT ended_at, -1 FROM known
        ) e GROUP BY at) m
    ) r WHERE open = 2
),
overlap_days AS (
    SELECT d.day, d.ended_at - d.started_at AS length
    FROM both_online o, checked c, so_split_by_day(o.started_at, o.ended_at, c.tz) d
)
SELECT c.refused AS problem, CASE WHEN c.refused IS NULL THEN json_build_object(
    'overlap_s', {seconds("(SELECT sum(ended_at - started_at) FROM both_online)")},
    'known_both_s', {seconds("(SELECT length FROM both_known)")},
    'days', (SELECT json_agg(json_build_object(
        'date', days.day,
        'overlap_s', {seconds("(SELECT sum(length) FROM overlap_days o WHERE o.day = days.day)")}
    ) ORDER BY days.day) FROM days),
    'intervals', coalesce((SELECT json_agg(json_build_object('started_at', started_at, 'ended_at', ended_at)
                           ORDER BY started_at) FROM both_online), '[]'::json)
)::text END AS body
FROM checked c
"""

# $3 after (NULL: from the tracked user's creation or first row, whichever is earlier), $4 before (NULL:
# unbounded), $5 stale, $6 merge gap, $7 shortest, then LIMIT/OFFSET.
SESSIONS_FROM = f"""
WITH {SUBJECT},
span AS (
    SELECT s.id, coalesce($3::timestamptz, least(s.created_at, coalesce(
               (SELECT min(o.created_at) FROM online_statuses o WHERE o.tracked_user_id = s.id), s.created_at))) AS lo
    FROM subject s
),
pieces AS (
    SELECT p.* FROM span, so_history_pieces(span.id, span.lo, coalesce($4::timestamptz, 'infinity'), now(), $5, NULL) p
),
{sessions_from("pieces", "$6", "merged")},
found AS (SELECT * FROM merged WHERE ended_at - started_at >= $7)"""

SESSION_JSON = f"""json_build_object(
    'started_at', started_at, 'ended_at', CASE WHEN open THEN NULL ELSE ended_at END,
    'duration_s', {seconds("ended_at - started_at")}, 'start_exact', start_exact, 'end_exact', end_exact)"""


# $8 offset, $9 limit (NULL: all): one page, and whether rows follow it.
SESSIONS_PAGE = f"""{SESSIONS_FROM},
numbered AS (SELECT *, row_number() OVER (ORDER BY started_at) AS n FROM found)
SELECT (SELECT count(*) FROM subject) AS found_subject,
       coalesce((SELECT json_agg({SESSION_JSON} ORDER BY started_at) FROM numbered
                 WHERE n > $8 AND ($9::bigint IS NULL OR n <= $8 + $9)), '[]'::json)::text AS body,
       EXISTS (SELECT 1 FROM numbered WHERE $9::bigint IS NOT NULL AND n > $8 + $9) AS more"""


# CSV lines (times in the zone). The header is written by the caller.
SESSIONS_CSV = f"""{SESSIONS_FROM}
SELECT concat_ws(',', so_local_iso(started_at, subject.tz),
                 CASE WHEN open THEN '' ELSE so_local_iso(ended_at, subject.tz) END,
                 {seconds("ended_at - started_at")}, start_exact::text, end_exact::text) || E'\\n'
FROM found, subject ORDER BY started_at"""
SESSIONS_CSV_HEADER = "started_at,ended_at,duration_s,start_exact,end_exact\n"

# Checked before a stream starts; the zone too, so a zone this Postgres lacks is a 400, not a broken stream.
SUBJECT_EXISTS = (
    "SELECT EXISTS (SELECT 1 FROM tracked_users WHERE id = $1) FROM (SELECT now() AT TIME ZONE coalesce($2, 'UTC')) z"
)
