#!/usr/bin/env bash
# Checks of the Citus cluster's state: balance, shard spread, row counts, orphaned placements. Sourced through pg_test/lib.sh.

# SQL: t when every hash-distributed table has, on every active worker that should have shards,
# a shard count within 1 of every other such worker.
BALANCED_SQL="SELECT coalesce(bool_and(mx - mn <= 1), true) FROM (
  SELECT p.logicalrelid, max(c) mx, min(c) mn FROM (
    SELECT p.logicalrelid, n.groupid,
           (SELECT count(*) FROM pg_dist_shard s JOIN pg_dist_placement pl USING (shardid)
             WHERE s.logicalrelid = p.logicalrelid AND pl.groupid = n.groupid) c
      FROM pg_dist_partition p CROSS JOIN pg_dist_node n
     WHERE p.partmethod = 'h' AND n.groupid <> 0 AND n.isactive AND n.noderole = 'primary' AND n.shouldhaveshards) p
  GROUP BY p.logicalrelid) x"
# shard_spread I: 'port:count ...' of shard placements per worker (for logs).
shard_spread() {
  q "$1" "SELECT string_agg(nodeport || ':' || c, ' ' ORDER BY nodeport) FROM (
            SELECT n.nodeport, count(pl.shardid) c FROM pg_dist_node n
              LEFT JOIN pg_dist_placement pl USING (groupid)
             WHERE n.groupid <> 0 GROUP BY n.nodeport) s"
}
# row_counts I: 'table=count ...' of every distributed and reference table, in name order.
row_counts() {
  local i=$1 t out=""
  for t in $(q "$i" "SELECT logicalrelid::text FROM pg_dist_partition ORDER BY 1"); do
    out+="$t=$(q "$i" "SELECT count(*) FROM $t") "
  done
  echo "$out"
}
# ORPHAN_SQL: placements pointing at a group that is no longer in pg_dist_node (a node removed while
# it still held placements). Must always be 0.
ORPHAN_SQL="SELECT count(*) FROM pg_dist_placement WHERE groupid NOT IN (SELECT groupid FROM pg_dist_node)"
