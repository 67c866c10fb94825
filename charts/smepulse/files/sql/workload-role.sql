-- One workload's own PostgreSQL role, owner of its own database (psql, run as the superuser by
-- the `roles` container of the PostgreSQL Pod; idempotent, so every restart and `helm upgrade`
-- converges). Variables: role, db, password (set by workload-roles.sql, the password read
-- with \getenv from the container's environment: never on a command line).
\if :{?password}
SELECT length(:'password') >= 8 AS password_ok \gset
\else
\set password_ok false
\endif
\if :password_ok
\else
\echo 'workload-role.sql: no password (8 characters or more) in the environment for role' :role
DO $$ BEGIN RAISE EXCEPTION 'a workload role has no password'; END $$;
\endif
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"role";
-- Only its owner (and the superuser) may connect: the other workloads' roles are refused.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
\connect :"db"
ALTER SCHEMA public OWNER TO :"role";
-- Tables and views made by the superuser (the Iceberg catalog's tables of the init SQL, or any
-- install from before per-workload roles) pass to the role; their sequences follow their tables.
SELECT format('ALTER TABLE public.%I OWNER TO %I', c.relname, :'role')
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
  AND c.relkind IN ('r', 'p', 'v', 'm')
  AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = :'role') \gexec
\connect postgres
