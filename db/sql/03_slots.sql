-- The slot engine: which tracker watches which target, with counters kept under row locks.
--
-- Lock order, always: telegram_users rows -> the rebalance advisory lock -> tracker_settings rows
-- (ascending id) -> targets rows (ascending id). Operations that touch two trackers (moves, drains,
-- pick-ups, a subscription changing target) take the advisory lock and every setting first
-- (so_begin_rebalance). Exceptions, each argued where it happens:
--   * so_assign_target runs while its caller holds the (waiting) target's row, and locks one setting;
--     rebalancers never wait for a waiting target (SKIP LOCKED) so no cycle forms.
--   * so_release_target locks the setting before the target, as rebalancers do.
-- Domain errors are raised with SQLSTATE SO4xx: MESSAGE is the stable code, DETAIL the text,
-- HINT the offending field.

-- Trackers that should have a worker running: active, authorized, with a session, and not stopped by
-- their health. ``enrolling``: not paused by a long flood wait on resolving usernames, so a new target
-- there is watched at once.
CREATE OR REPLACE VIEW so_runnable_trackers AS
SELECT s.tracker_account_id, s.id AS setting_id, s.max_users, s.current_users,
       coalesce(h.enrolment_paused_until <= now(), true) AS enrolling,
       coalesce(h.state, @HEALTH_STOPPED@) AS state
FROM tracker_settings s
JOIN tracker_accounts a ON a.id = s.tracker_account_id
LEFT JOIN tracker_health h ON h.tracker_account_id = s.tracker_account_id
WHERE a.is_active
  AND a.is_auth
  AND s.session_encrypted IS NOT NULL
  AND coalesce(h.state, @HEALTH_STOPPED@) NOT IN (@HEALTH_NEVER_RUN@)
  AND NOT (coalesce(h.state, @HEALTH_STOPPED@) = @HEALTH_FLOOD_WAIT@ AND coalesce(h.state_until, 'infinity') > now());

-- Trackers that may receive targets now (the contract's "usable"). A tracker that hides its own last
-- seen (privacy_misconfigured) sees no exact statuses, so it gets none; its worker still runs, to
-- re-check and fix the setting.
CREATE OR REPLACE VIEW so_usable_trackers AS
SELECT tracker_account_id, setting_id, max_users, current_users, enrolling
FROM so_runnable_trackers
WHERE state <> @HEALTH_PRIVACY_MISCONFIGURED@;

CREATE OR REPLACE FUNCTION so_tracker_usable(p_tracker bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM so_usable_trackers WHERE tracker_account_id = p_tracker)
$$;

-- The usable tracker with the most free slots, other than p_except; one that is enrolling first
-- (a paused one still beats no tracker at all), or only those with p_enrolling_only.
CREATE OR REPLACE FUNCTION so_least_loaded_tracker(p_except bigint DEFAULT NULL, p_enrolling_only boolean DEFAULT false)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT tracker_account_id FROM so_usable_trackers
    WHERE current_users < max_users AND tracker_account_id IS DISTINCT FROM p_except
      AND (enrolling OR NOT p_enrolling_only)
    ORDER BY enrolling DESC, max_users - current_users DESC, tracker_account_id
    LIMIT 1
$$;

-- Give a target a slot. The caller holds the target's row lock. With p_only, only that tracker is
-- acceptable (the target moves there if it sits elsewhere). Returns the tracker, or NULL when none fits.
-- Concurrent assignments do not queue behind one tracker: each takes the least-loaded tracker whose
-- setting nobody else has locked (SKIP LOCKED), and waits only when every candidate is locked.
CREATE OR REPLACE FUNCTION so_assign_target(p_target bigint, p_only bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    candidate bigint;
    previous bigint;
    attempts integer := 0;
BEGIN
    SELECT tracker_account_id INTO previous FROM targets WHERE id = p_target;
    IF p_only IS NOT NULL AND previous = p_only THEN
        RETURN p_only;
    END IF;
    LOOP
        candidate := NULL;
        IF p_only IS NULL AND previous IS NULL THEN
            SELECT s.tracker_account_id INTO candidate
            FROM tracker_settings s JOIN so_usable_trackers u ON u.tracker_account_id = s.tracker_account_id
            WHERE s.current_users < s.max_users
            ORDER BY u.enrolling DESC, s.max_users - s.current_users DESC, s.tracker_account_id
            LIMIT 1 FOR UPDATE OF s SKIP LOCKED;
        END IF;
        IF candidate IS NULL THEN
            candidate := coalesce(p_only, so_least_loaded_tracker());
            IF candidate IS NULL THEN
                RETURN NULL;
            END IF;
            PERFORM 1 FROM tracker_settings
            WHERE tracker_account_id IN (candidate, previous) ORDER BY id FOR UPDATE;
        END IF;
        -- A new statement sees everything committed before the lock was granted: re-check.
        UPDATE tracker_settings SET current_users = current_users + 1
        WHERE tracker_account_id = candidate AND current_users < max_users AND so_tracker_usable(candidate);
        IF FOUND THEN
            IF previous IS NOT NULL THEN
                UPDATE tracker_settings SET current_users = current_users - 1 WHERE tracker_account_id = previous;
            END IF;
            UPDATE targets SET tracker_account_id = candidate, visibility = @VISIBILITY_UNKNOWN@, enrolled_at = NULL
            WHERE id = p_target;
            RETURN candidate;
        END IF;
        attempts := attempts + 1;
        IF p_only IS NOT NULL OR attempts >= 50 THEN
            RETURN NULL;
        END IF;
    END LOOP;
END $$;

-- Drop a target whose last subscriber left, freeing its slot. Returns true when waiting targets
-- exist, so the caller can run so_pickup_waiting() in a transaction of its own.
CREATE OR REPLACE FUNCTION so_release_target(p_target bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    seen bigint;
    locked bigint;
BEGIN
    LOOP
        SELECT tracker_account_id INTO seen FROM targets WHERE id = p_target;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        IF seen IS NOT NULL THEN
            PERFORM 1 FROM tracker_settings WHERE tracker_account_id = seen FOR UPDATE;
        END IF;
        SELECT tracker_account_id INTO locked FROM targets WHERE id = p_target FOR UPDATE;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        EXIT WHEN locked IS NOT DISTINCT FROM seen;
    END LOOP;
    IF EXISTS (SELECT 1 FROM tracked_users WHERE target_id = p_target) THEN
        RETURN false;
    END IF;
    DELETE FROM targets WHERE id = p_target;
    IF seen IS NULL THEN
        RETURN false;
    END IF;
    UPDATE tracker_settings SET current_users = current_users - 1 WHERE tracker_account_id = seen;
    RETURN EXISTS (SELECT 1 FROM targets WHERE tracker_account_id IS NULL);
END $$;

-- Move a target from one tracker to another (either may be NULL: waiting), counters with it. The
-- caller holds the rebalance lock and the target's row; its visibility is re-checked on arrival.
CREATE OR REPLACE FUNCTION so_move_target(p_target bigint, p_from bigint, p_to bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tracker_settings SET current_users = current_users - 1 WHERE tracker_account_id = p_from;
    UPDATE tracker_settings SET current_users = current_users + 1 WHERE tracker_account_id = p_to;
    UPDATE targets SET tracker_account_id = p_to, visibility = @VISIBILITY_UNKNOWN@, enrolled_at = NULL WHERE id = p_target;
END $$;

-- Start a rebalance: one at a time, then every setting locked in id order.
CREATE OR REPLACE FUNCTION so_begin_rebalance() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(@REBALANCE_LOCK@);
    PERFORM 1 FROM tracker_settings ORDER BY id FOR UPDATE;
END $$;

-- Hand a tracker's targets (all when p_leaving or unusable, else those above max_users) to other
-- usable trackers, least-loaded first; the rest wait. Without p_force, refuses with
-- insufficient_capacity when the others cannot take them all. Returns how many targets moved.
CREATE OR REPLACE FUNCTION so_drain_tracker(p_tracker bigint, p_leaving boolean, p_force boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    keep integer;
    excess integer;
    room integer;
    target record;
    moved integer := 0;
BEGIN
    PERFORM so_begin_rebalance();
    IF p_leaving OR NOT so_tracker_usable(p_tracker) THEN
        keep := 0;
    ELSE
        SELECT max_users INTO keep FROM tracker_settings WHERE tracker_account_id = p_tracker;
    END IF;
    excess := (SELECT count(*) FROM targets WHERE tracker_account_id = p_tracker) - coalesce(keep, 0);
    IF excess <= 0 THEN
        RETURN 0;
    END IF;
    SELECT coalesce(sum(max_users - current_users), 0) INTO room
    FROM so_usable_trackers WHERE tracker_account_id <> p_tracker AND current_users < max_users;
    IF room < excess AND NOT p_force THEN
        RAISE EXCEPTION USING ERRCODE = 'SO409', MESSAGE = 'insufficient_capacity',
            DETAIL = format('%s tracked targets would need a slot but the other usable trackers have %s free; '
                            'retry with ?force=true to leave the rest waiting', excess, room);
    END IF;
    -- Lock them in ascending id order, like every other writer of targets; then move the newest.
    PERFORM 1 FROM targets WHERE tracker_account_id = p_tracker ORDER BY id FOR UPDATE;
    FOR target IN
        SELECT id FROM targets WHERE tracker_account_id = p_tracker ORDER BY id DESC LIMIT excess
    LOOP
        PERFORM so_move_target(target.id, p_tracker, so_least_loaded_tracker(p_tracker));
        moved := moved + 1;
    END LOOP;
    RETURN moved;
END $$;

-- Give waiting targets, oldest first, to usable trackers with free slots. Returns how many moved.
CREATE OR REPLACE FUNCTION so_pickup_waiting() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    target record;
    destination bigint;
    assigned integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM targets WHERE tracker_account_id IS NULL) THEN
        RETURN 0;
    END IF;
    PERFORM so_begin_rebalance();
    -- Waiting targets locked by a subscriber are being assigned by that subscriber: skip them.
    FOR target IN
        SELECT id FROM targets WHERE tracker_account_id IS NULL ORDER BY id FOR UPDATE SKIP LOCKED
    LOOP
        destination := so_least_loaded_tracker();
        EXIT WHEN destination IS NULL;
        PERFORM so_move_target(target.id, NULL, destination);
        assigned := assigned + 1;
    END LOOP;
    RETURN assigned;
END $$;

-- After a tracker's usability or capacity changed: hand on what no longer fits, then fill any room.
-- Returns how many targets left the tracker.
CREATE OR REPLACE FUNCTION so_rebalance_tracker(p_tracker bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    moved integer;
BEGIN
    moved := so_drain_tracker(p_tracker, false, true);
    PERFORM so_pickup_waiting();
    RETURN moved;
END $$;

-- Targets still waiting for their username to be resolved by a tracker whose enrolment is paused for
-- longer than p_pause_over (a long flood wait on contacts.resolveUsername) go to an enrolling tracker
-- with a free slot, least-loaded first. Without one they stay: paused trackers never trade targets,
-- so a wait that hits every tracker causes no cascade. Returns how many moved.
CREATE OR REPLACE FUNCTION so_move_unresolved(p_pause_over interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    target record;
    destination bigint;
    moved integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tracker_health WHERE enrolment_paused_until > now() + p_pause_over) THEN
        RETURN 0;
    END IF;
    PERFORM so_begin_rebalance();
    FOR target IN
        SELECT t.id, t.tracker_account_id
        FROM targets t
        JOIN tracker_health h ON h.tracker_account_id = t.tracker_account_id
        WHERE h.enrolment_paused_until > now() + p_pause_over
          AND NOT EXISTS (
              SELECT 1 FROM tracker_peers p WHERE p.tracker_account_id = t.tracker_account_id AND p.target_id = t.id
          )
        ORDER BY t.id
        FOR UPDATE OF t
    LOOP
        destination := so_least_loaded_tracker(target.tracker_account_id, true);
        EXIT WHEN destination IS NULL;
        PERFORM so_move_target(target.id, target.tracker_account_id, destination);
        moved := moved + 1;
    END LOOP;
    RETURN moved;
END $$;
