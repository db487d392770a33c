-- History: a tracked user's time split into online, offline and unknown pieces, and the sessions in it.
--
-- Known time needs a status to carry and an observer: time is unknown before tracking began (before
-- the subscriber existed or the target's first watch, or before its first status row), while the
-- target had no watching tracker (``unassigned``), while that tracker's worker was not connected
-- (``tracker_down``), and while the target hid its status (``hidden``). A status row written through
-- the API (``source = 'api'``, or NULL on rows older than the column) counts as known until the next row.
-- Everything is one sweep over the events in the window, ordered by time, with window functions: no
-- loop, and only the window's rows (plus the one row before it) are read, over the indexes.

-- Watches follow the target's assignment: a move or the loss of the tracker ends the current one, an
-- enrolment (its worker has the target as a contact) starts the next.
CREATE OR REPLACE FUNCTION so_record_target_watch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tracker_account_id IS DISTINCT FROM OLD.tracker_account_id THEN
        UPDATE target_watches SET ended_at = now() WHERE target_id = NEW.id AND ended_at IS NULL;
    END IF;
    IF NEW.enrolled_at IS NOT NULL AND NEW.enrolled_at IS DISTINCT FROM OLD.enrolled_at
       AND NEW.tracker_account_id IS NOT NULL THEN
        UPDATE target_watches SET ended_at = greatest(started_at, NEW.enrolled_at)
        WHERE target_id = NEW.id AND ended_at IS NULL;
        INSERT INTO target_watches (target_id, tracker_account_id, started_at)
        VALUES (NEW.id, NEW.tracker_account_id, NEW.enrolled_at);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER targets_record_watch AFTER UPDATE OF tracker_account_id, enrolled_at ON targets
    FOR EACH ROW WHEN (OLD.tracker_account_id IS DISTINCT FROM NEW.tracker_account_id
                       OR OLD.enrolled_at IS DISTINCT FROM NEW.enrolled_at)
    EXECUTE FUNCTION so_record_target_watch();

CREATE OR REPLACE FUNCTION so_record_visibility() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO target_visibility_changes (target_id, changed_at, visibility) VALUES (NEW.id, now(), NEW.visibility);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER targets_record_visibility AFTER UPDATE OF visibility ON targets
    FOR EACH ROW WHEN (OLD.visibility IS DISTINCT FROM NEW.visibility)
    EXECUTE FUNCTION so_record_visibility();

-- A worker's heartbeat: connected to Telegram since p_started, still at p_seen (or, with p_ended,
-- disconnected at p_seen). The period is keyed by when it began, so heartbeats lost to a database
-- outage leave no hole once one gets through.
CREATE OR REPLACE FUNCTION so_record_uptime(p_tracker bigint, p_started timestamptz, p_seen timestamptz,
                                            p_ended boolean) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO tracker_uptimes AS u (tracker_account_id, started_at, seen_at, ended)
    VALUES (p_tracker, p_started, greatest(p_started, p_seen), p_ended)
    ON CONFLICT (tracker_account_id, started_at) DO UPDATE
    SET seen_at = greatest(u.seen_at, EXCLUDED.seen_at), ended = u.ended OR EXCLUDED.ended
$$;

-- The pieces of [p_from, min(p_to, p_now)) (p_from finite): contiguous, each with one state (online,
-- offline, unknown), the reason when unknown, whether it starts at its status row's time and that time is
-- exact (by_exact_row), and its part: how many of the instants p_splits (ascending; NULL for none) lie at
-- or before its start, so that no piece crosses one (local midnights make part the day's number).
-- An uptime not ended whose last heartbeat is older than p_stale ended at that heartbeat (the worker
-- died); a younger one lasts until p_now.
CREATE OR REPLACE FUNCTION so_history_pieces(p_tracked_user bigint, p_from timestamptz, p_to timestamptz,
                                             p_now timestamptz, p_stale interval, p_splits timestamptz[])
RETURNS TABLE (started_at timestamptz, ended_at timestamptz, state text, reason text, by_exact_row boolean,
               part bigint)
LANGUAGE sql STABLE AS $$
WITH window_bounds AS (
    SELECT u.target_id, p_from AS lo, least(p_to, p_now) AS hi,
           greatest(u.created_at, (SELECT min(w.started_at) FROM target_watches w WHERE w.target_id = u.target_id))
               AS tracking_start
    FROM tracked_users u WHERE u.id = p_tracked_user AND p_from < least(p_to, p_now)
),
-- The row before the window and the rows in it, each with what it changes against the one before: the
-- sweep below adds these up instead of looking the latest row up.
statuses AS (
    SELECT created_at, id, online - coalesce(lag(online) OVER o, 0) AS d_online,
           api - coalesce(lag(api) OVER o, 0) AS d_api, exact - coalesce(lag(exact) OVER o, 0) AS d_exact
    FROM (
        SELECT created_at, id, is_online::int AS online, (coalesce(source, @SOURCE_API@) = @SOURCE_API@)::int AS api,
               (coalesce(source, @SOURCE_API@) IN (@SOURCE_PUSH@, @SOURCE_WAS_ONLINE@, @SOURCE_API@))::int AS exact
        FROM ((SELECT o.created_at, o.id, o.is_online, o.source FROM online_statuses o
               WHERE o.tracked_user_id = p_tracked_user AND o.created_at < p_from
               ORDER BY o.created_at DESC, o.id DESC LIMIT 1)
              UNION ALL
              SELECT o.created_at, o.id, o.is_online, o.source FROM online_statuses o
              WHERE o.tracked_user_id = p_tracked_user AND o.created_at >= p_from
                AND o.created_at < least(p_to, p_now)) rows
    ) coded
    WINDOW o AS (ORDER BY created_at, id)
),
watches AS (
    SELECT w.tracker_account_id, greatest(w.started_at, b.lo) AS s,
           least(coalesce(w.ended_at, 'infinity'), b.hi) AS e
    FROM target_watches w, window_bounds b
    WHERE w.target_id = b.target_id AND w.started_at < b.hi AND coalesce(w.ended_at, 'infinity') > b.lo
),
observed AS (
    SELECT greatest(w.s, u.started_at) AS s, least(w.e, u.until) AS e
    FROM watches w
    CROSS JOIN LATERAL (
        SELECT u.started_at,
               CASE WHEN u.ended OR u.seen_at < p_now - p_stale THEN u.seen_at ELSE p_now END AS until
        FROM tracker_uptimes u
        WHERE u.tracker_account_id = w.tracker_account_id AND u.seen_at > w.s - p_stale AND u.started_at < w.e
    ) u
    WHERE greatest(w.s, u.started_at) < least(w.e, u.until)
),
visibility AS (
    SELECT changed_at, id, hidden - coalesce(lag(hidden) OVER (ORDER BY changed_at, id), 0) AS d_hidden
    FROM (
        SELECT changed_at, id,
               (visibility IN (@VISIBILITY_HIDDEN@, @VISIBILITY_HIDDEN_BY_TRACKER_PRIVACY@, @VISIBILITY_NOT_FOUND@))::int
                   AS hidden
        FROM ((SELECT v.changed_at, v.id, v.visibility FROM target_visibility_changes v, window_bounds b
               WHERE v.target_id = b.target_id AND v.changed_at < b.lo ORDER BY v.changed_at DESC, v.id DESC LIMIT 1)
              UNION ALL
              SELECT v.changed_at, v.id, v.visibility FROM target_visibility_changes v, window_bounds b
              WHERE v.target_id = b.target_id AND v.changed_at >= b.lo AND v.changed_at < b.hi) rows
    ) coded
),
events (at, status_at, status_id, visibility_id, d_watch, d_observed, d_split, d_online, d_api, d_exact, d_hidden)
AS (
    SELECT lo, NULL::timestamptz, NULL::bigint, NULL::bigint, 0, 0, 0, NULL::int, NULL::int, NULL::int, NULL::int
    FROM window_bounds
    UNION ALL SELECT hi, NULL, NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL FROM window_bounds
    UNION ALL SELECT tracking_start, NULL, NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL FROM window_bounds
              WHERE tracking_start > lo AND tracking_start < hi
    UNION ALL SELECT t, NULL, NULL, NULL, 0, 0, 1, NULL, NULL, NULL, NULL FROM window_bounds b, unnest(p_splits) t
              WHERE t > b.lo AND t < b.hi
    UNION ALL SELECT greatest(s.created_at, b.lo), s.created_at, s.id, NULL, 0, 0, 0, s.d_online, s.d_api, s.d_exact,
                     NULL
              FROM statuses s, window_bounds b
    UNION ALL SELECT s, NULL, NULL, NULL, 1, 0, 0, NULL, NULL, NULL, NULL FROM watches
    UNION ALL SELECT e, NULL, NULL, NULL, -1, 0, 0, NULL, NULL, NULL, NULL FROM watches, window_bounds b
              WHERE e < b.hi
    UNION ALL SELECT s, NULL, NULL, NULL, 0, 1, 0, NULL, NULL, NULL, NULL FROM observed
    UNION ALL SELECT e, NULL, NULL, NULL, 0, -1, 0, NULL, NULL, NULL, NULL FROM observed, window_bounds b
              WHERE e < b.hi
    UNION ALL SELECT greatest(v.changed_at, b.lo), NULL, NULL, v.id, 0, 0, 0, NULL, NULL, NULL, v.d_hidden
              FROM visibility v, window_bounds b
),
-- One ordered pass of running sums: the watch and uptime counters, the part, and the latest status row
-- and visibility change (their changes added up; NULL before the first). Several events at one moment
-- make zero-length pieces, dropped below; the last of them has every event of that moment behind it (a
-- later status row at the same time, or a later change, wins). A piece starts at its status row when the
-- latest row taken at its own time (not carried in from before the window) is at its start.
running AS (
    SELECT at, lead(at) OVER w AS next_at,
           sum(d_watch) OVER w AS watching, sum(d_observed) OVER w AS observing, sum(d_split) OVER w AS part,
           sum(d_online) OVER w AS online, sum(d_api) OVER w AS api, sum(d_exact) OVER w AS exact,
           coalesce(sum(d_hidden) OVER w, 0) > 0 AS hidden,
           max(at) FILTER (WHERE status_at = at) OVER w AS row_at
    FROM events
    WINDOW w AS (ORDER BY at, status_at NULLS FIRST, status_id NULLS FIRST, visibility_id NULLS FIRST
                 ROWS UNBOUNDED PRECEDING)
),
judged AS (
    SELECT r.*, b.tracking_start,
           r.online IS NOT NULL AND (r.api > 0 OR (r.at >= b.tracking_start AND r.observing > 0 AND NOT r.hidden))
               AS known
    FROM running r, window_bounds b
    WHERE r.next_at > r.at
)
SELECT at, next_at,
       CASE WHEN NOT known THEN 'unknown' WHEN online > 0 THEN 'online' ELSE 'offline' END,
       CASE WHEN known THEN NULL
            WHEN tracking_start IS NULL OR at < tracking_start THEN @REASON_BEFORE_TRACKING@
            WHEN watching <= 0 THEN @REASON_UNASSIGNED@
            WHEN observing <= 0 THEN @REASON_TRACKER_DOWN@
            WHEN hidden THEN @REASON_HIDDEN@
            ELSE @REASON_BEFORE_TRACKING@  -- observed, but no status recorded yet
       END,
       coalesce(row_at = at AND exact > 0, false),
       part
FROM judged
ORDER BY at
$$;

-- The instant a local day begins in p_tz.
CREATE OR REPLACE FUNCTION so_local_midnight(p_day date, p_tz text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT p_day::timestamp AT TIME ZONE p_tz
$$;

-- The local days [p_first, p_last] in p_tz: date, start and end instants (23 or 25 hours on DST days).
CREATE OR REPLACE FUNCTION so_local_days(p_first date, p_last date, p_tz text)
RETURNS TABLE (day date, starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT d::date, so_local_midnight(d::date, p_tz), so_local_midnight(d::date + 1, p_tz)
    FROM generate_series(p_first::timestamp, p_last::timestamp, interval '1 day') d
$$;

-- The local days an interval [p_start, p_end) touches, with the part of it inside each.
CREATE OR REPLACE FUNCTION so_split_by_day(p_start timestamptz, p_end timestamptz, p_tz text)
RETURNS TABLE (day date, started_at timestamptz, ended_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT d.day, greatest(p_start, d.starts_at), least(p_end, d.ends_at)
    FROM so_local_days((p_start AT TIME ZONE p_tz)::date, (p_end AT TIME ZONE p_tz)::date, p_tz) d
    WHERE greatest(p_start, d.starts_at) < least(p_end, d.ends_at)
$$;

-- An instant as ISO 8601 local time in p_tz with its offset (2026-03-29T03:00:00.000000+02:00), for CSV.
CREATE OR REPLACE FUNCTION so_local_iso(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD"T"HH24:MI:SS.US')
           || CASE WHEN o < interval '0' THEN '-' ELSE '+' END
           || to_char(CASE WHEN o < interval '0' THEN -o ELSE o END, 'HH24:MI')
    FROM (SELECT (p_at AT TIME ZONE p_tz) - (p_at AT TIME ZONE 'UTC') AS o) offset_of
$$;
