//! `#[pg_test]`s: the SQL API, settings and the background worker on a single PostgreSQL
//! (the pgrx test instance preloads citus_autoscale and pg_cron; see `pg_test` in lib.rs).
//! Each test runs in a transaction that is rolled back; what must be committed (ALTER SYSTEM,
//! pg_cron jobs, a second session) goes through dblink.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;

    fn one<T: FromDatum + IntoDatum>(sql: &str) -> T {
        Spi::get_one::<T>(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: NULL"))
    }

    fn count(sql: &str) -> i64 {
        one::<i64>(sql)
    }

    /// dblink and a connection string to this database, for work that must commit.
    fn setup_helpers() {
        setup();
        Spi::run(
            "CREATE EXTENSION IF NOT EXISTS dblink;
             CREATE OR REPLACE FUNCTION pg_temp.autoscale_test_conn() RETURNS text LANGUAGE sql AS $$
               SELECT format('host=%s port=%s dbname=%s user=%s',
                             split_part(current_setting('unix_socket_directories'), ',', 1),
                             current_setting('port'), current_database(), current_user) $$;",
        )
        .unwrap();
    }

    /// Runs `sql` in its own committed session.
    fn remote(sql: &str) {
        Spi::run_with_args(
            "SELECT dblink_exec(pg_temp.autoscale_test_conn(), $1)",
            &[sql.into()],
        )
        .unwrap_or_else(|e| panic!("remote {sql}: {e}"));
    }

    /// The single value `sql` returns in its own session ("" for no row or NULL).
    fn remote_one(sql: &str) -> String {
        Spi::get_one_with_args::<String>(
            "SELECT (SELECT v FROM dblink(pg_temp.autoscale_test_conn(), $1) AS t(v text) LIMIT 1)",
            &[sql.into()],
        )
        .unwrap_or_else(|e| panic!("remote {sql}: {e}"))
        .unwrap_or_default()
    }

    fn sleep(secs: f64) {
        Spi::run_with_args("SELECT pg_sleep($1)", &[secs.into()]).unwrap();
    }

    fn set_system(name: &str, value: &str) {
        remote(&format!("ALTER SYSTEM SET {name} = '{value}'"));
        remote_one("SELECT pg_reload_conf()::text");
        sleep(0.5);
    }

    fn reset_system(name: &str) {
        remote(&format!("ALTER SYSTEM RESET {name}"));
        remote_one("SELECT pg_reload_conf()::text");
    }

    /// Samples the worker has committed so far.
    fn worker_samples() -> i64 {
        remote_one("SELECT count(*)::text FROM autoscale.worker_count WHERE driver = 'worker'")
            .parse()
            .unwrap()
    }

    /// autoscale.dead_node_after: 2 min by default, -1 (never) or 10 s .. 30 days; a value in
    /// between is refused with a detail that names the setting, the value and what is allowed.
    #[pg_test]
    fn dead_node_after_setting_is_validated() {
        setup();
        assert_eq!(one::<String>("SHOW autoscale.dead_node_after"), "2min");
        Spi::run("SET autoscale.dead_node_after = -1").unwrap();
        Spi::run("SET autoscale.dead_node_after = '10s'").unwrap();
        Spi::run("SET autoscale.dead_node_after = '1h'").unwrap();
        assert_eq!(one::<String>("SHOW autoscale.dead_node_after"), "1h");
        for bad in ["'5s'", "0"] {
            assert_err(
                &format!("SET autoscale.dead_node_after = {bad}"),
                "22023",
                &[
                    "invalid value for parameter \"autoscale.dead_node_after\"",
                    "must be -1 (never declare a worker dead) or between 10 s and 2592000 s",
                ],
            );
        }
        assert_err(
            "SET autoscale.dead_node_after = '31d'",
            "22023",
            &["outside the valid range for parameter \"autoscale.dead_node_after\""],
        );
    }

    #[pg_test]
    fn settings_have_units_bounds_and_defaults() {
        setup();
        assert_eq!(
            one::<String>("SELECT current_setting('autoscale.node_timeout')"),
            "2s"
        );
        assert_eq!(
            one::<String>("SELECT current_setting('autoscale.history_retention')"),
            "7d"
        );
        assert_eq!(
            one::<String>("SELECT current_setting('autoscale.database_name')"),
            "pgrx_tests"
        );
        assert_eq!(
            one::<String>("SELECT unit FROM pg_settings WHERE name = 'autoscale.sample_interval'"),
            "ms"
        );
        assert_eq!(
            one::<String>("SELECT context FROM pg_settings WHERE name = 'autoscale.database_name'"),
            "postmaster"
        );
        Spi::run("SET autoscale.sample_interval = '2min'").unwrap();
        assert_eq!(one::<String>("SHOW autoscale.sample_interval"), "2min");
        let e = err("SET autoscale.sample_interval = '10ms'");
        assert!(
            e.starts_with("22023: 10 ms is outside the valid range"),
            "{e}"
        );
        let e = err("SET autoscale.sample_interval = '2h'");
        assert!(e.contains("outside the valid range"), "{e}");
        let e = err("SET autoscale.history_retention = -2");
        assert!(e.contains("outside the valid range"), "{e}");
        let e = err("SET autoscale.forecast_cycle_window = '4d'");
        // PostgreSQL 16 and later give the bounds their unit too: (0 s .. 259200 s)
        assert!(
            e.starts_with("22023: 345600 s is outside the valid range for parameter \"autoscale.forecast_cycle_window\" (0")
                && e.contains(".. 259200"),
            "{e}"
        );
        let e = err("SET autoscale.forecast_cycle_min = '10s'");
        assert!(e.contains("outside the valid range"), "{e}");
        Spi::run("SET autoscale.history_retention = -1").unwrap();
        let e = err("SET autoscale.mode = 'fast'");
        assert!(
            e.starts_with("22023: invalid value for parameter \"autoscale.mode\": \"fast\""),
            "{e}"
        );
        let e = err("SET autoscale.database_name = 'x'");
        assert!(e.starts_with("55P02"), "{e}");
        // the prefix is reserved: a typo is an error, not a silently ignored placeholder
        let e = err("SET autoscale.sample_intreval = '1s'");
        assert!(e.contains("autoscale.sample_intreval"), "{e}");
    }

    /// `\df+`, `\d+` and `SHOW` explain everything: every function, table, view and sequence of
    /// the extension has a COMMENT, and every setting a description.
    #[pg_test]
    fn every_object_and_setting_is_documented() {
        let missing = one::<String>(
            "SELECT coalesce(string_agg(o, ', ' ORDER BY o), '') FROM (
               SELECT p.oid::regprocedure::text AS o FROM pg_proc p
                WHERE p.pronamespace = 'autoscale'::regnamespace
                  AND coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
               UNION ALL
               SELECT c.oid::regclass::text FROM pg_class c
                WHERE c.relnamespace = 'autoscale'::regnamespace AND c.relkind IN ('r', 'v', 'p')
                  AND coalesce(obj_description(c.oid, 'pg_class'), '') = ''
               UNION ALL
               SELECT name FROM pg_settings
                WHERE name LIKE 'autoscale.%' AND coalesce(short_desc, '') = '') m",
        );
        assert_eq!(missing, "", "undocumented objects or settings");
        assert!(
            count("SELECT count(*) FROM pg_proc WHERE pronamespace = 'autoscale'::regnamespace")
                >= 14
        );
        assert!(count("SELECT count(*) FROM pg_settings WHERE name LIKE 'autoscale.%'") >= 16);
    }

    #[pg_test]
    fn node_stats_reports_this_node() {
        let s = one::<JsonB>("SELECT autoscale.node_stats()").0;
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(s["is_coordinator"], false, "no Citus here");
        assert!(s["shard_bytes"].is_null());
        let src = s["cpu"]["source"].as_str().unwrap();
        assert!(src == "proc_stat" || src == "cgroup", "{src}");
        assert!(s["cpu"]["busy_seconds"].as_f64().unwrap() > 0.0);
        assert!(
            s["cpu"]["capacity_seconds"].as_f64().unwrap()
                >= s["cpu"]["busy_seconds"].as_f64().unwrap()
        );
        assert!(s["cpu"]["cores"].as_f64().unwrap() >= 0.01);
        assert_eq!(s["load"].as_array().unwrap().len(), 3);
        let total = s["memory"]["total_bytes"].as_u64().unwrap();
        assert!(total > 64 << 20 && s["memory"]["available_bytes"].as_u64().unwrap() <= total);
        let data_dir = one::<String>("SELECT current_setting('data_directory')");
        assert_eq!(s["disk"]["path"], data_dir.as_str());
        assert!(
            s["disk"]["free_bytes"].as_u64().unwrap() <= s["disk"]["total_bytes"].as_u64().unwrap()
        );
        assert!(
            s["connections"]["total"].as_i64().unwrap() >= 1,
            "this session counts"
        );
        assert!(
            s["connections"]["active"].as_i64().unwrap() >= 1,
            "this session is active"
        );
        assert!(s["xact"]["commit"].as_i64().unwrap() > 0);
        assert_eq!(
            s["database_size"].as_i64().unwrap(),
            one::<i64>("SELECT pg_database_size(current_database())")
        );
        let now = one::<f64>("SELECT extract(epoch FROM clock_timestamp())::float8");
        assert!((s["at"].as_f64().unwrap() - now).abs() < 5.0);
    }

    #[pg_test]
    fn sample_without_citus_records_this_node_and_rates() {
        let first = one::<JsonB>("SELECT autoscale.sample()").0;
        assert_eq!(first["nodes"], 1, "{first}");
        assert_eq!(first["workers"], 0, "{first}");
        let id = first["sample_id"].as_i64().unwrap();
        let row = Spi::get_three_with_args::<String, bool, bool>(
            "SELECT nodename, reachable, is_coordinator FROM autoscale.node_samples WHERE sample_id = $1",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(
            row,
            (Some("localhost".into()), Some(true), Some(false)),
            "{first}"
        );
        assert_eq!(count(&format!("SELECT count(*) FROM autoscale.worker_count WHERE sample_id = {id} AND driver = 'sql'")), 1);
        // burn some CPU and commit nothing: the next sample has a CPU rate from the two readings
        Spi::run("SELECT count(*) FROM generate_series(1, 300000) g WHERE md5(g::text) LIKE 'a%'")
            .unwrap();
        let second = one::<JsonB>("SELECT autoscale.sample()").0;
        let id2 = second["sample_id"].as_i64().unwrap();
        let (cpu, commits) = Spi::get_two_with_args::<f64, f64>(
            "SELECT cpu_busy_pct::float8, commits_per_sec::float8 FROM autoscale.node_samples WHERE sample_id = $1",
            &[id2.into()],
        )
        .unwrap();
        let cpu = cpu.expect("second sample has a CPU rate");
        assert!(cpu > 0.0 && cpu <= 100.0, "{cpu}");
        assert!(commits.expect("commit rate") >= 0.0);
        assert_eq!(
            count("SELECT count(*) FROM autoscale.latest_node_load WHERE nodename = 'localhost'"),
            1
        );
    }

    #[pg_test]
    fn concurrent_ticks_do_not_double_sample() {
        setup_helpers();
        Spi::run("SET autoscale.sample_interval = '1h'").unwrap();
        let before = count("SELECT count(*) FROM autoscale.worker_count");
        let t1 = one::<JsonB>("SELECT autoscale.tick()").0;
        // this transaction now holds the sample lock: another session skips instead of sampling
        let other = remote_one("SELECT autoscale.tick()::text");
        assert!(other.contains("another sample is being taken"), "{other}");
        // a second tick in this session finds the sample not yet due
        let t2 = one::<JsonB>("SELECT autoscale.tick()").0;
        let after = count("SELECT count(*) FROM autoscale.worker_count");
        let sampled = t1.get("sample").is_some() as i64;
        assert!(t2.get("sample").is_none(), "{t2}");
        assert!(t2["next_sample_in"].as_f64().unwrap() > 3000.0, "{t2}");
        assert_eq!(
            after - before,
            sampled,
            "one tick sampled at most once: {t1} {t2}"
        );
    }

    #[pg_test]
    fn node_samples_view_writes_reads_and_forgets_through_the_compact_history() {
        // the first statement a DELETE through the view (its trigger locks the sample it changes)
        Spi::run("DELETE FROM autoscale.node_samples WHERE sample_id < 0").unwrap();
        Spi::run(
            "INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator,
                                                 reachable, error, cpu_busy_pct, shard_bytes, mean_statement_ms)
               VALUES (-2, now() - interval '10 s', 2, 'w2', 5432, false, true, NULL, 12.345, 9123456789, 0.4125),
                      (-2, now() - interval '10 s', 3, 'w3', 5432, false, false, 'timeout', NULL, NULL, NULL),
                      (-1, now(), 2, 'w2', 5432, false, false, 'timeout', NULL, NULL, NULL),
                      (-1, now(), 3, 'w3', 5432, false, true, NULL, 50, 7, NULL)",
        )
        .unwrap();
        assert_eq!(
            count("SELECT count(*) FROM autoscale.node_history WHERE sample_id < 0"),
            2,
            "one history row per sample"
        );
        // a key per node, and no key value spent on the nodes already named
        let seq = "SELECT last_value FROM autoscale.history_nodes_node_key_seq";
        let before = one::<i64>(seq);
        Spi::run(
            "INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable)
               VALUES (-3, now() - interval '20 s', 2, 'w2', 5432, false, true)",
        )
        .unwrap();
        assert_eq!(one::<i64>(seq), before, "no key taken for a known node");
        assert_eq!(
            count("SELECT count(*) FROM autoscale.node_samples WHERE sample_id IN (-1, -2)"),
            4
        );
        let (cpu, bytes) = Spi::get_two::<f32, i64>(
            "SELECT cpu_busy_pct, shard_bytes FROM autoscale.node_samples WHERE sample_id = -2 AND nodename = 'w2'",
        )
        .unwrap();
        assert_eq!(cpu, Some(12.35), "CPU busy % kept to 0.01");
        assert_eq!(bytes, Some(9_123_456_789), "bytes kept exactly");
        assert_eq!(
            one::<String>(
                "SELECT error FROM autoscale.node_samples WHERE sample_id = -2 AND nodename = 'w3'"
            ),
            "timeout"
        );
        // each node's latest reading: w2 failed at its latest sample, w3 answered
        assert_eq!(
            one::<String>(
                "SELECT string_agg(nodename || ':' || (last_reachable_at IS NOT DISTINCT FROM last_seen_at)
                                   || ':' || (first_failed_at IS NOT NULL) || ':' || coalesce(shard_bytes::text, '-'),
                                   ',' ORDER BY nodename)
                   FROM autoscale.node_latest WHERE nodename IN ('w2', 'w3')"
            ),
            "w2:false:true:9123456789,w3:true:false:7"
        );
        Spi::run("UPDATE autoscale.node_samples SET cpu_busy_pct = 99 WHERE sample_id = -1 AND nodename = 'w3'")
            .unwrap();
        assert_eq!(
            one::<f32>("SELECT cpu_busy_pct FROM autoscale.node_samples WHERE sample_id = -1 AND nodename = 'w3'"),
            99.0
        );
        Spi::run("DELETE FROM autoscale.node_samples WHERE sample_id = -1 AND nodename = 'w3'")
            .unwrap();
        assert_eq!(
            count("SELECT count(*) FROM autoscale.node_samples WHERE sample_id = -1"),
            1,
            "the sample keeps its other node"
        );
        assert_eq!(
            count("SELECT count(*) FROM autoscale.node_latest WHERE nodename = 'w3'"),
            0,
            "the node's latest reading went with it"
        );
        Spi::run("DELETE FROM autoscale.node_samples WHERE sample_id = -1").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM autoscale.node_history WHERE sample_id = -1"),
            0,
            "a sample without readings goes"
        );
        // a row without its required columns is refused, naming them
        setup();
        assert_err(
            "SELECT autoscale.record_node_samples('{\"sample_id\": 1, \"nodeport\": 1}')",
            "22023",
            &[
                "invalid row for autoscale.node_samples",
                "nodename and sampled_at",
            ],
        );
    }

    #[pg_test]
    fn tick_prunes_history_in_batches() {
        Spi::run(
            "INSERT INTO autoscale.events (at, kind, message)
               SELECT now() - interval '8 days', 'test', 'old' FROM generate_series(1, 12000);
             INSERT INTO autoscale.events (kind, message) VALUES ('test', 'new');
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodename, nodeport, is_coordinator, reachable)
               VALUES (-1, now() - interval '8 days', 'old', 1, false, false);
             SET autoscale.history_retention = '7d';
             SET autoscale.sample_interval = '1h'",
        )
        .unwrap();
        let t = one::<JsonB>("SELECT autoscale.tick()").0;
        // one batch per table per tick: 10000 events and the old sample row
        assert_eq!(t["pruned"], 10_001, "{t}");
        assert_eq!(
            count("SELECT count(*) FROM autoscale.events WHERE kind = 'test' AND message = 'old'"),
            2000
        );
        let t = one::<JsonB>("SELECT autoscale.tick()").0;
        assert_eq!(t["pruned"], 2000, "{t}");
        assert_eq!(
            count("SELECT count(*) FROM autoscale.events WHERE kind = 'test'"),
            1,
            "the new event stays"
        );
        assert_eq!(
            count("SELECT count(*) FROM autoscale.node_samples WHERE nodename = 'old'"),
            0
        );
        Spi::run("SET autoscale.history_retention = -1; INSERT INTO autoscale.events (at, kind, message) VALUES (now() - interval '30 days', 'test', 'old')").unwrap();
        assert_eq!(one::<JsonB>("SELECT autoscale.tick()").0["pruned"], 0);
    }

    #[pg_test]
    fn mode_off_makes_tick_do_nothing() {
        Spi::run("SET autoscale.mode = off").unwrap();
        let t = one::<JsonB>("SELECT autoscale.tick()").0;
        assert_eq!(t["skipped"], "autoscale.mode is off");
    }

    #[pg_test]
    fn functions_that_change_things_are_not_for_public() {
        setup();
        Spi::run("CREATE ROLE autoscale_test_reader LOGIN; GRANT pg_monitor TO autoscale_test_reader; CREATE ROLE autoscale_test_nobody LOGIN").unwrap();
        Spi::run("SET ROLE autoscale_test_reader").unwrap();
        assert!(count("SELECT count(*) FROM autoscale.node_samples") >= 0);
        assert!(one::<JsonB>("SELECT autoscale.node_stats()").0["version"].is_string());
        let e = err("SELECT autoscale.sample()");
        assert!(
            e.starts_with("42501: permission denied for function sample"),
            "{e}"
        );
        let e = err("SELECT autoscale.tick()");
        assert!(e.starts_with("42501"), "{e}");
        let e = err("DELETE FROM autoscale.events");
        assert!(e.starts_with("42501"), "{e}");
        Spi::run("RESET ROLE; SET ROLE autoscale_test_nobody").unwrap();
        let e = err("SELECT * FROM autoscale.worker_count");
        assert!(e.starts_with("42501"), "{e}");
        let e = err("SELECT autoscale.node_stats()");
        assert!(e.starts_with("42501"), "{e}");
        Spi::run("RESET ROLE").unwrap();
    }

    /// The worker's life: it samples on its own, follows a reloaded sample_interval, idles with
    /// mode = off, records a failed tick as an event and keeps going. One test, so that the
    /// settings it changes through ALTER SYSTEM do not race with other worker tests.
    #[pg_test]
    fn background_worker_life_cycle() {
        setup_helpers();
        let pid = || {
            remote_one(
                "SELECT pid::text FROM pg_stat_activity WHERE backend_type = 'citus_autoscale sampler'",
            )
        };
        // 1. it samples on its own (the sampler process) (sample_interval = 1s in the test instance); it may still be
        //    restarting after its first start found no test database
        let mut worker_pid = pid();
        for _ in 0..50 {
            if !worker_pid.is_empty() && worker_samples() > 0 {
                break;
            }
            sleep(0.2);
            worker_pid = pid();
        }
        assert!(!worker_pid.is_empty(), "the worker runs");
        let n0 = worker_samples();
        sleep(3.5);
        let n1 = worker_samples();
        assert!(n1 - n0 >= 2, "worker sampled {} times in 3.5 s", n1 - n0);

        // 2. a reloaded interval takes effect: 300 ms gives more than 2x the samples of 1 s
        set_system("autoscale.sample_interval", "300ms");
        let a = worker_samples();
        sleep(3.0);
        let fast = worker_samples() - a;
        assert!(fast >= 6, "300 ms interval gave {fast} samples in 3 s");
        set_system("autoscale.sample_interval", "2s");
        let a = worker_samples();
        sleep(3.0);
        let slow = worker_samples() - a;
        assert!(
            slow <= 3 && slow < fast,
            "2 s interval gave {slow} samples in 3 s (300 ms gave {fast})"
        );

        // 3. mode = off idles
        set_system("autoscale.sample_interval", "300ms");
        set_system("autoscale.mode", "off");
        let a = worker_samples();
        sleep(2.0);
        assert_eq!(worker_samples(), a, "no samples with mode = off");
        reset_system("autoscale.mode");
        sleep(1.5);
        assert!(worker_samples() > a, "sampling resumes");

        // 4. a failing tick is recorded and the worker keeps going
        remote(
            "CREATE FUNCTION public.autoscale_test_fail() RETURNS trigger LANGUAGE plpgsql AS
               $$BEGIN RAISE EXCEPTION 'injected failure'; END$$;
             CREATE TRIGGER autoscale_test_fail BEFORE INSERT ON autoscale.worker_count
               FOR EACH ROW EXECUTE FUNCTION public.autoscale_test_fail()",
        );
        sleep(2.0);
        remote("DROP TRIGGER autoscale_test_fail ON autoscale.worker_count; DROP FUNCTION public.autoscale_test_fail()");
        let errors: i64 = remote_one(
            "SELECT count(*)::text FROM autoscale.events WHERE kind = 'error' AND message LIKE 'sample failed:%injected failure%'",
        )
        .parse()
        .unwrap();
        assert!(errors >= 1, "the failed sample is an event");
        let a = worker_samples();
        sleep(1.5);
        assert!(
            worker_samples() > a,
            "the sampler goes on after failed samples"
        );
        assert_eq!(pid(), worker_pid, "and it is the same process");
        remote(
            "DELETE FROM autoscale.events WHERE message LIKE 'sample failed:%injected failure%'",
        );
        reset_system("autoscale.sample_interval");

        // 5. pg_cron drives the same tick while the worker stands aside (autoscale.worker_enabled).
        //    Debian's pg_cron 1.4 schedules by the minute (1.5+ also takes '5 seconds').
        if remote_one(
            "SELECT (pg_catalog.current_setting('shared_preload_libraries') LIKE '%pg_cron%')::text",
        ) != "true"
        {
            eprintln!("pg_cron is not installed for this PostgreSQL: the pg_cron part of this test skipped");
            return;
        }
        set_system("autoscale.worker_enabled", "off");
        let a = worker_samples();
        remote("CREATE EXTENSION IF NOT EXISTS pg_cron");
        remote_one(
            "SELECT cron.schedule('autoscale_test', '* * * * *', 'SELECT autoscale.tick()')::text",
        );
        let by_cron = || -> i64 {
            remote_one("SELECT count(*)::text FROM autoscale.worker_count WHERE driver = 'pg_cron'")
                .parse()
                .unwrap()
        };
        for _ in 0..70 {
            if by_cron() > 0 {
                break;
            }
            sleep(1.0);
        }
        let ok_runs: i64 = remote_one(
            "SELECT count(*)::text FROM cron.job_run_details d JOIN cron.job j USING (jobid)
              WHERE j.jobname = 'autoscale_test' AND d.status = 'succeeded'",
        )
        .parse()
        .unwrap();
        let cron_samples = by_cron();
        let worker_while_disabled = worker_samples() - a;
        remote_one("SELECT cron.unschedule('autoscale_test')::text");
        remote("DELETE FROM autoscale.worker_count WHERE driver = 'pg_cron'");
        reset_system("autoscale.worker_enabled");
        assert!(ok_runs >= 1, "pg_cron ran autoscale.tick() successfully");
        assert!(cron_samples >= 1, "a tick driven by pg_cron sampled");
        assert_eq!(worker_while_disabled, 0, "the worker stood aside");
    }

    // ---- policies (issue 3) and the manual operations' checks that need no Citus ----

    /// Creates the session's helper function pg_temp.err (in pg_temp: concurrent tests do not
    /// collide): the error `sql` fails with, caught in a subtransaction so the test goes on.
    fn setup() {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
             DECLARE d text;
             BEGIN EXECUTE sql; RETURN NULL;
             EXCEPTION WHEN OTHERS THEN
               GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
               RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' DETAIL: ' || nullif(d, ''), ''); END $$",
        )
        .unwrap();
    }

    /// A role without superuser for custom metric SQL (autoscale.custom_sql_role), that may read
    /// the tables this session creates from now on.
    fn custom_sql_setup() {
        Spi::run(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'autoscale_t_metrics') THEN
                 CREATE ROLE autoscale_t_metrics;
               END IF; END $$;
             ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO autoscale_t_metrics;
             SET autoscale.custom_sql_role = 'autoscale_t_metrics'",
        )
        .unwrap();
    }

    fn err(sql: &str) -> String {
        Spi::get_one_with_args::<String>("SELECT pg_temp.err($1)", &[sql.into()])
            .unwrap()
            .unwrap_or_else(|| format!("no error from {sql}"))
    }

    #[track_caller]
    fn assert_err(sql: &str, sqlstate: &str, contains: &[&str]) {
        let e = err(sql);
        assert!(
            e.starts_with(&format!("{sqlstate}: ")),
            "{sql} -- gave: {e} -- expected SQLSTATE {sqlstate}"
        );
        for c in contains {
            assert!(
                e.contains(c),
                "{sql} -- gave: {e} -- expected to contain: {c}"
            );
        }
    }

    #[pg_test]
    fn set_policy_validates_every_argument() {
        setup();
        custom_sql_setup();
        assert_err(
            "SELECT autoscale.set_policy('cpu', scale_out_above => 50, scale_in_below => 60)",
            "22023",
            &["scale_in_below", "60", "less than scale_out_above (50)"],
        );
        assert_err(
            "SELECT autoscale.set_policy('cpu', min_workers => 5, max_workers => 3)",
            "22023",
            &["min_workers", "5", "max_workers (3)"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'iops')",
            "22023",
            &["metric", "\"iops\"", "cpu, memory"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', aggregate => 'p99')",
            "22023",
            &["aggregate", "\"p99\"", "avg or max"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', scale_out_for => '-5 min')",
            "22023",
            &["scale_out_for", "-300", "interval >= 0"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', cooldown => '-1 s')",
            "22023",
            &["cooldown", "-1"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', step => 0)",
            "22023",
            &["step", "0", "between 1 and 100"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', min_workers => -1)",
            "22023",
            &["min_workers", "-1"],
        );
        assert_err(
            "SELECT autoscale.set_policy('Bad Name')",
            "22023",
            &["name", "Bad Name"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', scale_out_above => 120)",
            "22023",
            &["scale_out_above", "120", "0 and 100"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', target => 0)",
            "22023",
            &["target", "0"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', target => 60, tolerance => 2)",
            "22023",
            &["tolerance", "2"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', target => 60, scale_out_above => 80)",
            "22023",
            &["target", "not both"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'connections')",
            "22023",
            &["scale_out_above", "NULL", "no default thresholds"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'custom', scale_out_above => 10, scale_in_below => 1)",
            "22023",
            &["custom_sql", "NULL", "required for metric custom"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'cpu', custom_sql => 'SELECT 1')",
            "22023",
            &["custom_sql", "metric custom"],
        );
        // custom expressions are run once at creation
        Spi::run("CREATE TEMP TABLE knob (v int); CREATE TEMP TABLE knob2 (v int)").unwrap();
        Spi::run("INSERT INTO knob2 VALUES (1), (2)").unwrap();
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'custom', custom_sql => 'SELECT v FROM pg_temp.knob', scale_out_above => 10, scale_in_below => 1)",
            "22023",
            &["custom_sql", "no rows"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'custom', custom_sql => 'SELECT v FROM pg_temp.knob2', scale_out_above => 10, scale_in_below => 1)",
            "22023",
            &["custom_sql", "several rows"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'custom', custom_sql => 'SELECT ''high''::text', scale_out_above => 10, scale_in_below => 1)",
            "22023",
            &["custom_sql", "returned text", "must return a number"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'custom', custom_sql => 'SELECT 1, 2', scale_out_above => 10, scale_in_below => 1)",
            "22023",
            &["custom_sql", "2 columns"],
        );
        assert_err(
            "SELECT autoscale.set_policy('x', metric => 'custom', custom_sql => 'SELEC 1', scale_out_above => 10, scale_in_below => 1)",
            "22023",
            &["custom_sql", "syntax error"],
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.policy_config"),
            0,
            "nothing stored by bad calls"
        );

        // good ones, create or replace
        let p = one::<JsonB>("SELECT autoscale.set_policy('cpu')").0;
        assert_eq!(p["kind"]["scale_out_above"], 80.0);
        assert_eq!(p["kind"]["scale_in_below"], 25.0);
        assert_eq!(p["scale_out_for"], 120.0);
        Spi::run("SELECT autoscale.set_policy('cpu', scale_out_above => 70, scale_in_below => 20, scale_out_for => '1 min', max_workers => 8)").unwrap();
        assert_eq!(
            one::<String>("SELECT rule FROM autoscale.policies WHERE name = 'cpu'"),
            "> 70 / < 20"
        );
        assert_eq!(
            one::<String>("SELECT scale_out_for::text FROM autoscale.policies WHERE name = 'cpu'"),
            "00:01:00"
        );
        Spi::run("SELECT autoscale.set_policy('conns', metric => 'active_connections', aggregate => 'max', target => 40)").unwrap();
        assert_eq!(
            one::<String>("SELECT rule FROM autoscale.policies WHERE name = 'conns'"),
            "target 40 ±10.0%"
        );
        Spi::run("CREATE TABLE public.queue_depth (v numeric); INSERT INTO public.queue_depth VALUES (12.5)").unwrap();
        Spi::run("SELECT autoscale.set_policy('queue', metric => 'custom', custom_sql => 'SELECT v FROM public.queue_depth', scale_out_above => 100, scale_in_below => 5)").unwrap();
        assert_eq!(one::<i64>("SELECT count(*) FROM autoscale.policies"), 3);
        assert!(one::<bool>("SELECT autoscale.drop_policy('conns')"));
        assert_err(
            "SELECT autoscale.drop_policy('conns')",
            "42704",
            &["policy \"conns\" does not exist"],
        );
        // policies are kept by pg_dump
        assert_eq!(
            one::<i64>("SELECT count(*) FROM pg_extension WHERE extname = 'citus_autoscale' AND extconfig @> ARRAY['autoscale.policy_config'::regclass::oid]"),
            1
        );
    }

    /// Empties the sample history for this test, and keeps the test instance's own background
    /// worker (it samples every second) from committing samples until the test ends. Only for
    /// tests that do not tick: the blocked worker holds the tick's advisory lock.
    fn fresh_history() {
        Spi::run(
            "LOCK TABLE autoscale.worker_count IN EXCLUSIVE MODE;
             DELETE FROM autoscale.worker_count; DELETE FROM autoscale.node_samples",
        )
        .unwrap();
    }

    /// Writes `n` samples, `every` seconds apart and ending now, with one worker row each whose
    /// cpu_busy_pct comes from `cpu(i)`.
    fn record_samples(n: i32, every: f64, cpu: &str) {
        Spi::run(&format!(
            "INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver)
               SELECT now() - make_interval(secs => ({n} - i) * {every}), -i, 2, 2, 0, 0, 'test' FROM generate_series(1, {n}) i;
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable, cpu_busy_pct)
               SELECT -i, now() - make_interval(secs => ({n} - i) * {every}), w, 'w' || w, 5432, false, true, {cpu}
                 FROM generate_series(1, {n}) i, generate_series(2, 3) w;"
        ))
        .unwrap();
    }

    #[pg_test]
    fn single_node_reads_the_coordinator_and_scales_out_from_zero() {
        setup();
        Spi::run("SET autoscale.sample_interval = '5s'; SET autoscale.mode = 'observe'").unwrap();
        fresh_history();
        // 3 minutes of a single-node Citus: no worker, the coordinator holds the shards at 93%
        Spi::run(
            "INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver)
               SELECT now() - make_interval(secs => (37 - i) * 5), -i, 0, 0, 0, 0, 'test' FROM generate_series(1, 37) i;
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable, cpu_busy_pct, data_node)
               SELECT -i, now() - make_interval(secs => (37 - i) * 5), 1, '10.0.0.1', 5432, true, true, 93, true
                 FROM generate_series(1, 37) i",
        )
        .unwrap();
        let p = one::<JsonB>(
            "SELECT autoscale.set_policy('cpu', scale_out_above => 70, scale_in_below => 20, scale_out_for => '1 min',
                                         min_workers => 0, max_workers => 2, step => 2)",
        );
        assert_eq!(p.0["min_workers"], 0);
        let (decision, desired, nodes) = Spi::get_three::<String, i32, Vec<String>>(
            "SELECT decision, desired_workers, data_nodes FROM autoscale.explain() WHERE policy = 'cpu'",
        )
        .unwrap();
        assert_eq!(decision.as_deref(), Some("out"));
        assert_eq!(desired, Some(2), "both standbys in one operation");
        assert_eq!(nodes, Some(vec!["10.0.0.1:5432 (coordinator)".to_string()]));
        assert_eq!(
            one::<Vec<String>>("SELECT data_nodes FROM autoscale.status"),
            vec!["10.0.0.1:5432 (coordinator)".to_string()]
        );
        // with two workers that hold shards too, the coordinator's load is averaged with theirs
        Spi::run(
            "INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver)
               VALUES (now() + interval '1 ms', 1, 2, 2, 0, 0, 'test');
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable, cpu_busy_pct, data_node)
               VALUES (1, now() + interval '1 ms', 1, '10.0.0.1', 5432, true, true, 90, true),
                      (1, now() + interval '1 ms', 2, '10.0.0.2', 5432, false, true, 30, true),
                      (1, now() + interval '1 ms', 3, '10.0.0.3', 5432, false, true, 30, true)",
        )
        .unwrap();
        let (value, nodes) = Spi::get_two::<f64, Vec<String>>(
            "SELECT current_value, data_nodes FROM autoscale.explain() WHERE policy = 'cpu'",
        )
        .unwrap();
        assert_eq!(value, Some(50.0));
        assert_eq!(nodes.map(|n| n.len()), Some(3));
        assert_err(
            "SELECT autoscale.set_policy('x', min_workers => -1)",
            "22023",
            &["min_workers", "-1", "between 0 and 1000"],
        );
    }

    #[pg_test]
    fn explain_reads_recorded_samples() {
        Spi::run("SET autoscale.sample_interval = '5s'; SET autoscale.mode = 'observe'").unwrap();
        fresh_history();
        // 3 minutes at 90% cpu on both workers
        record_samples(37, 5.0, "90");
        Spi::run("SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, scale_out_for => '2 min', min_workers => 1)").unwrap();
        Spi::run("SELECT autoscale.set_policy('mem', metric => 'memory', scale_out_above => 95, scale_in_below => 10, min_workers => 1)").unwrap();
        let (value, decision, desired) = Spi::get_three::<f64, String, i32>(
            "SELECT current_value, decision, desired_workers FROM autoscale.explain() WHERE policy = 'cpu'",
        )
        .unwrap();
        assert_eq!(value, Some(90.0));
        assert_eq!(decision.as_deref(), Some("out"));
        assert_eq!(desired, Some(3));
        let held = one::<f64>("SELECT extract(epoch FROM held_for)::float8 FROM autoscale.explain() WHERE policy = 'cpu'");
        assert!((175.0..=185.0).contains(&held), "held for {held}");
        let reasons = one::<String>(
            "SELECT array_to_string(reasons, ' | ') FROM autoscale.explain() WHERE policy = 'cpu'",
        );
        assert!(
            reasons.contains("cpu avg 90") && reasons.contains("> 80"),
            "{reasons}"
        );
        // memory has no data: it holds and says why
        let (decision, reasons) = Spi::get_two::<String, Vec<String>>(
            "SELECT decision, reasons FROM autoscale.explain() WHERE policy = 'mem'",
        )
        .unwrap();
        assert_eq!(decision.as_deref(), Some("hold"));
        assert!(!reasons.unwrap_or_default().is_empty());
        // explain acts on nothing and records nothing
        assert_eq!(one::<i64>("SELECT count(*) FROM autoscale.operations"), 0);
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.events WHERE kind = 'decision'"),
            0
        );
    }

    #[pg_test]
    fn backtest_replays_recorded_samples() {
        setup();
        Spi::run("SET autoscale.sample_interval = '5s'").unwrap();
        fresh_history();
        assert_err(
            "SELECT * FROM autoscale.backtest()",
            "55000",
            &["no policy to backtest"],
        );
        // 20 minutes on 2 workers: 10 minutes at 95% cpu, then 10 minutes at 5%
        record_samples(241, 5.0, "CASE WHEN i <= 120 THEN 95 ELSE 5 END");
        Spi::run(
            "SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, scale_out_for => '1 min',
                    scale_in_for => '5 min', cooldown => '2 min', min_workers => 2, max_workers => 4)",
        )
        .unwrap();
        // 95% on 2 workers is 63% on 3: one scale-out holds it; 5% later scales back in, once
        assert_eq!(
            one::<String>(
                "SELECT string_agg(decision || ' ' || from_workers || '->' || to_workers, ', ' ORDER BY at)
                   FROM autoscale.backtest('1 hour')"
            ),
            "out 2->3, in 3->2"
        );
        let (out_after, in_after) = Spi::get_two::<f64, f64>(
            "SELECT extract(epoch FROM min(at) FILTER (WHERE decision = 'out') - min(s.sampled_at))::float8,
                    extract(epoch FROM min(at) FILTER (WHERE decision = 'in') - min(s.sampled_at))::float8
               FROM autoscale.backtest('1 hour'), autoscale.worker_count s",
        )
        .unwrap();
        let (out_after, in_after) = (out_after.unwrap(), in_after.unwrap());
        assert!(
            (50.0..=70.0).contains(&out_after),
            "out after {out_after} s"
        );
        assert!(
            (895.0..=960.0).contains(&in_after),
            "in after {in_after} s (load fell at 600 s)"
        );
        let reasons = one::<String>(
            "SELECT array_to_string(reasons, ' | ') FROM autoscale.backtest('1 hour', 'cpu') WHERE decision = 'out'",
        );
        assert!(
            reasons.contains("cpu avg 95") && reasons.contains("> 80"),
            "{reasons}"
        );
        // a window that only sees the quiet part, with min_workers reached: nothing to do
        assert_eq!(count("SELECT count(*) FROM autoscale.backtest('4 min')"), 0);
        assert_err(
            "SELECT * FROM autoscale.backtest(policy => 'nope')",
            "42704",
            &["nope"],
        );
        assert_err(
            "SELECT * FROM autoscale.backtest('-1 hour')",
            "22023",
            &["since"],
        );
        assert_err(
            "SELECT * FROM autoscale.backtest(operation_time => '-1 s')",
            "22023",
            &["operation_time"],
        );
        // it acts on nothing and records nothing
        assert_eq!(count("SELECT count(*) FROM autoscale.operations"), 0);
        assert_eq!(
            count("SELECT count(*) FROM autoscale.events WHERE kind = 'decision'"),
            0
        );
    }

    #[pg_test]
    fn metrics_are_prometheus_text_of_the_recorded_state() {
        setup();
        fresh_history();
        Spi::run("SET autoscale.sample_interval = '5s'").unwrap();
        record_samples(37, 5.0, "90");
        Spi::run("SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, scale_out_for => '2 min', min_workers => 1)").unwrap();
        let text = one::<String>("SELECT autoscale.metrics()");
        for line in [
            "# TYPE autoscale_workers gauge",
            "autoscale_workers{state=\"active\"} 2",
            "autoscale_node_up{node=\"w2:5432\",role=\"worker\"} 1",
            "autoscale_node_cpu_busy_percent{node=\"w3:5432\",role=\"worker\"} 90",
            "autoscale_policy_value{policy=\"cpu\",metric=\"cpu\"} 90",
            "autoscale_policy_desired_workers{policy=\"cpu\",metric=\"cpu\"} 3",
            "autoscale_operation_running{kind=\"scale_out\"} 0",
            "autoscale_standby_nodes{state=\"available\"} 0",
            "autoscale_paused 0",
            "autoscale_operation_running{kind=\"replace_dead\"} 0",
            "autoscale_dead_nodes{replaceable=\"true\"} 0",
            "autoscale_dead_nodes{replaceable=\"false\"} 0",
            "# TYPE autoscale_operations_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        let mode = one::<String>("SELECT current_setting('autoscale.mode')");
        assert!(
            text.contains(&format!("autoscale_mode{{mode=\"{mode}\"}} 1")),
            "{text}"
        );
        // every sample line is `name{labels} value`, and every family says its HELP and TYPE first
        let mut typed = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
            } else if !l.starts_with("# HELP ") {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(typed.contains(name), "{name} has no TYPE line before it");
                let value = l.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "not a number in {l:?}");
            }
        }
        // a node missing from the latest sample is not reported, an unreachable one is up 0
        Spi::run("UPDATE autoscale.node_samples SET reachable = false, cpu_busy_pct = NULL WHERE nodename = 'w3' AND sample_id = -37").unwrap();
        let text = one::<String>("SELECT autoscale.metrics()");
        assert!(
            text.contains("autoscale_node_up{node=\"w3:5432\",role=\"worker\"} 0"),
            "{text}"
        );
        assert!(
            !text.contains("autoscale_node_cpu_busy_percent{node=\"w3:5432\""),
            "{text}"
        );
    }

    #[pg_test]
    fn explain_never_scales_in_on_missing_data() {
        Spi::run("SET autoscale.sample_interval = '5s'").unwrap();
        fresh_history();
        // 20 minutes at 5% cpu, but one sample in the window has no value for worker 3 and an unreachable worker
        record_samples(241, 5.0, "5");
        Spi::run("UPDATE autoscale.worker_count SET unreachable_workers = 1, reachable_workers = 1 WHERE sample_id = -200").unwrap();
        Spi::run("SELECT autoscale.set_policy('cpu', scale_in_below => 25, scale_out_above => 80, scale_in_for => '15 min', min_workers => 1)").unwrap();
        let (decision, reasons) = Spi::get_two::<String, Vec<String>>(
            "SELECT decision, reasons FROM autoscale.explain() WHERE policy = 'cpu'",
        )
        .unwrap();
        assert_eq!(decision.as_deref(), Some("hold"));
        let reasons = reasons.unwrap().join(" | ");
        assert!(reasons.contains("unreachable"), "{reasons}");
        // without the gap it scales in
        Spi::run(
            "UPDATE autoscale.worker_count SET unreachable_workers = 0, reachable_workers = 2",
        )
        .unwrap();
        assert_eq!(
            one::<String>("SELECT decision FROM autoscale.explain() WHERE policy = 'cpu'"),
            "in"
        );
    }

    #[pg_test]
    fn observe_mode_records_would_scale_and_does_nothing() {
        Spi::run("SET autoscale.sample_interval = '1h'; SET autoscale.mode = 'observe'").unwrap();
        Spi::run("DELETE FROM autoscale.worker_count; DELETE FROM autoscale.node_samples; DELETE FROM autoscale.events").unwrap();
        record_samples(37, 5.0, "95");
        Spi::run("SET autoscale.sample_interval = '5s'").unwrap();
        Spi::run("SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, scale_out_for => '2 min', min_workers => 1)").unwrap();
        // a tick samples this node too (one more point at the current load) and decides
        Spi::run("SELECT autoscale.tick()").unwrap();
        let msg = one::<String>("SELECT message FROM autoscale.events WHERE kind = 'decision'");
        assert!(
            msg.starts_with("would scale out from 2 to 3 workers: cpu: cpu avg 95"),
            "{msg}"
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.operations"),
            0,
            "observe starts nothing"
        );
        assert_eq!(
            one::<String>("SELECT last_decision FROM autoscale.status"),
            "out"
        );
        // the same decision again is not recorded twice
        Spi::run("SET autoscale.sample_interval = '1h'; SELECT autoscale.tick(); SELECT autoscale.tick()").unwrap();
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.events WHERE kind = 'decision'"),
            1
        );
        // paused: the next decision holds, and says why
        Spi::run("SELECT autoscale.pause('10 min'); SELECT autoscale.tick()").unwrap();
        let status_pause = one::<bool>("SELECT paused_until > now() FROM autoscale.status");
        assert!(status_pause);
        assert_eq!(
            one::<String>("SELECT last_decision FROM autoscale.status"),
            "hold"
        );
        let why = one::<String>("SELECT last_decision_reasons::text FROM autoscale.status");
        assert!(why.contains("paused until"), "{why}");
        assert!(one::<bool>("SELECT autoscale.resume()"));
        setup();
        assert_err("SELECT autoscale.pause('-1 min')", "22023", &["duration"]);
    }

    /// Without Citus the sampler records this node alone (worker_count 0): the engine counts it as
    /// one worker, so an observe-mode decision is about its load, "from 1 to 2 workers", not about
    /// min_workers; explain() and backtest() say the same.
    #[pg_test]
    fn without_citus_the_node_is_a_cluster_of_one_worker() {
        Spi::run("SET autoscale.sample_interval = '5s'; SET autoscale.mode = 'observe'").unwrap();
        // hold the tick lock for the test's transaction: the test instance's background worker
        // then skips its ticks and adds no sample of its own (this session's tick may re-take it)
        Spi::run_with_args(
            "SELECT pg_advisory_xact_lock($1)",
            &[crate::orchestration::tick::TICK_LOCK_KEY.into()],
        )
        .unwrap();
        Spi::run("DELETE FROM autoscale.worker_count; DELETE FROM autoscale.node_samples; DELETE FROM autoscale.events").unwrap();
        // 3 minutes of samples as the sampler writes them on plain PostgreSQL: no workers, this
        // node (not a coordinator); 2 minutes quiet, then 60 s at 900 commits/s
        Spi::run(
            "INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver)
               SELECT now() - make_interval(secs => (37 - i) * 5), -i, 0, 0, 0, 0, 'test' FROM generate_series(1, 37) i;
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodename, nodeport, is_coordinator, reachable, commits_per_sec)
               SELECT -i, now() - make_interval(secs => (37 - i) * 5), 'localhost', 5432, false, true,
                      CASE WHEN i > 24 THEN 900 ELSE 3 END
                 FROM generate_series(1, 37) i;",
        )
        .unwrap();
        Spi::run(
            "SELECT autoscale.set_policy('writes', metric => 'commits_per_sec', aggregate => 'max',
                    scale_out_above => 500, scale_in_below => 10, scale_out_for => '30 s', scale_in_for => '1 min',
                    min_workers => 1, max_workers => 3)",
        )
        .unwrap();
        let (workers, desired, decision) = Spi::get_three::<i32, i32, String>(
            "SELECT workers, desired_workers, decision FROM autoscale.explain() WHERE policy = 'writes'",
        )
        .unwrap();
        assert_eq!(
            (workers, desired, decision.as_deref()),
            (Some(1), Some(2), Some("out"))
        );
        let reasons = one::<String>(
            "SELECT array_to_string(reasons, ' | ') FROM autoscale.explain() WHERE policy = 'writes'",
        );
        assert!(
            reasons.contains("commits_per_sec max 900.0 > 500") && !reasons.contains("min_workers"),
            "{reasons}"
        );
        // backtest replays the same history from one worker: the load (spread over 2) is relieved
        assert_eq!(
            one::<String>(
                "SELECT string_agg(decision || ' ' || from_workers || '->' || to_workers, ', ' ORDER BY at)
                   FROM autoscale.backtest('1 hour', operation_time => '5 s')"
            ),
            "out 1->2"
        );
        // a tick (no new sample: the last one is recent) records the observe-mode decision
        Spi::run("SET autoscale.sample_interval = '1h'; SELECT autoscale.tick()").unwrap();
        let msg = one::<String>("SELECT message FROM autoscale.events WHERE kind = 'decision'");
        assert!(
            msg.starts_with(
                "would scale out from 1 to 2 workers: writes: commits_per_sec max 900.0 > 500"
            ),
            "{msg}"
        );
        assert_eq!(count("SELECT count(*) FROM autoscale.operations"), 0);
        // quiet again: at min_workers, nothing to do
        Spi::run("UPDATE autoscale.node_samples SET commits_per_sec = 3").unwrap();
        Spi::run("SET autoscale.sample_interval = '5s'").unwrap();
        let (desired, decision) = Spi::get_two::<i32, String>(
            "SELECT desired_workers, decision FROM autoscale.explain() WHERE policy = 'writes'",
        )
        .unwrap();
        assert_eq!((desired, decision.as_deref()), (Some(1), Some("hold")));
    }

    #[pg_test]
    fn policy_functions_are_for_superusers_and_granted_roles() {
        setup();
        custom_sql_setup();
        Spi::run(
            "CREATE ROLE autoscale_t_monitor; GRANT pg_monitor TO autoscale_t_monitor;
             CREATE ROLE autoscale_t_admin;
             GRANT EXECUTE ON FUNCTION autoscale.set_policy(text, text, text, double precision, double precision,
                   double precision, double precision, interval, interval, interval, interval, integer, integer, integer, text,
                   boolean)
               TO autoscale_t_admin;",
        )
        .unwrap();
        Spi::run("SELECT autoscale.set_policy('cpu')").unwrap();
        Spi::run("SET ROLE autoscale_t_monitor").unwrap();
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.policies"),
            1,
            "pg_monitor reads policies"
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.explain()"),
            1,
            "and explain"
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.status"),
            1,
            "and status"
        );
        let e = err("SELECT count(*) FROM autoscale.backtest('1 hour')");
        assert!(e.starts_with("no error"), "and backtest: {e}");
        let e = err("SELECT autoscale.metrics()");
        assert!(e.starts_with("no error"), "and metrics: {e}");
        for f in [
            "SELECT autoscale.set_policy('x')",
            "SELECT autoscale.drop_policy('cpu')",
            "SELECT autoscale.pause('1 min')",
            "SELECT autoscale.resume()",
            "SELECT autoscale.rebalance_now()",
            "SELECT autoscale.scale_out()",
            "SELECT autoscale.scale_in('h', 1)",
            "SELECT autoscale.add_standby_node('h', 1)",
            "SELECT autoscale.remove_standby_node('h', 1)",
            "SELECT autoscale.cancel_operation()",
            "UPDATE autoscale.policy_config SET max_workers = 100",
        ] {
            assert_err(f, "42501", &["permission denied"]);
        }
        Spi::run("RESET ROLE; SET ROLE autoscale_t_admin").unwrap();
        // an explicitly granted role may change policies, through the function only
        Spi::run("SELECT autoscale.set_policy('cpu', scale_out_above => 75)").unwrap();
        assert_err(
            "SELECT count(*) FROM autoscale.policy_config",
            "42501",
            &["permission denied"],
        );
        // but custom SQL stays with superusers
        assert_err(
            "SELECT autoscale.set_policy('q', metric => 'custom', custom_sql => 'SELECT 1', scale_out_above => 10, scale_in_below => 1)",
            "42501",
            &["requires superuser"],
        );
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            one::<f64>("SELECT scale_out_above FROM autoscale.policy_config WHERE name = 'cpu'"),
            75.0
        );
    }

    #[pg_test]
    fn cluster_functions_need_citus() {
        setup();
        for (f, name) in [
            (
                "SELECT autoscale.rebalance_now()",
                "autoscale.rebalance_now()",
            ),
            ("SELECT autoscale.scale_out()", "autoscale.scale_out()"),
            (
                "SELECT autoscale.scale_in('127.0.0.1', 5432)",
                "autoscale.scale_in()",
            ),
            (
                "SELECT autoscale.add_standby_node('127.0.0.1', 5432)",
                "autoscale.add_standby_node()",
            ),
            (
                "SELECT autoscale.add_standby_clone('127.0.0.1', 5433, '127.0.0.1', 5432)",
                "autoscale.add_standby_clone()",
            ),
        ] {
            assert_err(f, "0A000", &[name, "requires the citus extension"]);
        }
        // the path of a scale-out is readable anywhere, and says why it is not a split
        assert_eq!(
            one::<String>("SELECT scale_out_path FROM autoscale.status"),
            "logical: not a Citus coordinator"
        );
    }

    #[pg_test]
    fn custom_metric_failures_are_events_not_crashes() {
        custom_sql_setup();
        Spi::run("CREATE TABLE public.knob (v float8); INSERT INTO public.knob VALUES (3)")
            .unwrap();
        Spi::run("SELECT autoscale.set_policy('knob', metric => 'custom', custom_sql => 'SELECT v FROM public.knob', scale_out_above => 10, scale_in_below => 1)").unwrap();
        Spi::run("SELECT autoscale.sample()").unwrap();
        assert_eq!(
            one::<f64>("SELECT value FROM autoscale.metric_samples WHERE policy = 'knob'"),
            3.0
        );
        Spi::run("DELETE FROM public.knob").unwrap();
        Spi::run("SELECT autoscale.sample()").unwrap();
        let e = one::<String>(
            "SELECT error FROM autoscale.metric_samples WHERE policy = 'knob' AND value IS NULL",
        );
        assert!(e.contains("no rows"), "{e}");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.events WHERE kind = 'custom_metric_failed'"),
            1
        );
        // a slow one is cut by the statement timeout and the sample still completes
        Spi::run("UPDATE autoscale.policy_config SET custom_sql = 'SELECT v FROM public.knob, pg_sleep(5)' WHERE name = 'knob'").unwrap();
        Spi::run("INSERT INTO public.knob VALUES (1)").unwrap();
        let s = one::<JsonB>("SELECT autoscale.sample()").0;
        assert!(s["sample_id"].as_i64().is_some());
        let e = one::<String>("SELECT error FROM autoscale.metric_samples WHERE policy = 'knob' ORDER BY sample_id DESC LIMIT 1");
        assert!(e.contains("statement timeout"), "{e}");
    }

    // ---- issue 10: safety and security ----

    /// Defect 1: a role granted EXECUTE on set_policy cannot get its custom SQL configured (and
    /// so run as a superuser at every sample) by hiding the call where a superuser's session runs
    /// it: an expression index that ANALYZE evaluates, or its own SECURITY DEFINER function.
    #[pg_test]
    fn custom_sql_cannot_be_smuggled_through_a_superuser_session() {
        setup();
        custom_sql_setup();
        Spi::run(
            "CREATE ROLE autoscale_t_attacker;
             GRANT EXECUTE ON FUNCTION autoscale.set_policy(text, text, text, double precision, double precision,
                   double precision, double precision, interval, interval, interval, interval, integer, integer, integer, text,
                   boolean)
               TO autoscale_t_attacker;
             GRANT CREATE ON SCHEMA public TO autoscale_t_attacker;
             SET ROLE autoscale_t_attacker;
             -- calls set_policy once armed: later, when a superuser's session evaluates it
             CREATE FUNCTION public.autoscale_t_trap(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
             BEGIN
               IF current_setting('autoscale_t.armed', true) = 'on' THEN
                 PERFORM autoscale.set_policy('smuggled', metric => 'custom', custom_sql => 'SELECT 1',
                                              scale_out_above => 10, scale_in_below => 1);
               END IF;
               RETURN i;
             END $f$;
             CREATE FUNCTION public.autoscale_t_definer() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $f$
             BEGIN
               PERFORM autoscale.set_policy('smuggled2', metric => 'custom', custom_sql => 'SELECT 1',
                                            scale_out_above => 10, scale_in_below => 1);
               RETURN 1;
             END $f$;
             CREATE TABLE public.autoscale_t_bait (i int);
             INSERT INTO public.autoscale_t_bait SELECT generate_series(1, 100);
             CREATE INDEX ON public.autoscale_t_bait (public.autoscale_t_trap(i));
             RESET ROLE;",
        )
        .unwrap();
        // the superuser's ANALYZE evaluates the index expression (as the table's owner, in a
        // security-restricted operation): refused, nothing stored
        Spi::run("SET autoscale_t.armed = 'on'").unwrap();
        let e = err("ANALYZE public.autoscale_t_bait");
        assert!(
            e.starts_with("42501") && e.contains("custom_sql"),
            "ANALYZE: {e}"
        );
        // the attacker's SECURITY DEFINER function called by a superuser: refused too
        assert_err(
            "SELECT public.autoscale_t_definer()",
            "42501",
            &["custom_sql", "requires superuser"],
        );
        assert_eq!(
            count("SELECT count(*) FROM autoscale.policy_config WHERE name LIKE 'smuggled%'"),
            0
        );
        // a superuser calling directly may, and the SQL runs as autoscale.custom_sql_role,
        // read-only, with the pinned search_path, as a security-restricted operation
        let v = one::<JsonB>(
            "SELECT autoscale.set_policy('who', metric => 'custom', scale_out_above => 10, scale_in_below => 0.5,
                    custom_sql => 'SELECT (current_user = ''autoscale_t_metrics''
                                           AND current_setting(''search_path'') = ''pg_catalog, pg_temp''
                                           AND current_setting(''transaction_read_only'') = ''on'')::int')",
        )
        .0;
        assert_eq!(v["name"], "who");
        Spi::run("SELECT autoscale.sample()").unwrap();
        assert_eq!(
            one::<f64>("SELECT value FROM autoscale.metric_samples WHERE policy = 'who'"),
            1.0,
            "custom SQL ran as the role, read-only, with search_path pg_catalog, pg_temp"
        );
        assert_eq!(
            one::<String>("SELECT current_user::text"),
            one::<String>("SELECT session_user::text"),
            "the caller's user is back"
        );
        // custom SQL that writes, or that is more than one SELECT, is refused without effect
        Spi::run("CREATE TABLE public.autoscale_t_victim (v int); INSERT INTO public.autoscale_t_victim VALUES (1);
                  GRANT ALL ON public.autoscale_t_victim TO autoscale_t_metrics; CREATE SEQUENCE public.autoscale_t_seq;
                  GRANT ALL ON public.autoscale_t_seq TO autoscale_t_metrics").unwrap();
        for (sql, why) in [
            ("SELECT 1; SELECT 2", "2 statements"),
            ("", "custom_sql"),
            ("DELETE FROM public.autoscale_t_victim", "must be a SELECT"),
            ("SELECT 1 INTO TEMP x", "without INTO"),
            ("WITH d AS (DELETE FROM public.autoscale_t_victim RETURNING 1) SELECT count(*) FROM d", "read-only"),
            ("SELECT pg_catalog.nextval('public.autoscale_t_seq')", "read-only"),
            ("SELECT v FROM public.autoscale_t_victim FOR UPDATE", "read-only"),
        ] {
            assert_err(
                &format!(
                    "SELECT autoscale.set_policy('w', metric => 'custom', scale_out_above => 10, scale_in_below => 0.5, custom_sql => {})",
                    pgrx::spi::quote_literal(sql)
                ),
                "22023",
                &["custom_sql", why],
            );
        }
        assert_eq!(count("SELECT count(*) FROM public.autoscale_t_victim"), 1);
        assert_eq!(
            one::<i64>("SELECT last_value FROM public.autoscale_t_seq"),
            1,
            "the sequence never advanced"
        );
        // the role must be set, exist and not be a superuser
        Spi::run("RESET autoscale.custom_sql_role").unwrap();
        assert_err(
            "SELECT autoscale.set_policy('w', metric => 'custom', scale_out_above => 10, scale_in_below => 0.5, custom_sql => 'SELECT 1')",
            "22023",
            &["custom_sql", "autoscale.custom_sql_role is not set"],
        );
        assert_err(
            "SET autoscale.custom_sql_role = 'no_such_role_x'",
            "22023",
            &["autoscale.custom_sql_role", "does not exist"],
        );
        let me = one::<String>("SELECT current_user::text");
        assert_err(
            &format!("SET autoscale.custom_sql_role = '{me}'"),
            "22023",
            &["autoscale.custom_sql_role", "superuser"],
        );
    }

    /// Defect 2: node_stats() and the background worker never call objects from a search_path
    /// that the database owner (or a session) sets.
    #[pg_test]
    fn search_path_is_pinned_in_node_stats_and_the_worker() {
        setup_helpers();
        // (left behind by an earlier run: this session must not lock them, or its own cleanup waits)
        remote("DROP TABLE IF EXISTS public.autoscale_evil_log; DROP SCHEMA IF EXISTS autoscale_evil CASCADE");
        remote(
            "CREATE SCHEMA autoscale_evil;
             CREATE TABLE public.autoscale_evil_log (app text DEFAULT current_setting('application_name'), what text);
             CREATE FUNCTION autoscale_evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS $f$
               BEGIN INSERT INTO public.autoscale_evil_log (what) VALUES ('nextval');
                     RETURN pg_catalog.nextval($1); END $f$;
             CREATE FUNCTION autoscale_evil.texteq(text, text) RETURNS bool LANGUAGE plpgsql AS $f$
               BEGIN INSERT INTO public.autoscale_evil_log (what) VALUES ('=');
                     RETURN pg_catalog.texteq($1, $2); END $f$;
             CREATE OPERATOR autoscale_evil.= (leftarg = text, rightarg = text, function = autoscale_evil.texteq)",
        );
        // node_stats() in a session whose search_path puts the shadowing objects first
        Spi::run("SET search_path = autoscale_evil, pg_catalog, public").unwrap();
        let s = one::<JsonB>("SELECT autoscale.node_stats()").0;
        assert!(s["connections"]["total"].as_i64().unwrap() >= 1);
        Spi::run("RESET search_path").unwrap();
        let in_session = count("SELECT count(*) FROM public.autoscale_evil_log");
        // the worker, after a reload that gives every session that search_path
        Spi::run("SET search_path = pg_catalog, public").unwrap();
        let before = worker_samples();
        set_system("search_path", "autoscale_evil, pg_catalog, public");
        let mut after = before;
        for _ in 0..40 {
            sleep(0.25);
            after = worker_samples();
            if after >= before + 2 {
                break;
            }
        }
        let worker_calls: i64 = remote_one(
            "SELECT pg_catalog.count(*)::text FROM public.autoscale_evil_log WHERE app OPERATOR(pg_catalog.=) 'citus_autoscale'",
        )
        .parse()
        .unwrap();
        reset_system("search_path");
        assert_eq!(in_session, 0, "node_stats() called a shadowing object");
        assert!(
            after >= before + 2,
            "the worker kept sampling ({before} -> {after})"
        );
        assert_eq!(worker_calls, 0, "the worker called a shadowing object");
    }

    /// Defect 3: only available nodes are claimed; a returned node (its deprovision request sent)
    /// and a node that failed to join are not, until they are offered again.
    #[pg_test]
    fn the_pool_claims_only_available_nodes() {
        Spi::run(
            "INSERT INTO autoscale.standby_nodes (nodename, nodeport, state, added_at) VALUES
               ('returned-node', 5432, 'returned', now() - interval '2 hours'),
               ('failed-node', 5432, 'failed', now() - interval '1 hour');
             INSERT INTO autoscale.provision_requests (kind, payload)
               VALUES ('deprovision', '{\"node\": {\"host\": \"returned-node\", \"port\": 5432}}')",
        )
        .unwrap();
        assert_eq!(
            crate::store::pool::claim().unwrap(),
            None,
            "neither is claimable"
        );
        assert_eq!(
            count("SELECT count(*) FROM autoscale.standby_nodes WHERE state = 'joining'"),
            0
        );
        assert_eq!(
            one::<i64>("SELECT standby_available FROM autoscale.status"),
            0
        );
        // an available node whose deprovision request is still pending is not claimed either
        Spi::run("UPDATE autoscale.standby_nodes SET state = 'available' WHERE nodename = 'returned-node'").unwrap();
        assert_eq!(
            crate::store::pool::claim().unwrap(),
            None,
            "its deprovision request is pending"
        );
        // offered again: claimable, and its deprovision request is answered
        Spi::run("UPDATE autoscale.standby_nodes SET state = 'returned' WHERE nodename = 'returned-node'").unwrap();
        crate::services::provision::offer_again("returned-node", 5432).unwrap();
        assert_eq!(
            one::<String>(
                "SELECT status FROM autoscale.provision_requests WHERE kind = 'deprovision'"
            ),
            "fulfilled"
        );
        assert_eq!(
            crate::store::pool::claim().unwrap(),
            Some(("returned-node".to_string(), 5432))
        );
        assert_eq!(
            crate::store::pool::claim().unwrap(),
            None,
            "the failed node stays out"
        );
    }

    fn insert_op(op: &autoscale_core::operations::Operation) {
        Spi::run_with_args(
            "INSERT INTO autoscale.operations (id, op, requested_by) VALUES ($1, $2, 'test')",
            &[
                op.id.into(),
                JsonB(serde_json::to_value(op).unwrap()).into(),
            ],
        )
        .unwrap();
    }

    /// Defects 3 and 6: a node whose join failed becomes failed; a cancelled scale-out puts its
    /// claimed node back to available and expires its provision request; requests of operations
    /// that are no longer running expire.
    #[pg_test]
    fn scale_out_endings_leave_the_pool_and_outbox_consistent() {
        use autoscale_core::operations::{self as m, Limits, NodeAddr, Outcome, Status, Step};
        Spi::run(
            "INSERT INTO autoscale.standby_nodes (nodename, nodeport, state) VALUES
               ('joins', 5432, 'joining'), ('cancelled', 5432, 'joining')",
        )
        .unwrap();
        // citus_add_node fails three times: the operation fails at add_node, the node is failed
        let mut op =
            m::new_scale_out(901, Some(NodeAddr::new("joins", 5432)), 1, "t", 1.0).unwrap();
        for i in 0..3 {
            op = m::advance(
                &op,
                Outcome::Error("could not connect".into()),
                2.0 + i as f64,
                &Limits::default(),
            )
            .op;
        }
        assert_eq!((op.status, op.step), (Status::Failed, Step::AddNode));
        crate::services::execute::settle_ended(&op).unwrap();
        assert_eq!(
            crate::store::pool::state_of("joins", 5432)
                .unwrap()
                .as_deref(),
            Some("failed")
        );
        assert_eq!(
            count("SELECT count(*) FROM autoscale.events WHERE kind = 'standby_failed'"),
            1
        );

        // cancelled while adding its claimed node: back to available
        let op =
            m::new_scale_out(902, Some(NodeAddr::new("cancelled", 5432)), 1, "t", 1.0).unwrap();
        insert_op(&op);
        crate::services::execute::cancel(&op, "changed my mind").unwrap();
        assert_eq!(
            crate::store::pool::state_of("cancelled", 5432)
                .unwrap()
                .as_deref(),
            Some("available")
        );
        assert_eq!(
            one::<String>("SELECT status FROM autoscale.operations WHERE id = 902"),
            "cancelled"
        );

        // cancelled while waiting for a provisioned node: its request expires
        let mut op = m::new_scale_out(903, None, 1, "t", 1.0).unwrap();
        let rid = crate::services::provision::request(
            "provision",
            Some(903),
            serde_json::json!({"operation_id": 903}),
        )
        .unwrap();
        op.step = Step::WaitForNode;
        op.request_id = Some(rid);
        insert_op(&op);
        crate::services::execute::cancel(&op, "no").unwrap();
        assert_eq!(
            one::<String>(&format!(
                "SELECT status FROM autoscale.provision_requests WHERE id = {rid}"
            )),
            "expired"
        );
        // a pending request whose operation is gone expires at the next tick
        let orphan =
            crate::services::provision::request("provision", Some(99999), serde_json::json!({}))
                .unwrap();
        crate::store::provision::expire_orphaned().unwrap();
        assert_eq!(
            one::<String>(&format!(
                "SELECT status FROM autoscale.provision_requests WHERE id = {orphan}"
            )),
            "expired"
        );
    }

    /// Defect 12: a start while another operation runs gets a clear error naming it.
    #[pg_test]
    fn a_second_operation_gets_a_clear_error() {
        use autoscale_core::operations::{self as m, Kind, NodeAddr};
        let op = m::new_scale_in(904, vec![NodeAddr::new("w", 5432)], "t", 1.0).unwrap();
        insert_op(&op);
        let e = crate::services::execute::start(Kind::Rebalance, vec![], 1, "manual", "manual")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("an operation is already running (id 904, scale_in, mark_draining)"),
            "{e}"
        );
    }

    /// Defect 7: reason is bounded (a NOTIFY payload holds at most 8000 bytes), before anything
    /// else is checked or done.
    #[pg_test]
    fn reason_is_bounded() {
        setup();
        for f in [
            "SELECT autoscale.rebalance_now(repeat('x', 8000))",
            "SELECT autoscale.scale_out(reason => repeat('x', 8000))",
            "SELECT autoscale.scale_in('127.0.0.1', 5432, repeat('x', 8000))",
            "SELECT autoscale.cancel_operation(repeat('x', 8000))",
        ] {
            assert_err(
                f,
                "22023",
                &["invalid value for reason", "at most 500 bytes", "8000"],
            );
        }
        assert_eq!(count("SELECT count(*) FROM autoscale.operations"), 0);
    }

    /// Defect 11: a policy window longer than the history kept is refused; a reload that makes
    /// them conflict is reported as an event at the next tick.
    #[pg_test]
    fn settings_that_would_disable_scaling_are_refused_or_reported() {
        setup();
        Spi::run("SET autoscale.history_retention = '10min'").unwrap();
        assert_err(
            "SELECT autoscale.set_policy('cpu', scale_in_for => '15 min')",
            "22023",
            &["scale_in_for", "history_retention"],
        );
        Spi::run("SET autoscale.history_retention = '1d'; SELECT autoscale.set_policy('cpu', scale_in_for => '15 min')").unwrap();
        Spi::run("SET autoscale.history_retention = '10min'; SET autoscale.sample_interval = '1h'")
            .unwrap();
        Spi::run("SELECT autoscale.tick()").unwrap();
        let w = one::<String>("SELECT string_agg(message, ' | ') FROM autoscale.events WHERE kind = 'settings_warning'");
        assert!(
            w.contains("history_retention") && w.contains("policy cpu"),
            "{w}"
        );
        // once, not at every tick
        Spi::run("SELECT autoscale.tick()").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM autoscale.events WHERE kind = 'settings_warning'"),
            1
        );
    }

    /// Defect 13: every function with NULL, negative, huge, empty and over-long values and every
    /// setting with invalid values: an error with a SQLSTATE other than XX000 that names the
    /// argument (22004 for NULL, 22023 for a bad value), or, for valid arguments of a function
    /// that needs Citus here, 0A000.
    #[pg_test]
    fn every_bad_input_gets_a_documented_error() {
        setup_helpers();
        let long = "repeat('a', 300)";
        let sp = "SELECT autoscale.set_policy";
        let cases: Vec<(String, &str, &str)> = vec![
            (format!("{sp}(NULL)"), "22004", "name"),
            (format!("{sp}('')"), "22023", "name"),
            (format!("{sp}({long})"), "22023", "name"),
            (format!("{sp}('x', metric => NULL)"), "22004", "metric"),
            (format!("{sp}('x', metric => '')"), "22023", "metric"),
            (format!("{sp}('x', aggregate => NULL)"), "22004", "aggregate"),
            (format!("{sp}('x', tolerance => NULL, target => 50)"), "22004", "tolerance"),
            (format!("{sp}('x', target => 'NaN')"), "22023", "target"),
            (format!("{sp}('x', scale_out_above => 'Infinity')"), "22023", "scale_out_above"),
            (format!("{sp}('x', scale_out_for => NULL)"), "22004", "scale_out_for"),
            (format!("{sp}('x', scale_out_for => '-1 s')"), "22023", "scale_out_for"),
            (format!("{sp}('x', scale_out_for => '100000 years')"), "22023", "scale_out_for"),
            (format!("{sp}('x', scale_in_for => NULL)"), "22004", "scale_in_for"),
            (format!("{sp}('x', cooldown => NULL)"), "22004", "cooldown"),
            (format!("{sp}('x', cooldown => '100000 years')"), "22023", "cooldown"),
            (format!("{sp}('x', scale_in_cooldown => '-1 s')"), "22023", "scale_in_cooldown"),
            (format!("{sp}('x', min_workers => NULL)"), "22004", "min_workers"),
            (format!("{sp}('x', min_workers => -5)"), "22023", "min_workers"),
            (format!("{sp}('x', max_workers => NULL)"), "22004", "max_workers"),
            (format!("{sp}('x', max_workers => 2147483647)"), "22023", "max_workers"),
            (format!("{sp}('x', step => NULL)"), "22004", "step"),
            (format!("{sp}('x', step => -1)"), "22023", "step"),
            (format!("{sp}('x', step => 2147483647)"), "22023", "step"),
            (format!("{sp}('x', metric => 'custom', custom_sql => '', scale_out_above => 1, scale_in_below => 0)"), "22023", "custom_sql"),
            ("SELECT autoscale.drop_policy(NULL)".into(), "22004", "name"),
            ("SELECT autoscale.drop_policy('')".into(), "42704", "policy \"\""),
            ("SELECT autoscale.pause(NULL)".into(), "22004", "duration"),
            ("SELECT autoscale.pause('-1 s')".into(), "22023", "duration"),
            ("SELECT autoscale.pause('0 s')".into(), "22023", "duration"),
            ("SELECT autoscale.pause('100000 years')".into(), "22023", "duration"),
            ("SELECT * FROM autoscale.backtest(NULL)".into(), "22004", "since"),
            ("SELECT * FROM autoscale.backtest('-1 s')".into(), "22023", "since"),
            ("SELECT * FROM autoscale.backtest('100000 years')".into(), "22023", "since"),
            ("SELECT * FROM autoscale.backtest(operation_time => NULL)".into(), "22004", "operation_time"),
            ("SELECT * FROM autoscale.backtest(operation_time => '-1 s')".into(), "22023", "operation_time"),
            ("SELECT * FROM autoscale.backtest(operation_time => '100000 years')".into(), "22023", "operation_time"),
            ("SELECT autoscale.rebalance_now(NULL)".into(), "22004", "reason"),
            ("SELECT autoscale.rebalance_now(repeat('x', 501))".to_string(), "22023", "reason"),
            ("SELECT autoscale.rebalance_now('')".into(), "0A000", "autoscale.rebalance_now()"),
            ("SELECT autoscale.add_standby_clone(NULL, 5433, '127.0.0.1', 5432)".into(), "22004", "host"),
            ("SELECT autoscale.add_standby_clone('127.0.0.1', NULL, '127.0.0.1', 5432)".into(), "22004", "port"),
            ("SELECT autoscale.add_standby_clone('127.0.0.1', 5433, NULL, 5432)".into(), "22004", "primary_host"),
            ("SELECT autoscale.add_standby_clone('127.0.0.1', 5433, '127.0.0.1', NULL)".into(), "22004", "primary_port"),
            ("SELECT autoscale.add_standby_clone('', 5433, '127.0.0.1', 5432)".into(), "22023", "host"),
            ("SELECT autoscale.add_standby_clone('127.0.0.1', 70000, '127.0.0.1', 5432)".into(), "22023", "port"),
            ("SELECT autoscale.add_standby_clone('127.0.0.1', 5433, ' ', 5432)".into(), "22023", "primary_host"),
            ("SELECT autoscale.add_standby_clone('127.0.0.1', 5433, '127.0.0.1', 0)".into(), "22023", "primary_port"),
            ("SELECT autoscale.scale_out_path(NULL)".into(), "22004", "nodes"),
            ("SELECT autoscale.scale_out_path(0)".into(), "22023", "nodes"),
            ("SELECT autoscale.shard_load_cost(NULL)".into(), "22004", "shardid"),
            ("SELECT autoscale.shard_load_cost(102008)".into(), "0A000", "autoscale.shard_load_cost()"),
            ("SELECT autoscale.scale_out(nodes => NULL)".into(), "22004", "nodes"),
            ("SELECT autoscale.scale_out(nodes => 0)".into(), "22023", "nodes"),
            ("SELECT autoscale.scale_out(nodes => -1)".into(), "22023", "nodes"),
            ("SELECT autoscale.scale_out(nodes => 2147483647)".into(), "22023", "nodes"),
            ("SELECT autoscale.scale_out(reason => NULL)".into(), "22004", "reason"),
            ("SELECT autoscale.scale_out('', 5432)".into(), "22023", "host"),
            ("SELECT autoscale.scale_out(repeat('h', 300), 5432)".to_string(), "22023", "host"),
            ("SELECT autoscale.scale_out('h', -1)".into(), "22023", "port"),
            ("SELECT autoscale.scale_out('h', 2147483647)".into(), "22023", "port"),
            ("SELECT autoscale.scale_out('h', NULL)".into(), "22023", "port"),
            ("SELECT autoscale.scale_out(NULL, 5432)".into(), "22023", "host"),
            ("SELECT autoscale.scale_out('h', 5432, nodes => 2)".into(), "22023", "nodes"),
            ("SELECT autoscale.scale_out()".into(), "0A000", "autoscale.scale_out()"),
            ("SELECT autoscale.scale_in(NULL, 5432)".into(), "22004", "host"),
            ("SELECT autoscale.scale_in('h', NULL)".into(), "22004", "port"),
            ("SELECT autoscale.scale_in('h', 5432, NULL)".into(), "22004", "reason"),
            ("SELECT autoscale.scale_in('', 5432)".into(), "22023", "host"),
            ("SELECT autoscale.scale_in(repeat('h', 300), 5432)".to_string(), "22023", "host"),
            ("SELECT autoscale.scale_in('h', 0)".into(), "22023", "port"),
            ("SELECT autoscale.scale_in('h', -1)".into(), "22023", "port"),
            ("SELECT autoscale.scale_in('h', 70000)".into(), "22023", "port"),
            ("SELECT autoscale.scale_in('h', 5432)".into(), "0A000", "autoscale.scale_in()"),
            ("SELECT autoscale.add_standby_node(NULL, 5432)".into(), "22004", "host"),
            ("SELECT autoscale.add_standby_node('h', NULL)".into(), "22004", "port"),
            ("SELECT autoscale.add_standby_node('', 5432)".into(), "22023", "host"),
            ("SELECT autoscale.add_standby_node(repeat('h', 300), 5432)".to_string(), "22023", "host"),
            ("SELECT autoscale.add_standby_node('h', -1)".into(), "22023", "port"),
            ("SELECT autoscale.add_standby_node('h', 2147483647)".into(), "22023", "port"),
            ("SELECT autoscale.add_standby_node('h', 5432)".into(), "0A000", "autoscale.add_standby_node()"),
            ("SELECT autoscale.remove_standby_node(NULL, 5432)".into(), "22004", "host"),
            ("SELECT autoscale.remove_standby_node('h', NULL)".into(), "22004", "port"),
            ("SELECT autoscale.remove_standby_node('', 5432)".into(), "22023", "host"),
            ("SELECT autoscale.remove_standby_node('h', -1)".into(), "22023", "port"),
            ("SELECT autoscale.remove_standby_node('h', 5432)".into(), "42704", "not in the standby pool"),
            ("SELECT autoscale.cancel_operation(NULL)".into(), "22004", "reason"),
            ("SELECT autoscale.cancel_operation(repeat('x', 501))".to_string(), "22023", "reason"),
            ("SELECT autoscale.cancel_operation()".into(), "55000", "no operation is running"),
            // settings
            ("SET autoscale.mode = 'fast'".into(), "22023", "autoscale.mode"),
            ("SET autoscale.mode = ''".into(), "22023", "autoscale.mode"),
            ("SET autoscale.sample_interval = '10ms'".into(), "22023", "autoscale.sample_interval"),
            ("SET autoscale.sample_interval = -1".into(), "22023", "autoscale.sample_interval"),
            ("SET autoscale.sample_interval = '100000h'".into(), "22023", "autoscale.sample_interval"),
            ("SET autoscale.node_timeout = 0".into(), "22023", "autoscale.node_timeout"),
            ("SET autoscale.history_retention = -2".into(), "22023", "autoscale.history_retention"),
            ("SET autoscale.shard_transfer_mode = 'fast'".into(), "22023", "autoscale.shard_transfer_mode"),
            ("SET autoscale.rebalance_settle = -1".into(), "22023", "autoscale.rebalance_settle"),
            ("SET autoscale.rebalance_interval = -2".into(), "22023", "autoscale.rebalance_interval"),
            ("SET autoscale.failure_backoff = -1".into(), "22023", "autoscale.failure_backoff"),
            ("SET autoscale.max_operations_per_hour = -1".into(), "22023", "autoscale.max_operations_per_hour"),
            ("SET autoscale.max_operations_per_hour = 99999999".into(), "22023", "autoscale.max_operations_per_hour"),
            ("SET autoscale.provision_timeout = -2".into(), "22023", "autoscale.provision_timeout"),
            ("SET autoscale.job_timeout = -2".into(), "22023", "autoscale.job_timeout"),
            ("SET autoscale.webhook_url = 'not a url'".into(), "22023", "autoscale.webhook_url"),
            ("SET autoscale.webhook_url = 'ftp://x/y'".into(), "22023", "autoscale.webhook_url"),
            ("SET autoscale.maintenance_window = 'garbage'".into(), "22023", "autoscale.maintenance_window"),
            ("SET autoscale.maintenance_window = '25:00-26:00'".into(), "22023", "autoscale.maintenance_window"),
            ("SET autoscale.custom_sql_role = 'no_such_role_y'".into(), "22023", "autoscale.custom_sql_role"),
            ("SET autoscale.worker_enabled = 'maybe'".into(), "55P02", "autoscale.worker_enabled"),
            ("SET autoscale.database_name = 'x'".into(), "55P02", "autoscale.database_name"),
            // ALTER SYSTEM runs outside a transaction block: in a session of its own
            ("SELECT dblink_exec(pg_temp.autoscale_test_conn(), 'ALTER SYSTEM SET autoscale.maintenance_window = ''garbage''')".into(), "22023", "autoscale.maintenance_window"),
            ("SELECT dblink_exec(pg_temp.autoscale_test_conn(), 'ALTER SYSTEM SET autoscale.webhook_url = ''not a url''')".into(), "22023", "autoscale.webhook_url"),
        ];
        let mut wrong = Vec::new();
        for (sql, state, names) in &cases {
            let e = err(sql);
            if !(e.starts_with(&format!("{state}: ")) && e.contains(names))
                || e.starts_with("XX000")
            {
                wrong.push(format!(
                    "{sql} -- expected {state} naming {names}, got: {e}"
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        // the setting keeps its valid value after a refused SET
        assert_eq!(one::<String>("SHOW autoscale.maintenance_window"), "");
        // nothing was stored or started by any of them
        assert_eq!(count("SELECT count(*) FROM autoscale.policy_config"), 0);
        assert_eq!(count("SELECT count(*) FROM autoscale.operations"), 0);
        assert_eq!(count("SELECT count(*) FROM autoscale.standby_nodes"), 0);
        // a rebalance strategy Citus does not know is accepted by SET (Citus may be created
        // later) and reported by the next tick where Citus is installed (real-cluster scenario 11)
        Spi::run("SET autoscale.rebalance_strategy = 'no_such_strategy'").unwrap();
    }

    /// Starts a loopback HTTP listener that answers 200 to every request for `secs` seconds and
    /// keeps each request's head. Returns its port and the heads.
    fn http_listener(secs: u64) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            while std::time::Instant::now() < end {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).ok();
                        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                            .ok();
                        let mut buf = vec![0u8; 16384];
                        let n = s.read(&mut buf).unwrap_or(0);
                        keep.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&buf[..n]).to_string());
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        (port, seen)
    }

    /// Defects 8 and 9: the background worker POSTs a request once, outside the tick's
    /// transaction (a tick that aborts after the delivery point does not repeat it), with the
    /// request's key; a failure is stored as its kind, never with the URL or its token.
    #[pg_test]
    fn webhooks_are_delivered_once_outside_the_tick_and_never_leak_the_url() {
        setup_helpers();
        Spi::run("SET search_path = pg_catalog, public").unwrap();
        let (port, seen) = http_listener(20);
        // a sample a second (an earlier test may have reset the instance's interval to the default)
        set_system("autoscale.sample_interval", "1s");
        // every sample now aborts at its end, and so does every tick that writes its state (after
        // the point where 0.1.0 delivered webhooks)
        remote(
            "CREATE FUNCTION public.autoscale_t_abort() RETURNS trigger LANGUAGE plpgsql AS
               $f$BEGIN RAISE EXCEPTION 'tick aborted on purpose'; END$f$;
             CREATE TRIGGER autoscale_t_abort BEFORE UPDATE ON autoscale.control
               FOR EACH ROW EXECUTE FUNCTION public.autoscale_t_abort();
             CREATE TRIGGER autoscale_t_abort BEFORE INSERT ON autoscale.worker_count
               FOR EACH ROW EXECUTE FUNCTION public.autoscale_t_abort()",
        );
        set_system(
            "autoscale.webhook_url",
            &format!("http://127.0.0.1:{port}/hook?token=sekrit"),
        );
        let rid: i64 = remote_one(
            "INSERT INTO autoscale.provision_requests (kind, payload, webhook_status)
             VALUES ('provision', '{\"kind\": \"provision\"}', 'pending') RETURNING id::text",
        )
        .parse()
        .unwrap();
        let key = remote_one(&format!(
            "SELECT request_key::text FROM autoscale.provision_requests WHERE id = {rid}"
        ));
        let mut status = String::new();
        for _ in 0..40 {
            sleep(0.25);
            status = remote_one(&format!(
                "SELECT webhook_status FROM autoscale.provision_requests WHERE id = {rid}"
            ));
            if status == "delivered" {
                break;
            }
        }
        // ticks go on aborting for a few more cycles: no second POST
        sleep(3.0);
        let failed_ticks: i64 = remote_one(
            "SELECT count(*)::text FROM autoscale.events WHERE kind = 'error' AND message LIKE '%tick aborted on purpose%'",
        )
        .parse()
        .unwrap();
        let error_events = remote_one(
            "SELECT coalesce(string_agg(at::time || ' ' || left(message, 80), ' | ' ORDER BY id), '') FROM autoscale.events WHERE kind = 'error'",
        );
        let procs = remote_one(
            "SELECT coalesce(string_agg(backend_type || ' ' || coalesce(state, '') || ' ' || left(query, 40), ' | '), '') FROM pg_stat_activity WHERE backend_type LIKE 'citus_autoscale%'",
        ) + &remote_one(
            "SELECT ' interval ' || current_setting('autoscale.sample_interval') || ' mode ' || current_setting('autoscale.mode')
                    || ' enabled ' || current_setting('autoscale.worker_enabled') || ' last sample ' || coalesce(max(sampled_at)::text, '-')
                    || ' now ' || clock_timestamp()::text FROM autoscale.worker_count",
        );
        remote("DROP TRIGGER autoscale_t_abort ON autoscale.control; DROP TRIGGER autoscale_t_abort ON autoscale.worker_count;
                DROP FUNCTION public.autoscale_t_abort()");
        let heads = seen.lock().unwrap().clone();
        // a dead endpoint with a token in the URL: the error is stored as its kind only
        set_system(
            "autoscale.webhook_url",
            "http://user:pa55word@127.0.0.1:1/hook?token=sekrit",
        );
        let rid2: i64 = remote_one(
            "INSERT INTO autoscale.provision_requests (kind, payload, webhook_status)
             VALUES ('provision', '{}', 'pending') RETURNING id::text",
        )
        .parse()
        .unwrap();
        let mut error = String::new();
        for _ in 0..40 {
            sleep(0.25);
            error = remote_one(&format!(
                "SELECT coalesce(webhook_error, '') FROM autoscale.provision_requests WHERE id = {rid2}"
            ));
            if !error.is_empty() {
                break;
            }
        }
        let leaked: i64 = remote_one(
            "SELECT (SELECT count(*) FROM autoscale.provision_requests
                      WHERE webhook_error ~ '(sekrit|pa55word|127\\.0\\.0\\.1)' OR payload::text ~ '(sekrit|pa55word)')
                  + (SELECT count(*) FROM autoscale.events WHERE message ~ '(sekrit|pa55word)' OR detail::text ~ '(sekrit|pa55word)')",
        )
        .parse()
        .unwrap();
        reset_system("autoscale.webhook_url");
        reset_system("autoscale.sample_interval");
        remote("DELETE FROM autoscale.provision_requests; DELETE FROM autoscale.events WHERE message LIKE '%tick aborted on purpose%' OR kind = 'webhook_failed'");
        assert!(
            failed_ticks >= 2,
            "ticks aborted while the webhook was delivered ({failed_ticks}): {error_events}; processes: {procs}"
        );
        assert_eq!(status, "delivered");
        assert_eq!(heads.len(), 1, "exactly one POST: {heads:?}");
        assert!(
            heads[0].starts_with("POST /hook?token=sekrit"),
            "{}",
            heads[0]
        );
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains(&format!("idempotency-key: {key}")),
            "{}",
            heads[0]
        );
        assert!(
            heads[0].contains(&key),
            "the key is in the body too: {}",
            heads[0]
        );
        assert!(error.starts_with("transport error"), "{error}");
        assert_eq!(leaked, 0, "the URL or its credentials were stored");
    }

    #[pg_test]
    fn resize_advice_follows_the_decision_matrix() {
        setup();
        assert_err(
            "SELECT * FROM autoscale.resize_advice('30 s')",
            "22023",
            &["window", "30", "from 1 minute to 7 days"],
        );
        // the test instance's worker must not add samples meanwhile: it waits on this lock
        Spi::run(
            "LOCK TABLE autoscale.worker_count IN EXCLUSIVE MODE;
             DELETE FROM autoscale.worker_count; DELETE FROM autoscale.node_samples;
             DELETE FROM autoscale.shard_group_load; DELETE FROM autoscale.policy_config;
             INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers,
                                                 unreachable_workers, inactive_workers, driver)
             VALUES (now(), -1, 2, 2, 0, 0, 'test');
             -- w2: busy, short of memory, missing its cache, one shard group carries 70% of its load;
             -- w3: as busy, its load in four equal groups, memory and cache fine
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodename, nodeport, is_coordinator, reachable,
                                                 data_node, cpu_busy_pct, mem_used_pct, cache_hit_ratio, cpu_cores)
             SELECT -i, now() - make_interval(secs => 60 * i), n, 5432, false, true, true, 88 + i % 3,
                    CASE n WHEN 'w2' THEN 92 ELSE 50 END, CASE n WHEN 'w2' THEN 80 ELSE 99.5 END, 4
               FROM generate_series(1, 5) i, unnest(ARRAY['w2', 'w3']) n;
             -- a spike on w4: one busy sample of five
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodename, nodeport, is_coordinator, reachable,
                                                 data_node, cpu_busy_pct)
             SELECT -i, now() - make_interval(secs => 60 * i), 'w4', 5432, false, true, true,
                    CASE i WHEN 1 THEN 99 ELSE 20 END
               FROM generate_series(1, 5) i;
             -- samples older than the window do not count
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodename, nodeport, is_coordinator, reachable,
                                                 data_node, mem_used_pct)
             SELECT -100 - i, now() - interval '1 hour' - make_interval(secs => i), 'w3', 5432, false, true, true, 99
               FROM generate_series(1, 20) i;
             INSERT INTO autoscale.shard_group_load (colocationid, shardminvalue, nodename, nodeport, node_time, scans,
                                                     rows_read, rows_written, load_per_sec, sample_id, updated_at)
             VALUES (1, '1', 'w2', 5432, 0, 0, 0, 0, 70, -1, now()), (1, '2', 'w2', 5432, 0, 0, 0, 0, 30, -1, now()),
                    (1, '3', 'w3', 5432, 0, 0, 0, 0, 25, -1, now()), (1, '4', 'w3', 5432, 0, 0, 0, 0, 25, -1, now()),
                    (1, '5', 'w3', 5432, 0, 0, 0, 0, 25, -1, now()), (1, '6', 'w3', 5432, 0, 0, 0, 0, 25, -1, now());
             SELECT autoscale.set_policy('cpu', min_workers => 2, max_workers => 4);",
        )
        .unwrap();
        let advice = || {
            Spi::get_one::<String>(
                "SELECT string_agg(node || ' ' || resource || ' ' || observed || ' x' || factor
                                   || coalesce(' cores ' || suggested_cores, ''), '; ' ORDER BY node, resource)
                   FROM autoscale.resize_advice()",
            )
            .unwrap()
            .unwrap_or_default()
        };
        assert_eq!(
            advice(),
            "w2:5432 cpu 89 x1.48 cores 6; w2:5432 memory 92 x1.31; w2:5432 shared_buffers 80 x2",
            "w3 can spread its load by a scale-out, w4's spike is not sustained"
        );
        let why =
            one::<String>("SELECT reason FROM autoscale.resize_advice() WHERE resource = 'cpu'");
        assert!(why.contains("busiest shard group carries 70%"), "{why}");
        // at max_workers no scale-out can spread w3's load either
        Spi::run("SELECT autoscale.set_policy('cpu', min_workers => 2, max_workers => 2)").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM autoscale.resize_advice() WHERE resource = 'cpu'"),
            2
        );
        let why =
            one::<String>("SELECT reason FROM autoscale.resize_advice() WHERE node = 'w3:5432'");
        assert!(why.contains("max_workers"), "{why}");
        // a window that reaches the old samples: w3's memory was short an hour ago, for 20 of 25 samples
        assert_eq!(
            count("SELECT count(*) FROM autoscale.resize_advice('2 hours') WHERE node = 'w3:5432' AND resource = 'memory'"),
            1
        );
    }

    /// The provisioner's claims: oldest first, a valid lease of another claimer is skipped, an
    /// expired one is taken over, the claimer itself resumes at once; fail retries with a
    /// backoff or gives up; a deprovision answer is idempotent; bad input is named.
    #[pg_test]
    fn provision_requests_are_claimed_answered_and_failed() {
        setup();
        Spi::run(
            "INSERT INTO autoscale.provision_requests (kind, payload) VALUES
               ('provision', '{}'), ('deprovision', '{\"node\": {\"host\": \"10.0.0.9\", \"port\": 5432}}'),
               ('provision_clone', '{}')",
        )
        .unwrap();
        let first = count("SELECT min(id) FROM autoscale.provision_requests");
        let (p, d) = (first, first + 1);
        // oldest first, held by a's lease
        assert_eq!(
            count("SELECT id FROM autoscale.claim_provision_request('a')"),
            p
        );
        assert_eq!(
            count("SELECT id FROM autoscale.claim_provision_request('b')"),
            d
        );
        // nothing else for c (the clone request is not handed out)
        assert_eq!(
            count("SELECT count(*) FROM autoscale.claim_provision_request('c')"),
            0
        );
        // a restarted a resumes its own claim at once, counting an attempt
        assert_eq!(
            one::<String>(
                "SELECT id || ':' || attempts FROM autoscale.claim_provision_request('a')"
            ),
            format!("{p}:2")
        );
        // a's lease expires: c takes the request over
        Spi::run(&format!(
            "UPDATE autoscale.provision_requests SET lease_until = now() - interval '1 s' WHERE id = {p}"
        ))
        .unwrap();
        assert_eq!(
            one::<String>(
                "SELECT id || ':' || attempts FROM autoscale.claim_provision_request('c', '10 s')"
            ),
            format!("{p}:3")
        );
        assert_eq!(
            one::<String>(&format!(
                "SELECT claimed_by FROM autoscale.provision_requests WHERE id = {p}"
            )),
            "c"
        );
        // a failed attempt, retried: released, with a backoff, the error kept
        Spi::run(&format!(
            "SELECT autoscale.fail_provision_request({p}, 'initdb: disk full', true)"
        ))
        .unwrap();
        assert_eq!(
            one::<String>(&format!(
                "SELECT status || '|' || last_error || '|' || (claimed_by IS NULL) || '|' || (lease_until > now())
                   FROM autoscale.provision_requests WHERE id = {p}"
            )),
            "pending|initdb: disk full|true|true"
        );
        assert_eq!(
            count("SELECT count(*) FROM autoscale.claim_provision_request('c')"),
            0
        );
        // given up: failed, never claimed again
        Spi::run(&format!(
            "SELECT autoscale.fail_provision_request({p}, repeat('x', 3000) || 'the end', false)"
        ))
        .unwrap();
        assert_eq!(
            one::<String>(&format!(
                "SELECT status || '|' || length(last_error) || '|' || right(last_error, 7)
                   FROM autoscale.provision_requests WHERE id = {p}"
            )),
            "failed|2000|the end"
        );
        assert_err(
            &format!("SELECT autoscale.fail_provision_request({p}, 'again', true)"),
            "55000",
            &["only a pending request"],
        );
        // a deprovision answered with its node: fulfilled, the answer kept; again: a no-op
        assert_err(
            &format!("SELECT autoscale.answer_provision_request({d}, '10.0.0.8', 5432)"),
            "22023",
            &["host", "10.0.0.8:5432", "the node of deprovision request"],
        );
        let a = one::<pgrx::JsonB>(&format!(
            "SELECT autoscale.answer_provision_request({d}, '10.0.0.9', 5432)"
        ))
        .0;
        assert_eq!(a["status"], "fulfilled", "{a}");
        assert_eq!(a["again"], false, "{a}");
        let again = one::<pgrx::JsonB>(&format!(
            "SELECT autoscale.answer_provision_request({d}, '10.0.0.9', 5432)"
        ))
        .0;
        assert_eq!(again["again"], true, "{again}");
        assert_eq!(
            one::<String>(&format!(
                "SELECT status || '|' || answer::text || '|' || (lease_until IS NULL) FROM autoscale.provision_requests WHERE id = {d}"
            )),
            "fulfilled|{\"host\": \"10.0.0.9\", \"port\": 5432}|true"
        );
        assert_err(
            &format!("SELECT autoscale.answer_provision_request({d}, '10.0.0.7', 5432)"),
            "22023",
            &["host", "the node that already answered request"],
        );
        assert_eq!(
            count("SELECT count(*) FROM autoscale.claim_provision_request('b')"),
            0
        );
        // bad input names the argument, the value and what is allowed
        for (sql, state, word) in [
            (
                "SELECT * FROM autoscale.claim_provision_request(NULL)",
                "22004",
                "claimer",
            ),
            (
                "SELECT * FROM autoscale.claim_provision_request('')",
                "22023",
                "claimer",
            ),
            (
                "SELECT * FROM autoscale.claim_provision_request('a', NULL)",
                "22004",
                "lease",
            ),
            (
                "SELECT * FROM autoscale.claim_provision_request('a', '0 s')",
                "22023",
                "lease",
            ),
            (
                "SELECT * FROM autoscale.claim_provision_request('a', '2 days')",
                "22023",
                "between 1 second and 1 day",
            ),
            (
                "SELECT autoscale.answer_provision_request(NULL, 'h', 1)",
                "22004",
                "id",
            ),
            (
                "SELECT autoscale.answer_provision_request(-5, 'h', 1)",
                "22023",
                "-5",
            ),
            (
                "SELECT autoscale.answer_provision_request(1, NULL, 1)",
                "22004",
                "host",
            ),
            (
                "SELECT autoscale.answer_provision_request(1, 'h', 0)",
                "22023",
                "port",
            ),
            (
                "SELECT autoscale.fail_provision_request(NULL, 'e', true)",
                "22004",
                "id",
            ),
            (
                "SELECT autoscale.fail_provision_request(1, NULL, true)",
                "22004",
                "error",
            ),
            (
                "SELECT autoscale.fail_provision_request(1, ' ', true)",
                "22023",
                "error",
            ),
            (
                "SELECT autoscale.fail_provision_request(1, 'e', NULL)",
                "22004",
                "retry",
            ),
        ] {
            assert_err(sql, state, &[word]);
        }
        // nobody but a superuser or a granted role
        assert_eq!(
            count(
                "SELECT count(*) FROM pg_proc p,
                        aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  WHERE p.pronamespace = 'autoscale'::regnamespace
                    AND p.proname LIKE '%provision_request' AND a.grantee = 0"
            ),
            0
        );
    }
}
