-- The database roles of a real deployment (psql variables: database, migrate_role, migrate_password,
-- app_role, app_password). Run once as the server's superuser; compose.yaml does so on the first start
-- of its Postgres (deploy/postgres/10-roles.sh).
--
-- migrate_role owns the database and its public schema: `seeonline db upgrade` runs as it and creates
-- every table, sequence and routine. app_role (the API and the supervisor) may only read and write rows,
-- use sequences, run the so_* routines and LISTEN; it cannot create, alter or drop anything. The two
-- routines that make and drop status-log partitions are SECURITY DEFINER (db/sql/01_housekeeping.sql).
CREATE ROLE :"migrate_role" LOGIN PASSWORD :'migrate_password';
CREATE ROLE :"app_role" LOGIN PASSWORD :'app_password';
ALTER DATABASE :"database" OWNER TO :"migrate_role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"app_role";
\connect :"database"
ALTER SCHEMA public OWNER TO :"migrate_role";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrate_role" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrate_role" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrate_role" IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO :"app_role";
