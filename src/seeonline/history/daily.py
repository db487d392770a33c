"""The daily route's statements, and those that store its days (history_days, db/sql/08_history_days.sql).

A range of days is read back from the stored days where they cover it (``DAILY_STORED``), else swept over
``so_history_pieces`` (``DAILY_SWEPT``): one round trip either way, through ``so_daily``. The supervisor's
housekeeping stores the days with ``STORE_DAYS``; both compute a day's figures with ``day_figures``.
"""

from __future__ import annotations

from seeonline.history.resources import (
    RANGE,
    SEGMENTS_JSON,
    TIMELINE_DAY,
    TIMELINE_SWEPT,
    UPTIME_STALE,
    seconds,
    segments_of,
    sessions_from,
    timeline_json,
)


def day_figures(stale: str, gap: str) -> str:
    """CTEs ending in ``figures`` (n, online, known, sessions, longest, first_online_at, last_offline_at): the
    figures of the days numbered ``first_n`` and on in the CTE ``days`` (n, day, starts_at, ends_at), from one
    sweep of what the CTE ``sweep`` (id, lo, until, splits, first_n) describes.

    The pieces are split at every local midnight from ``lo`` (day ``first_n``'s start) to the last day's end,
    so day n is part n - first_n + 1; parts outside are the sweep's reach beyond the days: one merge gap (at
    least a second), so that a session merged across the first or the last midnight is seen whole and a day's
    figures do not depend on the days asked for with it. Sessions (merged, ``gap``) split into days: one lies
    within its first piece's day unless it spans several. ``stale``: as for ``so_history_pieces``.
    """
    return f"""pieces AS (
    SELECT p.* FROM sweep w, so_history_pieces(w.id, w.lo - w.reach, w.until, now(), {stale}, w.splits) p
),
piece_totals AS (
    SELECT w.first_n + p.part - 1 AS n, sum(p.ended_at - p.started_at) FILTER (WHERE p.state = 'online') AS online,
           sum(p.ended_at - p.started_at) FILTER (WHERE p.state <> 'unknown') AS known
    FROM pieces p, sweep w GROUP BY p.part, w.first_n
),
{sessions_from("pieces", gap)},
session_days AS (
    SELECT w.first_n + s.first_part - 1 AS n, s.started_at, s.ended_at, NOT s.open AS ends_here
    FROM sessions s, sweep w WHERE s.first_part = s.last_part
    UNION ALL
    SELECT d.n, greatest(s.started_at, d.starts_at), least(s.ended_at, d.ends_at),
           NOT s.open AND least(s.ended_at, d.ends_at) = s.ended_at
    FROM sessions s, sweep w, days d
    WHERE d.n - w.first_n + 1 BETWEEN s.first_part AND s.last_part AND s.first_part < s.last_part
      AND greatest(s.started_at, d.starts_at) < least(s.ended_at, d.ends_at)
),
session_totals AS (
    SELECT n, count(*) AS sessions, max(ended_at - started_at) AS longest, min(started_at) AS first_online_at,
           max(ended_at) FILTER (WHERE ends_here) AS last_offline_at
    FROM session_days GROUP BY n
),
figures AS (
    SELECT d.n, p.online, p.known, coalesce(s.sessions, 0) AS sessions, s.longest, s.first_online_at,
           s.last_offline_at
    FROM days d JOIN sweep w ON d.n >= w.first_n LEFT JOIN piece_totals p ON p.n = d.n
    LEFT JOIN session_totals s ON s.n = d.n
)"""


def daily_json(day: str, f: str) -> str:
    """A day's entry in the daily list: ``day`` its date, ``f`` the row of its figures."""
    return f"""json_build_object(
    'date', {day}, 'online_s', {seconds(f"{f}.online")}, 'known_s', {seconds(f"{f}.known")},
    'sessions', {f}.sessions, 'longest_s', {seconds(f"{f}.longest")},
    'first_online_at', {f}.first_online_at, 'last_offline_at', {f}.last_offline_at)"""


def reach(gap: str) -> str:
    """How far a day's sweep looks beyond its ends: the merge gap, at least a second."""
    return f"greatest({gap}::interval, interval '1 second')"


def observers(target: str) -> str:
    """Who watches the target now, as one text: each open watch's tracker and its worker's latest connected
    period (its start). Today's stored figures go on only while this stays what it was when they were stored."""
    return f"""(SELECT string_agg(w.tracker_account_id || '@' || coalesce(extract(epoch FROM u.started_at)::text, '-'),
                       ',' ORDER BY w.tracker_account_id, w.id)
     FROM target_watches w
     LEFT JOIN LATERAL (SELECT p.started_at FROM tracker_uptimes p WHERE p.tracker_account_id = w.tracker_account_id
                        ORDER BY p.started_at DESC LIMIT 1) u ON true
     WHERE w.target_id = {target} AND w.ended_at IS NULL)"""


def settled(row: str, gap: str, stale: str) -> str:
    """A stored day swept late enough that nothing after it can change it: past its end, the merge gap after it,
    and long enough that a worker's last heartbeat before it would have gone stale."""
    return f"{row}.computed_at >= {row}.ends_at + {reach(gap)} + {stale}::interval"


# The days of the range the supervisor stored (history_days, db/sql/08_history_days.sql) for its tracked user,
# zone and merge gap that no change recorded since marked stale (history_dirty: valid up to its `since`). A
# day stored before it ended was swept up to `computed_at`: its last piece's state (`tail_state`) has lasted
# since, as nothing was recorded; `more` is how long that has been, up to now or the day's end.
STORED_DAYS = f"""stored AS (
    SELECT h.*, {settled("h", "$6", "$5")} AS complete,
           greatest(least(now(), h.ends_at) - h.computed_at, interval '0') AS more
    FROM validated c
    JOIN history_days h ON h.tracked_user_id = c.id AND h.tz = c.tz AND h.merge_gap = $6
                       AND h.day BETWEEN c.first_day AND c.last_day
    WHERE c.problem IS NULL
      AND h.ends_at + {reach("$6")}
          <= coalesce((SELECT min(x.since) FROM history_dirty x WHERE x.tracked_user_id = $1), 'infinity')
)"""

# Days $3..$4 (see RANGE), $5 stale, $6 merge gap, read back from stored days alone: from the range's first day
# on stored ones, carried on in their tail state, then days not yet begun (nothing in them). No row unless the
# range is made of these and each day not settled when stored is still watched as it was then, by workers
# that have not gone silent since (a silent one is taken as disconnected at its last heartbeat).
DAILY_STORED = f"""
WITH {RANGE},
{STORED_DAYS},
later AS (
    SELECT d::date AS day, (d AT TIME ZONE c.tz) < now() AS begun
    FROM validated c, generate_series(coalesce((SELECT max(day) FROM stored) + 1, c.first_day)::timestamp,
                                      c.last_day::timestamp, interval '1 day') d
    WHERE c.problem IS NULL
),
entries AS (
    SELECT s.day, coalesce(CASE WHEN s.more = interval '0' THEN s.body END, {daily_json("s.day", "f")}) AS entry
    FROM stored s CROSS JOIN LATERAL (
        SELECT CASE WHEN s.tail_state = 'online' THEN coalesce(s.online, interval '0') + s.more ELSE s.online END
                   AS online,
               CASE WHEN s.tail_state IN ('online', 'offline') THEN coalesce(s.known, interval '0') + s.more
                    ELSE s.known END AS known,
               s.sessions,
               CASE WHEN s.tail_state = 'online' AND s.more > interval '0'
                    THEN greatest(s.longest, least(now(), s.ends_at) - s.tail_from) ELSE s.longest END AS longest,
               s.first_online_at, s.last_offline_at
    ) f
    UNION ALL
    SELECT l.day, {daily_json("l.day", "f")} FROM later l CROSS JOIN LATERAL (
        SELECT NULL::interval AS online, NULL::interval AS known, 0 AS sessions, NULL::interval AS longest,
               NULL::timestamptz AS first_online_at, NULL::timestamptz AS last_offline_at
    ) f
),
observer_gone_silent AS (
    SELECT 1 FROM validated c
    JOIN target_watches w ON w.target_id = c.target_id AND w.ended_at IS NULL
    CROSS JOIN LATERAL (SELECT u.ended, u.seen_at FROM tracker_uptimes u
                        WHERE u.tracker_account_id = w.tracker_account_id
                        ORDER BY u.started_at DESC LIMIT 1) u
    WHERE NOT u.ended AND u.seen_at < now() - $5::interval
)
SELECT c.problem, CASE WHEN c.problem IS NULL THEN
    coalesce((SELECT json_agg(entry ORDER BY day) FROM entries), '[]'::json)::text END AS body
FROM validated c
WHERE c.problem IS NOT NULL
   OR (coalesce((SELECT min(day) = c.first_day AND max(day) - min(day) + 1 = count(*) FROM stored), true)
       AND NOT EXISTS (SELECT 1 FROM later WHERE begun)
       AND NOT EXISTS (SELECT 1 FROM stored s
                       WHERE NOT s.complete AND (s.tail_observers IS DISTINCT FROM {observers("c.target_id")}
                                                 OR EXISTS (SELECT 1 FROM observer_gone_silent))))
"""

# The same days swept: the complete stored days at the range's start are read back, the days from the first
# other one on are swept (nothing at all when every day was read back).
DAILY_SWEPT = f"""
WITH {RANGE},
{STORED_DAYS},
first_swept AS (
    SELECT coalesce(min(d.n) FILTER (WHERE s.day IS NULL), max(d.n) + 1) AS n
    FROM days d LEFT JOIN stored s ON s.day = d.day AND s.complete
),
sweep AS (
    SELECT b.id, f.n AS first_n, coalesce(d.starts_at, b.hi) AS lo, {reach("$6")} AS reach,
           CASE WHEN d.n IS NULL THEN coalesce(d.starts_at, b.hi) - {reach("$6")} ELSE b.hi + {reach("$6")} END
               AS until,
           ARRAY[coalesce(d.starts_at, b.hi)]
               || (SELECT array_agg(m.starts_at ORDER BY m.n) FROM days m WHERE m.n > f.n) || b.hi AS splits
    FROM bounds b CROSS JOIN first_swept f LEFT JOIN days d ON d.n = f.n
    WHERE b.problem IS NULL
),
{day_figures("$5", "$6")},
daily AS (
    SELECT d.n, s.body, s.online, s.known, s.sessions, s.longest, s.first_online_at, s.last_offline_at
    FROM stored s JOIN days d ON d.day = s.day, first_swept f WHERE d.n < f.n
    UNION ALL SELECT f.n, NULL::json, f.online, f.known, f.sessions, f.longest, f.first_online_at, f.last_offline_at
    FROM figures f
)
SELECT b.problem, CASE WHEN b.problem IS NULL THEN coalesce((SELECT json_agg(
    coalesce(f.body, {daily_json("d.day", "f")}) ORDER BY d.n) FROM days d JOIN daily f ON f.n = d.n),
    '[]'::json)::text END AS body
FROM bounds b
"""

# Both, in one round trip: so_daily (db/sql/08_history_days.sql) runs DAILY_STORED, and DAILY_SWEPT when that
# had no row. $1 tracked user, $2 zone, $3 date_from, $4 date_to, $5 stale, $6 merge gap.
DAILY = "SELECT problem, body FROM so_daily($1::bigint, $2::text, $3::date, $4::date, $5::interval, $6::interval)"


# Tracked users whose stored days need work: marked stale (the oldest marks first), or without today stored
# (in its bot user's zone). $1 merge gap, $2 how many.
STORE_CANDIDATES = """
SELECT id FROM (
    SELECT tracked_user_id AS id, since FROM history_dirty
    UNION ALL
    SELECT u.id, NULL FROM tracked_users u JOIN telegram_users p ON p.id = u.telegram_user_id
    WHERE NOT EXISTS (SELECT 1 FROM history_days h
                      WHERE h.tracked_user_id = u.id AND h.tz = p.timezone AND h.merge_gap = $1
                        AND h.day = (now() AT TIME ZONE p.timezone)::date)
) candidates
GROUP BY id ORDER BY min(since) NULLS LAST LIMIT $2
"""

# Stores one tracked user's days ($1; $2 stale, $3 merge gap) in its bot user's zone, today's so far: from the
# day of its oldest stale mark (less the merge gap) or the day after the last one stored, whichever is earlier,
# but not before its first day (creation or first row), to today; at most 366 days at once, the days after
# them dropped (the next pass goes on from there). Today's last piece's state is kept, where an online one
# ends it the start of its session within the day, and who watched then. Drops days stored for another zone
# or gap, and deletes the marks it saw (none set since, none for a time still ahead). Run under the tracked
# user's lock, in a transaction of its own.
STORE_DAYS = f"""
WITH subject AS (
    SELECT u.id, u.created_at, p.timezone AS tz FROM tracked_users u JOIN telegram_users p ON p.id = u.telegram_user_id
    WHERE u.id = $1
),
mark AS (SELECT min(since) AS since, max(id) AS upto FROM history_dirty WHERE tracked_user_id = $1),
earliest AS (
    SELECT s.*, (least(s.created_at, (SELECT min(o.created_at) FROM online_statuses o WHERE o.tracked_user_id = s.id))
                 AT TIME ZONE s.tz)::date AS first_data_day
    FROM subject s
),
span AS (
    SELECT e.*, greatest(
               least((((SELECT since FROM mark) - {reach("$3")}) AT TIME ZONE e.tz)::date,
                     coalesce((SELECT max(h.day) + 1 FROM history_days h
                               WHERE h.tracked_user_id = e.id AND h.tz = e.tz AND h.merge_gap = $3), e.first_data_day)),
               e.first_data_day
           ) AS first_day,
           (now() AT TIME ZONE e.tz)::date AS today
    FROM earliest e
),
bounded AS (SELECT span.*, least(today, first_day + 365) AS last_day FROM span),
days AS (
    SELECT d.day - c.first_day AS n, d.* FROM bounded c, so_local_days(c.first_day, c.last_day, c.tz) d
    WHERE c.first_day <= c.last_day
),
sweep AS (
    SELECT c.id, 0 AS first_n, (SELECT min(starts_at) FROM days) AS lo, {reach("$3")} AS reach,
           (SELECT max(ends_at) FROM days) + {reach("$3")} AS until,
           (SELECT array_agg(starts_at ORDER BY n) FROM days) || (SELECT max(ends_at) FROM days) AS splits
    FROM bounded c WHERE c.first_day <= c.last_day
),
{day_figures("$2", "$3")},
tail AS (
    SELECT (SELECT p.state FROM pieces p ORDER BY p.started_at DESC LIMIT 1) AS state,
           (SELECT greatest(s.started_at, d.starts_at) FROM sessions s, days d
            WHERE s.open AND d.n = (SELECT max(n) FROM days)) AS session_from,
           {observers("(SELECT u.target_id FROM tracked_users u WHERE u.id = $1)")} AS observers
),
day_segments AS ({segments_of("pieces", "part")}),
timelines AS (
    SELECT w.first_n + part - 1 AS n, {SEGMENTS_JSON} AS segments FROM day_segments, sweep w GROUP BY part, w.first_n
),
stored AS (
    INSERT INTO history_days AS h (tracked_user_id, tz, merge_gap, day, starts_at, ends_at, online, known, sessions,
                                   longest, first_online_at, last_offline_at, computed_at, tail_state, tail_from,
                                   tail_observers, body, segments)
    SELECT c.id, c.tz, $3, d.day, d.starts_at, d.ends_at, f.online, f.known, f.sessions, f.longest,
           f.first_online_at, f.last_offline_at, now(), t.state, t.session_from, t.observers,
           {daily_json("d.day", "f")}, coalesce(l.segments, '[]'::json)
    FROM figures f JOIN days d ON d.n = f.n LEFT JOIN timelines l ON l.n = f.n CROSS JOIN bounded c CROSS JOIN tail t
    ON CONFLICT (tracked_user_id, tz, merge_gap, day) DO UPDATE
    SET starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, online = EXCLUDED.online, known = EXCLUDED.known,
        sessions = EXCLUDED.sessions, longest = EXCLUDED.longest, first_online_at = EXCLUDED.first_online_at,
        last_offline_at = EXCLUDED.last_offline_at, computed_at = EXCLUDED.computed_at,
        tail_state = EXCLUDED.tail_state, tail_from = EXCLUDED.tail_from, tail_observers = EXCLUDED.tail_observers,
        body = EXCLUDED.body, segments = EXCLUDED.segments
    RETURNING 1
),
dropped AS (
    DELETE FROM history_days h USING bounded c
    WHERE h.tracked_user_id = c.id AND (h.tz <> c.tz OR h.merge_gap <> $3 OR h.day > c.last_day)
    RETURNING 1
),
cleared AS (
    DELETE FROM history_dirty x USING mark m WHERE x.tracked_user_id = $1 AND x.id <= m.upto AND x.since <= now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored) AS days, (SELECT count(*) FROM dropped) AS dropped
"""

# A day's timeline ($3 date, $4 stale; see resources.TIMELINE_SWEPT) read back: a stored day that had ended
# (and a worker's heartbeat before its end gone stale) when it was stored, and that no change marked stale
# since. No row otherwise (today among them).
TIMELINE_STORED = f"""
WITH {TIMELINE_DAY},
stored AS (
    SELECT h.* FROM day JOIN history_days h ON h.tracked_user_id = day.id AND h.tz = day.tz AND h.day = day.day
    WHERE h.computed_at >= h.ends_at + $4::interval
      AND NOT EXISTS (SELECT 1 FROM history_dirty x
                      WHERE x.tracked_user_id = day.id AND x.since < h.ends_at + {reach("h.merge_gap")})
    LIMIT 1
)
SELECT NULL::text AS problem, {
    timeline_json(
        "day.day",
        "day.tz",
        online="h.online",
        offline="coalesce(h.known, interval '0') - coalesce(h.online, interval '0')",
        unknown="(h.ends_at - h.starts_at) - coalesce(h.known, interval '0')",
        segments="h.segments",
    )
}::text AS body,
    day.username::text, day.theme::text, day.ends_at <= now() AS past
FROM day JOIN stored h ON true
"""

# Both, in one round trip (so_timeline, db/sql/08_history_days.sql). $1 tracked user, $2 zone, $3 date, $4 stale.
TIMELINE = "SELECT problem, body, username, theme, past FROM so_timeline($1::bigint, $2::text, $3::date, $4::interval)"

# What db/sql/08_history_days.sql takes from here (so_daily and so_timeline run these statements as they are).
SQL_PLACEHOLDERS = {
    "@HISTORY_DAILY_STORED@": DAILY_STORED.strip(),
    "@HISTORY_DAILY_SWEPT@": DAILY_SWEPT.strip(),
    "@HISTORY_TIMELINE_STORED@": TIMELINE_STORED.strip(),
    "@HISTORY_TIMELINE_SWEPT@": TIMELINE_SWEPT.strip(),
    "@HISTORY_UPTIME_STALE@": f"interval '{int(UPTIME_STALE.total_seconds())} seconds'",
}
