-- One-time PostgreSQL setup for the ODR platform. Run as a superuser (or your DBA role) with psql:
--
--   psql -v ON_ERROR_STOP=1 -v odr_password='...' -v backup_password='...' -f postgres-setup.sql postgres
--
-- PostgreSQL 16 or newer is recommended (the platform is tested on 18): tenant roles are then granted
-- to the login role WITH INHERIT FALSE, SET TRUE. On 13-15 the NOINHERIT below has the same effect.

-- 1. The platform's login role. NOT a superuser. CREATEROLE lets it make one NOLOGIN role per tenant
--    at onboarding (it then holds each tenant role WITH INHERIT FALSE, SET TRUE); NOINHERIT keeps it
--    from using any tenant's rights without switching to that tenant's role first.
CREATE ROLE odr LOGIN NOSUPERUSER CREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS NOINHERIT
    PASSWORD :'odr_password';

-- 2. The database, owned by the DBA role running this script (not by the platform).
CREATE DATABASE odr ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE odr FROM PUBLIC;
-- CONNECT to log in; CREATE for the shared schema "odr" and one schema per tenant.
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE odr TO odr;

\connect odr
-- Nobody creates objects in "public" (already the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- 3. A read-only role for backups (pg_dump). The login role cannot read tenant schemas by itself,
--    by design; pg_read_all_data (PostgreSQL 14+) reads everything and changes nothing.
CREATE ROLE odr_backup LOGIN PASSWORD :'backup_password';
GRANT pg_read_all_data TO odr_backup;
GRANT CONNECT ON DATABASE odr TO odr_backup;

-- Check after the first onboarding (odr tenant create): per tenant role, two rows, both with
-- inherit_option = f: PostgreSQL's automatic grant to the creating role (admin_option t, set_option f)
-- and the platform's own grant (set_option t). No other login role should appear.
--   SELECT r.rolname AS tenant_role, m.member::regrole, m.inherit_option, m.set_option, m.admin_option
--     FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
--    WHERE r.rolname LIKE 't\_%' ORDER BY 1, 2;
