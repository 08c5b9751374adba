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
        // this transaction now holds the tick lock: another session skips instead of sampling
        let other = remote_one("SELECT autoscale.tick()::text");
        assert!(other.contains("another tick is running"), "{other}");
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
                "SELECT pid::text FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'",
            )
        };
        // 1. it samples on its own (sample_interval = 1s in the test instance); it may still be
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
            "SELECT count(*)::text FROM autoscale.events WHERE kind = 'error' AND message LIKE 'tick failed:%injected failure%'",
        )
        .parse()
        .unwrap();
        assert!(errors >= 1, "the failed tick is an event");
        let a = worker_samples();
        sleep(1.5);
        assert!(
            worker_samples() > a,
            "the worker goes on after failed ticks"
        );
        assert_eq!(pid(), worker_pid, "and it is the same process");
        remote("DELETE FROM autoscale.events WHERE message LIKE 'tick failed:%injected failure%'");
        reset_system("autoscale.sample_interval");

        // 5. pg_cron drives the same tick while the worker stands aside (autoscale.worker_enabled).
        //    Debian's pg_cron 1.4 schedules by the minute (1.5+ also takes '5 seconds').
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

    #[pg_test]
    fn policy_functions_are_for_superusers_and_granted_roles() {
        setup();
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
        ] {
            assert_err(f, "0A000", &[name, "requires the citus extension"]);
        }
    }

    #[pg_test]
    fn custom_metric_failures_are_events_not_crashes() {
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
}
