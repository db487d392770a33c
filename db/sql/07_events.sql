-- The event log (``events``) that SSE streams and webhooks follow with "id > cursor".
--
-- Identity ids are taken at INSERT, not at COMMIT: two worker batches can commit out of id order, and a
-- reader that already moved past the later id would never see the earlier one. So events are not written
-- by the inserting statement but by commit-time (deferred constraint) triggers, which first take
-- EVENT_LOG_LOCK (held until the commit). Event ids are therefore handed out in commit order: a
-- transaction that takes ids after another one took the lock only after that one's commit became visible
-- (Postgres makes a commit visible before it releases the transaction's locks). The lock is held only
-- from the trigger to the end of the commit, after every other lock the transaction takes, so it cannot
-- deadlock; it serializes the commits of status-writing transactions (one per worker batch).

-- Every recorded transition becomes a ``status`` event for its tracked user.
CREATE OR REPLACE FUNCTION so_event_on_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(@EVENT_LOG_LOCK@);
    INSERT INTO events (type, tracked_user_id, status_id, is_online, happened_at, previous_change_at)
    VALUES (
        @EVENT_STATUS@, NEW.tracked_user_id, NEW.id, NEW.is_online, NEW.created_at,
        (SELECT max(s.created_at) FROM online_statuses s
         WHERE s.tracked_user_id = NEW.tracked_user_id AND s.created_at < NEW.created_at)
    );
    PERFORM pg_notify('@CHANNEL_EVENTS@', '');  -- equal payloads fold into one notification per commit
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER online_statuses_event AFTER INSERT ON online_statuses
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION so_event_on_status();

-- A target starting or stopping to hide its status (a subscriber's visible_online flips) is a
-- ``visibility`` event for that subscriber.
CREATE OR REPLACE FUNCTION so_event_on_visibility() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(@EVENT_LOG_LOCK@);
    INSERT INTO events (type, tracked_user_id, visibility, happened_at)
    SELECT @EVENT_VISIBILITY@, NEW.id,
           CASE WHEN NEW.visible_online THEN @VISIBILITY_VISIBLE@
                WHEN t.visibility IN (@VISIBILITY_VISIBLE@, @VISIBILITY_UNKNOWN@) THEN @VISIBILITY_HIDDEN@
                ELSE t.visibility END,
           clock_timestamp()
    FROM targets t WHERE t.id = NEW.target_id;
    PERFORM pg_notify('@CHANNEL_EVENTS@', '');
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER tracked_users_visibility_event AFTER UPDATE OF visible_online ON tracked_users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.visible_online IS DISTINCT FROM NEW.visible_online)
    EXECUTE FUNCTION so_event_on_visibility();

-- What a reader gets per event: the subscription's current preferences (for notify_only) and the JSON
-- streams and webhooks send. Events of deleted tracked users drop out of the join.
CREATE OR REPLACE VIEW so_event_feed AS
SELECT e.id, e.type, e.recorded_at, e.is_online, u.id AS tracked_user_id, u.telegram_user_id,
       u.notify_mode, u.mute_until,
       CASE e.type
       WHEN @EVENT_STATUS@ THEN json_build_object(
           'id', e.id, 'tracked_user_id', u.id, 'telegram_user_id', u.telegram_user_id,
           'telegram_id', p.telegram_id, 'username', u.username, 'display_name', u.display_name,
           'is_online', e.is_online, 'created_at', e.happened_at, 'previous_change_at', e.previous_change_at,
           'previous_state_seconds', floor(extract(epoch FROM e.happened_at - e.previous_change_at))::bigint)
       ELSE json_build_object(
           'id', e.id, 'tracked_user_id', u.id, 'telegram_user_id', u.telegram_user_id,
           'telegram_id', p.telegram_id, 'username', u.username, 'display_name', u.display_name,
           'visibility', e.visibility, 'visible_online', e.visibility = @VISIBILITY_VISIBLE@, 'created_at', e.happened_at)
       END::text AS data
FROM events e
JOIN tracked_users u ON u.id = e.tracked_user_id
JOIN telegram_users p ON p.id = u.telegram_user_id;

-- Webhook changes wake the deliverers (payload: the webhook id).
CREATE OR REPLACE FUNCTION so_notify_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('@CHANNEL_WEBHOOKS@', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END::text);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER webhooks_notify AFTER INSERT OR DELETE OR UPDATE OF url, events, telegram_user_id,
    notify_only, state ON webhooks FOR EACH ROW EXECUTE FUNCTION so_notify_webhooks();

CREATE OR REPLACE TRIGGER webhooks_updated_at BEFORE UPDATE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION so_set_updated_at();

-- Events older than ``p_before`` go; a reader whose cursor is older than what is left gets a reset.
CREATE OR REPLACE FUNCTION so_prune_events(p_before timestamptz) RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM events WHERE recorded_at < p_before RETURNING 1)
    SELECT count(*) FROM gone;
$$;
