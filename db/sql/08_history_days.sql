-- Stored days: the daily figures of a tracked user's days, so that a range of days is read back, not swept.
--
-- The supervisor's housekeeping stores each tracked user's days up to today's so far, in its bot user's zone
-- and at the default merge gap (history_days; the statements are in src/seeonline/history/resources.py). A
-- stored day stays right while nothing recorded about its tracked user changes at or before its end (the
-- merge gap after it included): each change marks the tracked users it concerns stale from its time
-- (history_dirty: appended, never updated, so a writer takes no row lock for it; the housekeeping deletes the
-- marks it saw, and a stored day is valid while no mark's time lies before its end).
-- A read sweeps the days from the first stale one on, and the housekeeping stores them again. Today's stored
-- figures go on in their last state until something is recorded (which marks them), except that a worker
-- gone silent is taken as disconnected at its last heartbeat: the read checks that itself. A heartbeat
-- marks nothing unless it ends such a silence. A change of what the figures mean must empty history_days in
-- its revision.

-- Marks tracked users stale from p_since (those deleted in this transaction are left out).
CREATE OR REPLACE FUNCTION so_history_stale(p_tracked_users bigint[], p_since timestamptz) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO history_dirty (tracked_user_id, since)
    SELECT u.id, p_since FROM tracked_users u WHERE u.id = ANY (p_tracked_users)
$$;

-- The tracked users of a target (for the facts kept per target: watches, visibility).
CREATE OR REPLACE FUNCTION so_history_stale_target(p_target bigint, p_since timestamptz) RETURNS void
LANGUAGE sql AS $$
    SELECT so_history_stale(array_agg(u.id), p_since) FROM tracked_users u WHERE u.target_id = p_target
$$;

-- Status rows inserted, updated or deleted (statement-level, transition table changed_rows).
CREATE OR REPLACE FUNCTION so_history_statuses_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO history_dirty (tracked_user_id, since)
    SELECT r.tracked_user_id, min(r.created_at) FROM changed_rows r
    WHERE EXISTS (SELECT 1 FROM tracked_users u WHERE u.id = r.tracked_user_id)
    GROUP BY r.tracked_user_id;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER online_statuses_history_inserted AFTER INSERT ON online_statuses
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION so_history_statuses_changed();
CREATE OR REPLACE TRIGGER online_statuses_history_deleted AFTER DELETE ON online_statuses
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION so_history_statuses_changed();
CREATE OR REPLACE TRIGGER online_statuses_history_updated_from AFTER UPDATE ON online_statuses
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION so_history_statuses_changed();
CREATE OR REPLACE TRIGGER online_statuses_history_updated_to AFTER UPDATE ON online_statuses
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION so_history_statuses_changed();

-- A watch that appeared, went, or moved an end: history changes from the earliest end that moved.
CREATE OR REPLACE FUNCTION so_history_watch_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_since timestamptz;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM so_history_stale_target(NEW.target_id, NEW.started_at);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM so_history_stale_target(OLD.target_id, OLD.started_at);
    ELSE
        -- A moved start (or another target or tracker) changes it from the earlier start; else a moved end from
        -- the earlier end (a start is never after its end, so the first covers both).
        v_since := CASE WHEN (NEW.started_at, NEW.target_id, NEW.tracker_account_id)
                             IS DISTINCT FROM (OLD.started_at, OLD.target_id, OLD.tracker_account_id)
                        THEN least(OLD.started_at, NEW.started_at)
                        WHEN NEW.ended_at IS DISTINCT FROM OLD.ended_at
                        THEN least(coalesce(OLD.ended_at, 'infinity'), coalesce(NEW.ended_at, 'infinity')) END;
        IF v_since IS NOT NULL THEN
            PERFORM so_history_stale_target(NEW.target_id, v_since);
            IF NEW.target_id IS DISTINCT FROM OLD.target_id THEN
                PERFORM so_history_stale_target(OLD.target_id, v_since);
            END IF;
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER target_watches_history AFTER INSERT OR UPDATE OR DELETE ON target_watches
    FOR EACH ROW EXECUTE FUNCTION so_history_watch_changed();

-- A worker's connected period that appeared, went, or changed: the targets its tracker watched since then.
-- For an update, the trigger's condition lets through only a moved start or end (an ended period's seen_at, or
-- one moved back), or a heartbeat after a silence long enough for the period to have been taken as ended at
-- the one before.
CREATE OR REPLACE FUNCTION so_history_uptime_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_tracker bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.tracker_account_id ELSE NEW.tracker_account_id END;
    v_since timestamptz := CASE WHEN TG_OP = 'DELETE' THEN OLD.started_at
                                WHEN TG_OP = 'INSERT' THEN NEW.started_at
                                WHEN OLD.started_at IS DISTINCT FROM NEW.started_at
                                    THEN least(OLD.started_at, NEW.started_at)
                                ELSE least(OLD.seen_at, NEW.seen_at) END;
BEGIN
    IF TG_OP = 'INSERT' THEN  -- a new period after one that never ended: its worker was gone since that one's last beat
        v_since := least(v_since, (SELECT max(u.seen_at) FROM tracker_uptimes u
                                   WHERE u.tracker_account_id = v_tracker AND u.started_at < NEW.started_at));
    END IF;
    PERFORM so_history_stale(array_agg(DISTINCT u.id), v_since)
    FROM target_watches w JOIN tracked_users u ON u.target_id = w.target_id
    WHERE w.tracker_account_id = v_tracker AND coalesce(w.ended_at, 'infinity') > v_since;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER tracker_uptimes_history AFTER INSERT OR DELETE ON tracker_uptimes
    FOR EACH ROW EXECUTE FUNCTION so_history_uptime_changed();
CREATE OR REPLACE TRIGGER tracker_uptimes_history_updated AFTER UPDATE ON tracker_uptimes
    FOR EACH ROW WHEN (OLD.started_at IS DISTINCT FROM NEW.started_at OR OLD.ended IS DISTINCT FROM NEW.ended
                       OR NEW.seen_at - OLD.seen_at > @HISTORY_UPTIME_STALE@ OR NEW.seen_at < OLD.seen_at
                       OR (NEW.ended AND NEW.seen_at <> OLD.seen_at))
    EXECUTE FUNCTION so_history_uptime_changed();

-- A visibility change recorded (by the trigger on targets, at the time of the change).
CREATE OR REPLACE FUNCTION so_history_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM so_history_stale_target(OLD.target_id, OLD.changed_at);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM so_history_stale_target(NEW.target_id, NEW.changed_at);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER target_visibility_changes_history
    AFTER INSERT OR UPDATE OR DELETE ON target_visibility_changes
    FOR EACH ROW EXECUTE FUNCTION so_history_visibility_changed();

-- A tracked user that now follows another target, or whose creation moved: its whole history changed.
CREATE OR REPLACE FUNCTION so_history_subject_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM so_history_stale(ARRAY[NEW.id], '-infinity');
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER tracked_users_history AFTER UPDATE OF target_id, created_at ON tracked_users
    FOR EACH ROW WHEN (OLD.target_id IS DISTINCT FROM NEW.target_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION so_history_subject_changed();

-- A range of days for the daily route in one round trip: read back from the stored days when they cover it,
-- else swept (the statements, with their parameters, are resources.DAILY_STORED and DAILY_SWEPT).
CREATE OR REPLACE FUNCTION so_daily(p_tracked_user bigint, p_tz text, p_first date, p_last date, p_stale interval,
                                    p_gap interval)
RETURNS TABLE (problem text, body text) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY @HISTORY_DAILY_STORED@;
    IF NOT FOUND THEN
        RETURN QUERY @HISTORY_DAILY_SWEPT@;
    END IF;
END $$;

-- A day's timeline in one round trip: read back from a stored day that had ended, else swept
-- (resources.TIMELINE_SWEPT and daily.TIMELINE_STORED).
CREATE OR REPLACE FUNCTION so_timeline(p_tracked_user bigint, p_tz text, p_date date, p_stale interval)
RETURNS TABLE (problem text, body text, username text, theme text, past boolean) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY @HISTORY_TIMELINE_STORED@;
    IF NOT FOUND THEN
        RETURN QUERY @HISTORY_TIMELINE_SWEPT@;
    END IF;
END $$;
