-- citus_autoscale 0.3.0 -> 0.4.0. Applied by ALTER EXTENSION citus_autoscale UPDATE.
-- Every schema change of 0.4.0 is here, in the order it was made; an upgraded install must have exactly the
-- objects of a fresh 0.4.0 install (pg_test/scenarios/00_upgrade.sh compares the catalogs).
\echo Use "ALTER EXTENSION citus_autoscale UPDATE" to load this file. \quit

-- === the library first ===
-- A preloaded library stays loaded until PostgreSQL restarts: new files installed over a running server leave
-- the old library in memory. library_version() (0.3.0 on) answers from the library actually loaded, so the
-- update stops here, before it changes anything, while the old one is still in memory.
DO $library$
BEGIN
  IF pg_catalog.string_to_array(autoscale.library_version(), '.')::int[] < '{0,4,0}'::int[] THEN
    RAISE EXCEPTION 'citus_autoscale: the library loaded in this server is older than 0.4.0, the version this update installs'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'PostgreSQL loaded citus_autoscale ' || autoscale.library_version() || ' at its start '
                     '(shared_preload_libraries) and keeps that library until it restarts; the new files are installed '
                     'but not loaded. Nothing was changed.',
            HINT = 'restart PostgreSQL on this node so that it loads the new library, then run the update again';
  END IF;
END $library$;

-- === vertical scaling advice ===
CREATE  FUNCTION autoscale."resize_advice"(
	"window" interval DEFAULT '10 min' /* Option < Interval > */
) RETURNS TABLE (
	"node" TEXT,  /* String */
	"resource" TEXT,  /* String */
	"observed" double precision,  /* f64 */
	"threshold" double precision,  /* f64 */
	"factor" double precision,  /* f64 */
	"suggested_cores" INT,  /* Option < i32 > */
	"reason" TEXT  /* String */
)
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'resize_advice_wrapper';
REVOKE ALL ON FUNCTION autoscale.resize_advice(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.resize_advice(interval) TO pg_monitor;
COMMENT ON FUNCTION autoscale.resize_advice(interval) IS
  'Vertical scaling advice from the samples of the last window (1 minute to 7 days, default 10 min): per reachable data '
  'node, a row per resource that needs a bigger machine, with the window''s median (observed), the line (threshold), '
  'by how much to grow it (factor), the vCPUs advised when the cores are known, and why. cpu: busy above 70% while the '
  'load cannot be spread further (its busiest shard group carries half of its load, or the cluster is at the highest '
  'max_workers), sized for 60%; memory: used above 85%, sized for 70%; shared_buffers: cache hit ratio below 95%, twice '
  'today''s. Sustained: at least 3 samples, 80% of them beyond the line. Advice only: nothing is resized.';

-- === the provisioner's claims (issue 23): claim, answer and fail a request, with leases ===
ALTER TABLE autoscale.provision_requests
  DROP CONSTRAINT provision_requests_status_check,
  ADD CONSTRAINT provision_requests_status_check
    CHECK (status IN ('pending', 'fulfilled', 'expired', 'sent', 'failed')),
  ADD COLUMN claimed_by text,
  ADD COLUMN claimed_at timestamptz,
  ADD COLUMN lease_until timestamptz,
  ADD COLUMN attempts int NOT NULL DEFAULT 0,
  ADD COLUMN last_error text,
  ADD COLUMN answer jsonb;
COMMENT ON TABLE autoscale.provision_requests IS
  'Outbox of requests to an external provisioner: provision (a node is needed), deprovision (a node left the '
  'cluster and may be reclaimed) and provision_clone (a warm clone of the worker in payload -> primary is wanted: '
  'sent for both halves after a split-out used a clone; fulfilled when autoscale.add_standby_clone() offers one). '
  'Each is also sent as NOTIFY autoscale_provision and, when autoscale.webhook_url is '
  'set, POSTed as json by the background worker outside any tick''s transaction (webhook_* columns track delivery; '
  'webhook_error holds the kind of error or the HTTP status, never the URL). request_key (also in the payload and the '
  'Idempotency-Key header) lets a provisioner de-duplicate. A provisioner answers by adding a node to the cluster or '
  'to the pool, or claims provision and deprovision requests with a lease and answers or fails them '
  '(autoscale.claim_provision_request, answer_provision_request, fail_provision_request; the columns claimed_by to answer). A '
  'provision request expires when its operation ends without a node.';
COMMENT ON COLUMN autoscale.provision_requests.status IS
  'pending: not answered yet; fulfilled: answered (a node joined, or the deprovisioned node is gone); expired: its '
  'operation ended without a node; sent: delivered, nothing to answer; failed: a provisioner gave it up '
  '(autoscale.fail_provision_request(id, error, false)), last_error says why.';
COMMENT ON COLUMN autoscale.provision_requests.claimed_by IS
  'The provisioner that claimed the request last (autoscale.claim_provision_request), NULL when never claimed or '
  'released for a retry.';
COMMENT ON COLUMN autoscale.provision_requests.claimed_at IS 'When the request was claimed last.';
COMMENT ON COLUMN autoscale.provision_requests.lease_until IS
  'Until when the claim holds: another provisioner may claim the request after it (its claimer died); after a '
  'failed attempt that is retried, when the request is claimable again. NULL when answered or never claimed.';
COMMENT ON COLUMN autoscale.provision_requests.attempts IS 'How many times the request was claimed.';
COMMENT ON COLUMN autoscale.provision_requests.last_error IS
  'What the last failed attempt reported (autoscale.fail_provision_request), its last 2000 bytes; NULL once answered.';
COMMENT ON COLUMN autoscale.provision_requests.answer IS
  'The node that answered the request ({"host": .., "port": ..}, autoscale.answer_provision_request); answering '
  'again with the same node does nothing.';

CREATE FUNCTION autoscale."claim_provision_request"(
	"claimer" TEXT, /* Option < & str > */
	"lease" interval DEFAULT '2 minutes' /* Option < Interval > */
) RETURNS TABLE (
	"id" bigint,  /* i64 */
	"kind" TEXT,  /* String */
	"request_key" TEXT,  /* String */
	"payload" jsonb,  /* JsonB */
	"attempts" INT,  /* i32 */
	"lease_until" timestamp with time zone  /* TimestampWithTimeZone */
)
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'claim_provision_request_wrapper';
CREATE FUNCTION autoscale."answer_provision_request"(
	"id" bigint, /* Option < i64 > */
	"host" TEXT, /* Option < & str > */
	"port" INT /* Option < i32 > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'answer_provision_request_wrapper';
CREATE FUNCTION autoscale."fail_provision_request"(
	"id" bigint, /* Option < i64 > */
	"error" TEXT, /* Option < & str > */
	"retry" bool /* Option < bool > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fail_provision_request_wrapper';
REVOKE ALL ON FUNCTION autoscale.claim_provision_request(text, interval),
  autoscale.answer_provision_request(bigint, text, integer),
  autoscale.fail_provision_request(bigint, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION autoscale.claim_provision_request(text, interval) IS
  'For a provisioner: claims the oldest pending provision or deprovision request (provision_clone requests are not '
  'handed out) that is not validly claimed by another provisioner: never claimed, its lease expired (its claimer '
  'died: the request is taken over), released for a retry whose backoff is over, or claimed by this same claimer '
  '(a restarted provisioner resumes its own work at once). The claim counts an attempt and holds until lease_until '
  '(lease: 1 second to 1 day, default 2 minutes). No row when there is nothing to do. Superuser or an explicitly '
  'granted role.';
COMMENT ON FUNCTION autoscale.answer_provision_request(bigint, text, integer) IS
  'For a provisioner: answers request id with node host:port. A pending (or already expired) provision request: '
  'the node joins the standby pool with the checks of autoscale.add_standby_node() (it answers and has the '
  'extension files), where a waiting scale-out takes it. A pending deprovision request: host:port must be its node, '
  'which leaves the standby pool. The request becomes fulfilled and records the answer; answering again with the '
  'same node does nothing, with another node is refused. Superuser or an explicitly granted role.';
COMMENT ON FUNCTION autoscale.fail_provision_request(bigint, text, boolean) IS
  'For a provisioner: records that an attempt at pending request id failed with error (its last 2000 bytes kept in '
  'last_error). retry true: the claim is released and the request is claimable again after 5 s, 10 s, 20 s, ... '
  '(at most 5 min) by attempt; false: the request becomes failed. Superuser or an explicitly granted role.';
