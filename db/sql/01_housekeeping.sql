-- updated_at is maintained by the database so raw-SQL writers never forget it.
-- A key rotation (`seeonline secrets rotate`, which sets seeonline.key_rotation for its transactions)
-- re-encrypts unchanged secrets: the row did not change, so a FATAL tracker stays FATAL.
CREATE OR REPLACE FUNCTION so_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('seeonline.key_rotation', true) = 'on' THEN
        NEW.updated_at := OLD.updated_at;
    ELSE
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

DO $$
DECLARE
    audited text;
BEGIN
    FOREACH audited IN ARRAY ARRAY[
        'tracker_accounts', 'tracker_settings', 'tracker_health', 'telegram_users', 'tracked_users', 'targets',
        'tracker_logins'
    ] LOOP
        EXECUTE format(
            'CREATE OR REPLACE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION so_set_updated_at()',
            audited || '_updated_at', audited
        );
    END LOOP;
END $$;

-- Monthly partitions for the status log (rows outside them land in the default partition, which
-- revision 0001 created).
-- SECURITY DEFINER: the application role has DML only (see deploy/postgres/roles.sql); the partitions are
-- made by, and belong to, the role that owns the schema.
CREATE OR REPLACE FUNCTION so_ensure_status_partitions(p_from date, p_months integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    month_start date := date_trunc('month', p_from)::date;
    month_end date;
    created integer := 0;
    name text;
BEGIN
    -- One creator at a time: the API and supervisors all call this.
    PERFORM pg_advisory_xact_lock(@PARTITION_LOCK@);
    FOR i IN 0 .. p_months - 1 LOOP
        name := format('online_statuses_p%s', to_char(month_start, 'YYYY_MM'));
        month_end := (month_start + interval '1 month')::date;
        IF to_regclass(name) IS NULL THEN
            -- Rows of that month that already landed in the default partition move into the new one
            -- (a partition cannot be created over rows the default holds).
            EXECUTE format('CREATE TABLE %I (LIKE online_statuses INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
            EXECUTE format(
                'WITH moved AS (DELETE FROM online_statuses_default WHERE created_at >= %L AND created_at < %L'
                ' RETURNING *) INSERT INTO %I SELECT * FROM moved',
                month_start::timestamptz, month_end::timestamptz, name
            );
            EXECUTE format(
                'ALTER TABLE online_statuses ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                name, month_start::timestamptz, month_end::timestamptz
            );
            created := created + 1;
        END IF;
        month_start := month_end;
    END LOOP;
    RETURN created;
END $$;

-- Retention: drop one monthly partition of the status log (only those; by the schema's owner, as above).
-- The days after it lose the state carried in from its rows, the days in it their rows: stored days
-- (08_history_days.sql) from a day before its end (whatever zone its bounds were written in) are stale.
CREATE OR REPLACE FUNCTION so_drop_status_partition(p_name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_stale_from timestamptz;
BEGIN
    IF p_name !~ '^online_statuses_p[0-9]{4}_[0-9]{2}$' OR NOT EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'online_statuses'::regclass AND c.relname = p_name
    ) THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE %I', p_name);
    v_stale_from := (to_date(substr(p_name, 18), 'YYYY_MM') + interval '1 month' - interval '1 day')::timestamp
                    AT TIME ZONE 'UTC';
    DELETE FROM history_days WHERE starts_at < v_stale_from;
    PERFORM so_history_stale(array_agg(id), v_stale_from) FROM tracked_users;
    RETURN true;
END $$;

-- A fresh database gets the months around today at once; the API and supervisors keep them ahead.
SELECT so_ensure_status_partitions((now() - interval '1 month')::date, 5);

-- Expired tracker logins keep no pre-login session (nor code hash); rows a day past their expiry go
-- altogether. Run when a login starts and by the supervisor's housekeeping, so a session never outlives
-- its 15 minutes by more than a reconcile pass even when nobody touches the login again.
CREATE OR REPLACE FUNCTION so_sweep_logins() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    wiped integer;
BEGIN
    UPDATE tracker_logins SET session_encrypted = NULL, phone_code_hash = NULL
    WHERE expires_at <= now() AND session_encrypted IS NOT NULL;
    GET DIAGNOSTICS wiped = ROW_COUNT;
    DELETE FROM tracker_logins WHERE expires_at < now() - interval '1 day';
    RETURN wiped;
END $$;
