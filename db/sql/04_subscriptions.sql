-- Subscriptions: a bot user's TrackedUser rows and the targets they share.

-- Lock a bot user for a quota change; raise the contract's errors for a missing, banned or full bot user.
CREATE OR REPLACE FUNCTION so_lock_bot_user(p_telegram_user bigint, p_adding boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    bot_user record;
BEGIN
    SELECT role, current_users, max_users INTO bot_user FROM telegram_users WHERE id = p_telegram_user FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'SO400', MESSAGE = 'does_not_exist', HINT = 'telegram_user_id',
            DETAIL = format('telegram_user_id: no telegram user with id %s', p_telegram_user);
    END IF;
    IF NOT p_adding THEN
        RETURN;
    END IF;
    IF bot_user.role = @ROLE_BANNED@ THEN
        RAISE EXCEPTION USING ERRCODE = 'SO403', MESSAGE = 'banned', HINT = 'telegram_user_id',
            DETAIL = 'this telegram user is banned and cannot track anyone';
    END IF;
    IF bot_user.current_users >= bot_user.max_users THEN
        RAISE EXCEPTION USING ERRCODE = 'SO409', MESSAGE = 'quota_exceeded', HINT = 'telegram_user_id',
            DETAIL = format('this telegram user already tracks %s of %s allowed users',
                            bot_user.current_users, bot_user.max_users);
    END IF;
END $$;

-- The target for a normalized username, created if new, locked, and holding a slot (or the
-- requested tracker). Raises no_free_slot when no tracker can take it.
CREATE OR REPLACE FUNCTION so_claim_target(p_username text, p_tracker bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    claimed record;
BEGIN
    IF p_tracker IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tracker_accounts WHERE id = p_tracker) THEN
        RAISE EXCEPTION USING ERRCODE = 'SO400', MESSAGE = 'does_not_exist', HINT = 'tracker_account_id',
            DETAIL = format('tracker_account_id: no tracker account with id %s', p_tracker);
    END IF;
    IF p_tracker IS NOT NULL THEN
        -- Moving a target between trackers: the setting locks come before the target's (lock order).
        PERFORM so_begin_rebalance();
    END IF;
    INSERT INTO targets (username) VALUES (p_username)
    ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username
    RETURNING id, tracker_account_id INTO claimed;
    IF p_tracker IS NULL AND claimed.tracker_account_id IS NOT NULL THEN
        RETURN claimed.id;
    END IF;
    IF so_assign_target(claimed.id, p_tracker) IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'SO409', MESSAGE = 'no_free_slot', HINT = 'tracker_account_id',
            DETAIL = CASE WHEN p_tracker IS NULL
                THEN 'no usable tracker has a free slot'
                ELSE format('tracker account %s is not usable or has no free slot', p_tracker) END;
    END IF;
    RETURN claimed.id;
END $$;

-- Create a TrackedUser: quota, ban, target and slot in one transaction. Returns its id.
CREATE OR REPLACE FUNCTION so_subscribe(
    p_telegram_user bigint, p_username text, p_display_username text, p_tracker bigint, p_visible_online boolean
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_target bigint;
    created_id bigint;
BEGIN
    PERFORM so_lock_bot_user(p_telegram_user, true);
    v_target := so_claim_target(p_username, p_tracker);
    INSERT INTO tracked_users (telegram_user_id, target_id, username, visible_online)
    VALUES (p_telegram_user, v_target, p_display_username, p_visible_online)
    RETURNING id INTO created_id;
    UPDATE telegram_users SET current_users = current_users + 1 WHERE id = p_telegram_user;
    RETURN created_id;
END $$;

-- Change a TrackedUser's bot user, username or tracker, keeping every counter exact.
-- Returns true when waiting targets exist (see so_release_target).
CREATE OR REPLACE FUNCTION so_update_subscription(
    p_tracked_user bigint, p_telegram_user bigint, p_username text, p_display_username text, p_tracker bigint,
    p_visible_online boolean
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    seen_bot_user bigint;
    v_row record;
    current_username text;
    new_target bigint;
    waiting boolean := false;
BEGIN
    -- Bot users first (lock order), then the row itself; a concurrent change of bot user means we retry.
    LOOP
        SELECT telegram_user_id INTO seen_bot_user FROM tracked_users WHERE id = p_tracked_user;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'SO404', MESSAGE = 'not_found',
                DETAIL = 'No TrackedUser matches the given query.';
        END IF;
        PERFORM 1 FROM telegram_users WHERE id IN (seen_bot_user, p_telegram_user) ORDER BY id FOR UPDATE;
        SELECT telegram_user_id, target_id INTO v_row FROM tracked_users WHERE id = p_tracked_user FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'SO404', MESSAGE = 'not_found',
                DETAIL = 'No TrackedUser matches the given query.';
        END IF;
        EXIT WHEN v_row.telegram_user_id = seen_bot_user;
    END LOOP;
    IF p_telegram_user IS NOT NULL AND p_telegram_user <> v_row.telegram_user_id THEN
        PERFORM so_lock_bot_user(p_telegram_user, true);  -- the new bot user must exist, be allowed, have room
        UPDATE telegram_users SET current_users = current_users - 1 WHERE id = v_row.telegram_user_id;
        UPDATE telegram_users SET current_users = current_users + 1 WHERE id = p_telegram_user;
    END IF;
    new_target := v_row.target_id;
    SELECT username INTO current_username FROM targets WHERE id = v_row.target_id;
    IF (p_username IS NOT NULL AND p_username <> current_username)
       OR (p_tracker IS NOT NULL
           AND p_tracker IS DISTINCT FROM (SELECT tracker_account_id FROM targets WHERE id = v_row.target_id)) THEN
        -- Two targets and their trackers are involved: take every setting lock up front, in order.
        PERFORM so_begin_rebalance();
        new_target := so_claim_target(coalesce(p_username, current_username), p_tracker);
    END IF;
    UPDATE tracked_users SET
        telegram_user_id = coalesce(p_telegram_user, telegram_user_id),
        target_id = new_target,
        username = coalesce(p_display_username, username),
        visible_online = coalesce(p_visible_online, visible_online)
    WHERE id = p_tracked_user;
    IF new_target <> v_row.target_id THEN
        waiting := so_release_target(v_row.target_id);
    END IF;
    RETURN waiting;
END $$;

-- Delete TrackedUsers, freeing the slots of targets left without subscribers. Returns how many
-- rows went and whether waiting targets exist (see so_release_target).
CREATE OR REPLACE FUNCTION so_unsubscribe(p_tracked_users bigint[], OUT deleted integer, OUT waiting boolean)
LANGUAGE plpgsql AS $$
DECLARE
    gone record;
    released bigint[] := '{}';
    v_target bigint;
BEGIN
    deleted := 0;
    waiting := false;
    -- People first (lock order), then their rows.
    PERFORM 1 FROM telegram_users WHERE id IN (
        SELECT telegram_user_id FROM tracked_users WHERE id = ANY (p_tracked_users)
    ) ORDER BY id FOR UPDATE;
    FOR gone IN
        DELETE FROM tracked_users WHERE id = ANY (p_tracked_users) RETURNING telegram_user_id, tracked_users.target_id
    LOOP
        UPDATE telegram_users SET current_users = current_users - 1 WHERE id = gone.telegram_user_id;
        released := array_append(released, gone.target_id);
        deleted := deleted + 1;
    END LOOP;
    -- Their trackers' settings, in id order, before any target (lock order).
    PERFORM 1 FROM tracker_settings
    WHERE tracker_account_id IN (SELECT tracker_account_id FROM targets WHERE id = ANY (released))
    ORDER BY id FOR UPDATE;
    FOR v_target IN SELECT DISTINCT unnest(released) ORDER BY 1 LOOP
        waiting := so_release_target(v_target) OR waiting;
    END LOOP;
END $$;

-- Delete bot users with all their TrackedUsers. Returns (deleted, waiting) like so_unsubscribe.
CREATE OR REPLACE FUNCTION so_delete_telegram_users(p_bot_users bigint[], OUT deleted integer, OUT waiting boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM telegram_users WHERE id = ANY (p_bot_users) ORDER BY id FOR UPDATE;
    SELECT u.waiting INTO waiting
    FROM so_unsubscribe(ARRAY(SELECT id FROM tracked_users WHERE telegram_user_id = ANY (p_bot_users))) AS u;
    DELETE FROM telegram_users WHERE id = ANY (p_bot_users);
    GET DIAGNOSTICS deleted = ROW_COUNT;
END $$;
