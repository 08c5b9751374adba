-- citus_autoscale 0.1.0 -> 0.2.0. Applied by ALTER EXTENSION citus_autoscale UPDATE.
-- Every schema change of 0.2.0 is here, in the order it was made; an upgraded install must have exactly the
-- objects of a fresh 0.2.0 install (pg_test/scenarios/00_upgrade.sh compares the catalogs).
-- Released scripts are never edited: 0.2.0's changes after its release go into a 0.2.0--<next> script.
\echo Use "ALTER EXTENSION citus_autoscale UPDATE" to load this file. \quit
