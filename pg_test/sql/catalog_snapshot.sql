-- Every object of the citus_autoscale extension in the current database, one sorted line each, from the
-- catalogs: functions with signature, properties, ACL and comment; relations with kind, ACL, comment and
-- options; columns (in order), defaults and comments; constraints; indexes; views; sequences; triggers;
-- the extension's config tables and its membership list. Two installs have the same objects exactly when
-- their outputs are equal (pg_test/scenarios/00_upgrade.sh diffs a fresh and an upgraded install).
WITH ext AS (SELECT oid, extnamespace FROM pg_catalog.pg_extension WHERE extname = 'citus_autoscale'),
rels AS (
  SELECT c.oid, c.relname, c.relkind FROM pg_catalog.pg_class c, ext
   WHERE c.relnamespace = ext.extnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p', 'f')
),
lines AS (
  SELECT 'function ' || p.oid::regprocedure::text
         || ' returns ' || coalesce(pg_catalog.pg_get_function_result(p.oid), '-')
         || ' kind=' || p.prokind::text || ' secdef=' || p.prosecdef || ' volatile=' || p.provolatile::text
         || ' strict=' || p.proisstrict || ' parallel=' || p.proparallel::text || ' leakproof=' || p.proleakproof
         || ' cost=' || p.procost || ' rows=' || p.prorows
         || ' lang=' || (SELECT lanname FROM pg_catalog.pg_language l WHERE l.oid = p.prolang)
         || ' config=' || coalesce(p.proconfig::text, '-')
         || ' src=' || CASE WHEN p.prolang = 13 THEN p.prosrc ELSE pg_catalog.md5(p.prosrc) END
         || ' args=' || coalesce(pg_catalog.pg_get_function_arguments(p.oid), '-')
         || ' acl=' || coalesce(p.proacl::text, '-')
         || ' comment=' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '-') AS line
    FROM pg_catalog.pg_proc p, ext WHERE p.pronamespace = ext.extnamespace
  UNION ALL
  SELECT 'relation ' || r.relname || ' kind=' || r.relkind::text
         || ' acl=' || coalesce(c.relacl::text, '-') || ' options=' || coalesce(c.reloptions::text, '-')
         || ' persistence=' || c.relpersistence::text
         || ' comment=' || coalesce(pg_catalog.obj_description(r.oid, 'pg_class'), '-')
    FROM rels r JOIN pg_catalog.pg_class c ON c.oid = r.oid
  UNION ALL
  SELECT 'column ' || r.relname || '.' || lpad(row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum)::text, 3, '0')
         || ' ' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
         || CASE WHEN a.attidentity <> '' THEN ' identity=' || a.attidentity::text ELSE '' END
         || CASE WHEN a.attgenerated <> '' THEN ' generated=' || a.attgenerated::text ELSE '' END
         || ' acl=' || coalesce(a.attacl::text, '-')
         || ' comment=' || coalesce(pg_catalog.col_description(r.oid, a.attnum), '-')
    FROM rels r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
   WHERE r.relkind <> 'S'
  UNION ALL
  SELECT 'constraint ' || r.relname || ' ' || co.conname || ' ' || pg_catalog.pg_get_constraintdef(co.oid)
         || ' comment=' || coalesce(pg_catalog.obj_description(co.oid, 'pg_constraint'), '-')
    FROM rels r JOIN pg_catalog.pg_constraint co ON co.conrelid = r.oid
  UNION ALL
  SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
         || ' comment=' || coalesce(pg_catalog.obj_description(i.indexrelid, 'pg_class'), '-')
    FROM rels r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
  UNION ALL
  SELECT 'view ' || r.relname || ' ' || pg_catalog.pg_get_viewdef(r.oid, true)
    FROM rels r WHERE r.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'sequence ' || r.relname || ' ' || pg_catalog.format_type(s.seqtypid, NULL) || ' start=' || s.seqstart
         || ' inc=' || s.seqincrement || ' min=' || s.seqmin || ' max=' || s.seqmax || ' cache=' || s.seqcache
         || ' cycle=' || s.seqcycle
         || ' owned_by=' || coalesce((SELECT dc.relname || '.' || da.attname FROM pg_catalog.pg_depend dd
              JOIN pg_catalog.pg_class dc ON dc.oid = dd.refobjid
              JOIN pg_catalog.pg_attribute da ON da.attrelid = dd.refobjid AND da.attnum = dd.refobjsubid
             WHERE dd.classid = 'pg_class'::regclass AND dd.objid = r.oid AND dd.deptype IN ('a', 'i')), '-')
    FROM rels r JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid
  UNION ALL
  SELECT 'trigger ' || r.relname || ' ' || pg_catalog.pg_get_triggerdef(t.oid)
    FROM rels r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
  UNION ALL
  SELECT 'type ' || t.typname || ' ' || t.typtype::text
    FROM pg_catalog.pg_type t, ext
   WHERE t.typnamespace = ext.extnamespace AND t.typrelid = 0 AND t.typelem = 0
  UNION ALL
  SELECT 'config_dump ' || u.rel::regclass::text || ' condition=' || coalesce(u.c, '-')
    FROM pg_catalog.pg_extension e, unnest(e.extconfig, e.extcondition) AS u(rel, c)
   WHERE e.extname = 'citus_autoscale'
  UNION ALL
  SELECT 'member ' || pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
    FROM pg_catalog.pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
     AND d.deptype = 'e'
  UNION ALL
  SELECT 'schema ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, '-')
         || ' comment=' || coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '-')
    FROM pg_catalog.pg_namespace n, ext WHERE n.oid = ext.extnamespace
)
SELECT line FROM lines ORDER BY line COLLATE "C";
