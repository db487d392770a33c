-- NOTIFY payloads are hints carrying ids only; listeners re-read the tables.

-- A tracker's target set changed: its worker re-reads its targets.
CREATE OR REPLACE FUNCTION so_notify_targets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.tracker_account_id IS NOT NULL THEN
        PERFORM pg_notify('@CHANNEL_TARGETS@', OLD.tracker_account_id::text);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.tracker_account_id IS NOT NULL THEN
        PERFORM pg_notify('@CHANNEL_TARGETS@', NEW.tracker_account_id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER targets_notify_insert_delete AFTER INSERT OR DELETE ON targets
    FOR EACH ROW EXECUTE FUNCTION so_notify_targets();
CREATE OR REPLACE TRIGGER targets_notify_update AFTER UPDATE OF tracker_account_id ON targets
    FOR EACH ROW WHEN (OLD.tracker_account_id IS DISTINCT FROM NEW.tracker_account_id)
    EXECUTE FUNCTION so_notify_targets();

-- The set of trackers a supervisor should run may have changed. TG_ARGV[0] names the column that
-- holds the tracker id (``id`` on tracker_accounts, ``tracker_account_id`` elsewhere).
CREATE OR REPLACE FUNCTION so_notify_trackers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    PERFORM pg_notify('@CHANNEL_TRACKERS@', changed ->> TG_ARGV[0]);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER tracker_accounts_notify AFTER INSERT OR UPDATE OR DELETE ON tracker_accounts
    FOR EACH ROW EXECUTE FUNCTION so_notify_trackers('id');
CREATE OR REPLACE TRIGGER tracker_settings_notify AFTER INSERT OR DELETE ON tracker_settings
    FOR EACH ROW EXECUTE FUNCTION so_notify_trackers('tracker_account_id');
CREATE OR REPLACE TRIGGER tracker_settings_notify_update AFTER UPDATE ON tracker_settings
    FOR EACH ROW WHEN (
        OLD.session_encrypted IS DISTINCT FROM NEW.session_encrypted
        OR OLD.max_users IS DISTINCT FROM NEW.max_users
    )
    EXECUTE FUNCTION so_notify_trackers('tracker_account_id');
-- Heartbeats do not wake supervisors; state changes do.
CREATE OR REPLACE TRIGGER tracker_health_notify AFTER INSERT OR DELETE ON tracker_health
    FOR EACH ROW EXECUTE FUNCTION so_notify_trackers('tracker_account_id');
CREATE OR REPLACE TRIGGER tracker_health_notify_update AFTER UPDATE ON tracker_health
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.state_until IS DISTINCT FROM NEW.state_until)
    EXECUTE FUNCTION so_notify_trackers('tracker_account_id');

-- New status rows: one notification per inserting statement (a worker's batch), carrying the highest id.
CREATE OR REPLACE FUNCTION so_notify_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    top bigint;
BEGIN
    SELECT max(id) INTO top FROM new_rows;
    IF top IS NOT NULL THEN
        PERFORM pg_notify('@CHANNEL_STATUSES@', top::text);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER online_statuses_notify AFTER INSERT ON online_statuses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION so_notify_statuses();
