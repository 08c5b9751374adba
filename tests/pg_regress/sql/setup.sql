-- The regression database: the extension on plain PostgreSQL (no Citus), so every output here is
-- what a user sees without a cluster, and does not depend on load.
CREATE EXTENSION citus_autoscale;
