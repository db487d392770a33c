-- Online intervals nobody closed: a target last seen online whose ``expires`` (Telegram sends no offline
-- after it, often) passed more than p_after ago, with no worker recording it (killed, or the target
-- lost its tracker). Its offline is recorded at that time, for every subscriber, as the worker would
-- have. Rows a worker is writing right now are skipped (SKIP LOCKED; writers lock targets in id order).
-- Returns how many intervals were closed.
CREATE OR REPLACE FUNCTION so_close_expired_online(p_after interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    closed integer;
BEGIN
    WITH expired AS (
        SELECT id, online_expires_at AS at
        FROM targets
        WHERE last_is_online AND online_expires_at < now() - p_after
          AND online_expires_at > coalesce(last_status_at, '-infinity')
        ORDER BY id
        FOR NO KEY UPDATE SKIP LOCKED
    ),
    inserted AS (
        INSERT INTO online_statuses (created_at, tracked_user_id, is_online, source)
        SELECT e.at, u.id, false, @SOURCE_EXPIRES@ FROM expired e JOIN tracked_users u ON u.target_id = e.id
        ORDER BY e.at, u.id
    ),
    updated AS (
        UPDATE targets t SET last_is_online = false, last_status_at = e.at, online_expires_at = NULL
        FROM expired e WHERE t.id = e.id
        RETURNING 1
    )
    SELECT count(*) INTO closed FROM updated;
    RETURN closed;
END $$;
