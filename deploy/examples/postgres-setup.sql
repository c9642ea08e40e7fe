-- One-time PostgreSQL setup for the ODR platform. Run as a superuser (or your DBA role) with psql:
--
--   psql -v ON_ERROR_STOP=1 -v odr_password='...' -v admin_password='...' -v backup_password='...' \
--        -f postgres-setup.sql postgres
--
-- PostgreSQL 16 or newer is recommended (the platform is tested on 18): tenant roles are then granted
-- with per-grant INHERIT and SET options. On 13-15 the role attributes below have the same effect.
-- tests/test_external_postgres.py runs this file (role names changed) against a throw-away server.

-- 1. The runtime login: every web and timer process pools it (ODR_DATABASE_URL). NOT a superuser and
--    no CREATEROLE: it can neither make roles nor grant itself one. Onboarding makes it a member of
--    each tenant's runtime role t_<slug> WITH INHERIT FALSE, SET TRUE (NOINHERIT on older servers), so
--    it holds a tenant's rights only inside that tenant's transaction, and never of an owner role.
CREATE ROLE odr LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS NOINHERIT
    PASSWORD :'odr_password';

-- 2. The administration login (ODR_ADMIN_DATABASE_URL): onboarding and `odr migrate` only. CREATEROLE
--    makes each tenant's NOLOGIN roles owner_<slug> (owns the schema and its objects) and t_<slug>
--    (the runtime role); it is a member of both, and inherits the runtime login's rights on the
--    shared schema "odr" (accounts, registry) that it writes while onboarding.
CREATE ROLE odr_admin LOGIN NOSUPERUSER CREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS INHERIT
    PASSWORD :'admin_password';
GRANT odr TO odr_admin;

-- 3. The database, owned by the DBA role running this script (not by the platform).
CREATE DATABASE odr ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE odr FROM PUBLIC;
-- CONNECT to log in; CREATE for the shared schema "odr" (runtime login) and one schema per tenant
-- (administration login).
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE odr TO odr;
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE odr TO odr_admin;

\connect odr
-- Nobody creates objects in "public" (already the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- 4. A read-only role for backups (pg_dump). The logins cannot read tenant schemas by themselves,
--    by design; pg_read_all_data (PostgreSQL 14+) reads everything and changes nothing.
CREATE ROLE odr_backup LOGIN PASSWORD :'backup_password';
GRANT pg_read_all_data TO odr_backup;
GRANT CONNECT ON DATABASE odr TO odr_backup;

-- Check after the first onboarding (odr tenant create): the runtime login holds runtime roles only,
-- none inherited; owner roles are held by the administration login alone.
--   SELECT r.rolname AS role, m.member::regrole, m.inherit_option, m.set_option, m.admin_option
--     FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
--    WHERE r.rolname LIKE 't\_%' OR r.rolname LIKE 'owner\_%' ORDER BY 1, 2;
