//! `#[pg_test]`s of issue 15: predictive policies in SQL, the new metrics on a real node,
//! rollups that fill incrementally and prune per level, and the capacity plan.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;

    use crate::store::rollups::{self, Level};

    fn one<T: FromDatum + IntoDatum>(sql: &str) -> T {
        Spi::get_one::<T>(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: NULL"))
    }

    fn count(sql: &str) -> i64 {
        one::<i64>(sql)
    }

    /// Empties the history and the rollups for this test and keeps the test instance's own
    /// background worker from committing samples until the test ends (it waits on the lock).
    fn fresh_history() {
        Spi::run(
            "LOCK TABLE autoscale.worker_count IN EXCLUSIVE MODE;
             DELETE FROM autoscale.worker_count; DELETE FROM autoscale.node_samples;
             DELETE FROM autoscale.node_samples_1min; DELETE FROM autoscale.node_samples_1hour;
             DELETE FROM autoscale.operations",
        )
        .unwrap();
    }

    /// `n` samples `every` seconds apart ending now, 2 workers w2 and w3 with cpu `cpu(i)` and
    /// `cpu(i) + 10` (i = 1..n).
    fn record_samples(n: i32, every: f64, cpu: &str) {
        Spi::run(&format!(
            "INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver)
               SELECT now() - make_interval(secs => ({n} - i) * {every}), -i, 2, 2, 0, 0, 'test' FROM generate_series(1, {n}) i;
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable, cpu_busy_pct)
               SELECT -i, now() - make_interval(secs => ({n} - i) * {every}), w, 'w' || w, 5432, false, true,
                      ({cpu}) + CASE w WHEN 3 THEN 10 ELSE 0 END
                 FROM generate_series(1, {n}) i, generate_series(2, 3) w;"
        ))
        .unwrap();
    }

    /// dblink and a connection string to this database, for statements that must run (and
    /// commit) in their own session.
    fn setup_dblink() {
        Spi::run(
            "CREATE EXTENSION IF NOT EXISTS dblink;
             CREATE OR REPLACE FUNCTION pg_temp.autoscale_test_conn() RETURNS text LANGUAGE sql AS $$
               SELECT format('host=%s port=%s dbname=%s user=%s',
                             split_part(current_setting('unix_socket_directories'), ',', 1),
                             current_setting('port'), current_database(), current_user) $$;",
        )
        .unwrap();
    }

    /// Runs `sql` in a new session of its own (its statistics are flushed before it answers).
    fn remote(sql: &str) {
        Spi::run_with_args(
            "SELECT dblink_exec(pg_temp.autoscale_test_conn(), $1)",
            &[sql.into()],
        )
        .unwrap_or_else(|e| panic!("remote {sql}: {e}"));
    }

    // ---------------------------------------------------------------- predictive policies

    #[pg_test]
    fn a_predictive_policy_scales_out_before_the_threshold_and_explains_why() {
        Spi::run(
            "SET autoscale.sample_interval = '5s'; SET autoscale.forecast_lead_time = '10min'",
        )
        .unwrap();
        fresh_history();
        // an hour of cpu rising from 35% to 70% (w2) and 45% to 80% (w3): 40..75 on average
        record_samples(721, 5.0, "35 + 35.0 * i / 721");
        Spi::run(
            "SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, min_workers => 1)",
        )
        .unwrap();
        let reactive =
            one::<String>("SELECT decision FROM autoscale.explain() WHERE policy = 'cpu'");
        assert_eq!(reactive, "hold", "75 < 80: the reactive policy waits");
        assert!(
            Spi::get_one::<f64>("SELECT forecast FROM autoscale.explain()")
                .unwrap()
                .is_none(),
            "no forecast for a policy that is not predictive"
        );
        Spi::run(
            "SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, min_workers => 1,
                                         predictive => true)",
        )
        .unwrap();
        assert!(one::<bool>(
            "SELECT predictive FROM autoscale.policies WHERE name = 'cpu'"
        ));
        let (decision, desired, forecast) = Spi::get_three::<String, i32, f64>(
            "SELECT decision, desired_workers, forecast FROM autoscale.explain() WHERE policy = 'cpu'",
        )
        .unwrap();
        assert_eq!(decision.as_deref(), Some("out"));
        assert_eq!(desired, Some(3));
        // 75 + 35/60 x 10 min = 80.8
        let forecast = forecast.unwrap();
        assert!((forecast - 80.8).abs() < 1.0, "forecast {forecast}");
        let horizon =
            one::<f64>("SELECT extract(epoch FROM horizon)::float8 FROM autoscale.explain()");
        assert_eq!(horizon, 600.0);
        let error = one::<f64>("SELECT model_error FROM autoscale.explain()");
        assert!((0.0..1.0).contains(&error), "model error {error}");
        let note = one::<String>("SELECT forecast_note FROM autoscale.explain()");
        assert!(note.starts_with("forecast to cross 80 in 8m"), "{note}");
        assert!(
            note.contains("a scale-out takes 10m here (autoscale.forecast_lead_time)"),
            "{note}"
        );
        let reasons =
            one::<String>("SELECT array_to_string(reasons, ' | ') FROM autoscale.explain()");
        assert!(
            reasons.contains("scale out 2 -> 3 ahead of it"),
            "{reasons}"
        );

        // learned: no scale-out recorded yet, so the default 5 minutes: the crossing is further
        Spi::run("SET autoscale.forecast_lead_time = -1").unwrap();
        let (decision, note) = Spi::get_two::<String, String>(
            "SELECT decision, forecast_note FROM autoscale.explain()",
        )
        .unwrap();
        assert_eq!(decision.as_deref(), Some("hold"));
        let note = note.unwrap();
        assert!(note.starts_with("forecast to cross 80 in 8m"), "{note}");
        assert!(
            note.contains("a scale-out takes 5m here (default: no scale-out recorded yet)"),
            "{note}"
        );
        // the backtest replays it too: the predictive scale-out comes before the threshold
        let first = one::<String>(
            "SELECT array_to_string(reasons, ' | ') FROM autoscale.backtest('2 hours', 'cpu', '10 min')
              ORDER BY at LIMIT 1",
        );
        assert!(first.contains("forecast to cross 80"), "{first}");
    }

    /// 26 hours of 1-minute cluster rollups ending 95 minutes ago, 2 workers: cpu `cpu(m)` at
    /// `m` minutes from now (negative).
    fn record_minute_rollups(cpu: &str) {
        Spi::run(&format!(
            "INSERT INTO autoscale.node_samples_1min (bucket, nodename, nodeport, samples, workers, data_nodes,
                                                      cpu_busy_pct_avg, cpu_busy_pct_max)
             SELECT now() + make_interval(mins => m), 'cluster', 0, 12, 2, 2, ({cpu}), ({cpu}) + 5
               FROM generate_series(-26 * 60, -96) m"
        ))
        .unwrap();
    }

    #[pg_test]
    fn a_recurring_jump_is_forecast_from_the_minute_rollups_and_explained() {
        Spi::run(
            "SET autoscale.sample_interval = '5s'; SET autoscale.forecast_lead_time = '12min';
             SET autoscale.forecast_cycle_window = '1d'",
        )
        .unwrap();
        fresh_history();
        // cpu 25% with 5% noise; 4.5x for 15 minutes every two hours, the next one 10 minutes
        // from now: the last 95 minutes (raw samples) are calm
        let jump = "(CASE WHEN ((m - 10) % 120 + 120) % 120 < 15 THEN 4.5 ELSE 1 END)";
        record_minute_rollups(&format!(
            "25 * (1 + 0.1 * ((hashint4(m) & 1023) / 1023.0 - 0.5)) * {jump}"
        ));
        record_samples(
            1140,
            5.0,
            "20 * (1 + 0.05 * sin(i * 1.3)) + 5 * 0.05 * sin(i * 1.3)",
        );
        Spi::run(
            "SELECT autoscale.set_policy('cpu', scale_out_above => 70, scale_in_below => 10, min_workers => 1,
                                         predictive => true)",
        )
        .unwrap();
        let (decision, desired, note) = Spi::get_three::<String, i32, String>(
            "SELECT decision, desired_workers, forecast_note FROM autoscale.explain() WHERE policy = 'cpu'",
        )
        .unwrap();
        let note = note.unwrap();
        assert_eq!(decision.as_deref(), Some("out"), "{note}");
        assert_eq!(desired, Some(3));
        assert!(note.starts_with("forecast to cross 70 in "), "{note}");
        assert!(note.contains("a 2h cycle (strength "), "{note}");
        assert!(
            note.contains("the cycle helps: its one-step error"),
            "{note}"
        );
        let reasons =
            one::<String>("SELECT array_to_string(reasons, ' | ') FROM autoscale.explain()");
        assert!(
            reasons.contains("scale out 2 -> 3 ahead of it"),
            "{reasons}"
        );
        assert!(reasons.contains("a 2h cycle"), "{reasons}");
        // metrics() exports the forecast and the period of the cycle it uses (one call per state:
        // each one fits the forecast)
        let metric = |text: &str, name: &str| {
            let prefix = format!("{name}{{policy=\"cpu\",metric=\"cpu\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .map(|v| v.parse::<f64>().unwrap())
        };
        let text = one::<String>("SELECT autoscale.metrics()");
        let period = metric(&text, "autoscale_policy_forecast_cycle_seconds").unwrap();
        assert!((6900.0..=7500.0).contains(&period), "{period}");
        let crosses = metric(&text, "autoscale_policy_forecast_crosses_in_seconds").unwrap();
        assert!((0.0..=720.0).contains(&crosses), "{crosses}");
        assert!(metric(&text, "autoscale_policy_forecast").unwrap() > 0.0);
        assert!(metric(&text, "autoscale_policy_forecast_error_ratio").unwrap() <= 0.25);

        // no cycle search: the same history forecasts no jump
        Spi::run("SET autoscale.forecast_cycle_window = 0").unwrap();
        let (decision, note) = Spi::get_two::<String, String>(
            "SELECT decision, forecast_note FROM autoscale.explain()",
        )
        .unwrap();
        let note = note.unwrap();
        assert_eq!(decision.as_deref(), Some("hold"), "{note}");
        assert!(!note.contains("cycle"), "{note}");
        let text = one::<String>("SELECT autoscale.metrics()");
        assert_eq!(
            metric(&text, "autoscale_policy_forecast_cycle_seconds"),
            Some(0.0)
        );
        assert_eq!(
            metric(&text, "autoscale_policy_forecast_crosses_in_seconds"),
            None
        );

        // a load that does not repeat: searched, not found, and said so
        Spi::run(
            "SET autoscale.forecast_cycle_window = '1d'; DELETE FROM autoscale.node_samples_1min",
        )
        .unwrap();
        record_minute_rollups("25 * (1 + 0.1 * ((hashint4(m) & 1023) / 1023.0 - 0.5))");
        let (decision, note) = Spi::get_two::<String, String>(
            "SELECT decision, forecast_note FROM autoscale.explain()",
        )
        .unwrap();
        let note = note.unwrap();
        assert_eq!(decision.as_deref(), Some("hold"), "{note}");
        assert!(
            note.contains("no cycle: the load does not repeat"),
            "{note}"
        );
    }

    #[pg_test]
    fn too_little_history_gives_no_forecast_and_says_so() {
        Spi::run("SET autoscale.sample_interval = '5s'").unwrap();
        fresh_history();
        record_samples(60, 5.0, "70");
        Spi::run(
            "SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, predictive => true)",
        )
        .unwrap();
        let (decision, note) = Spi::get_two::<String, String>(
            "SELECT decision, forecast_note FROM autoscale.explain()",
        )
        .unwrap();
        assert_eq!(decision.as_deref(), Some("hold"));
        assert_eq!(
            note.as_deref(),
            Some("no forecast: 4m55s of history, need 25m"),
        );
    }

    #[pg_test]
    fn set_policy_keeps_its_old_call() {
        // the 0.1.0 call, all fifteen arguments by position
        Spi::run(
            "SELECT autoscale.set_policy('p', 'cpu', 'avg', 80, 25, NULL, 0.1, '2 min', '15 min', '10 min',
                                         NULL, 2, 16, 1, NULL)",
        )
        .unwrap();
        assert!(!one::<bool>(
            "SELECT predictive FROM autoscale.policy_config WHERE name = 'p'"
        ));
        let p = one::<JsonB>("SELECT autoscale.set_policy('p', metric => 'tps', scale_out_above => 5000, scale_in_below => 100, predictive => true)").0;
        assert_eq!(p["predictive"], true);
        assert_eq!(p["metric"], "tps");
        assert!(one::<bool>(
            "SELECT predictive FROM autoscale.policies WHERE name = 'p'"
        ));
    }

    // ---------------------------------------------------------------- new metrics

    #[pg_test]
    fn the_new_metrics_have_values_on_a_real_node() {
        setup_dblink();
        Spi::run("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").unwrap();
        let s = one::<JsonB>("SELECT autoscale.node_stats()").0;
        assert_eq!(
            s["max_connections"].as_i64(),
            Some(one::<i64>(
                "SELECT current_setting('max_connections')::bigint"
            ))
        );
        assert!(s["blocks"]["hit"].as_i64().unwrap() > 0, "{s}");
        assert!(s["statements"]["calls"].as_i64().unwrap() > 0, "{s}");
        let first = one::<JsonB>("SELECT autoscale.sample()").0;
        // committed work in other sessions: buffer hits, transactions and statements
        for _ in 0..5 {
            remote("DO $$ BEGIN PERFORM count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid; END $$");
        }
        let second = one::<JsonB>("SELECT autoscale.sample()").0;
        assert!(second["sample_id"].as_i64() > first["sample_id"].as_i64());
        let id = second["sample_id"].as_i64().unwrap();
        let row = |col: &str| {
            Spi::get_one_with_args::<f64>(
                &format!("SELECT {col}::float8 FROM autoscale.node_samples WHERE sample_id = $1"),
                &[id.into()],
            )
            .unwrap()
        };
        let tps = row("tps").expect("tps");
        assert!(tps > 0.0, "five commits since the last sample: {tps}");
        let hit = row("cache_hit_ratio").expect("cache hit ratio");
        assert!(hit > 0.0 && hit <= 100.0, "{hit}");
        let sat = row("connection_saturation").expect("connection saturation");
        assert!(sat > 0.0 && sat <= 100.0, "{sat}");
        let ms = row("mean_statement_ms").expect("mean statement time");
        assert!(ms > 0.0, "{ms}");
        assert_eq!(row("replication_lag"), None, "no standby: missing, not 0");
        assert_eq!(
            count("SELECT count(*) FROM autoscale.latest_node_load WHERE tps IS NOT NULL AND connection_saturation IS NOT NULL"),
            1
        );
    }

    #[pg_test]
    fn mean_statement_time_is_missing_without_pg_stat_statements() {
        Spi::run("DROP EXTENSION IF EXISTS pg_stat_statements").unwrap();
        let s = one::<JsonB>("SELECT autoscale.node_stats()").0;
        assert!(s["statements"].is_null(), "{s}");
        assert!(s["blocks"].is_object(), "{s}");
    }

    #[pg_test]
    fn replication_lag_of_a_streaming_standby() {
        let bindir = one::<String>("SELECT setting FROM pg_config WHERE name = 'BINDIR'");
        let socket =
            one::<String>("SELECT split_part(current_setting('unix_socket_directories'), ',', 1)");
        let port = one::<String>("SELECT current_setting('port')");
        let user = one::<String>("SELECT current_user::text");
        let dir = std::env::temp_dir().join(format!("autoscale-receivewal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // pg_receivewal streams WAL like a standby that never replays (pg_stat_replication shows it);
        // --synchronous and -s 1 make it report its flushed position at once
        let mut child = std::process::Command::new(format!("{bindir}/pg_receivewal"))
            .args([
                "-D",
                dir.to_str().unwrap(),
                "-h",
                &socket,
                "-p",
                &port,
                "-U",
                &user,
                "-n",
                "-w",
                "-s",
                "1",
                "--synchronous",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.with_extension("log")).unwrap())
            .spawn()
            .expect("pg_receivewal starts");
        let mut streaming = false;
        for _ in 0..150 {
            if count("SELECT count(*) FROM pg_catalog.pg_stat_get_wal_senders()
                       WHERE state = 'streaming' AND coalesce(replay_lsn, flush_lsn, write_lsn) IS NOT NULL") > 0 {
                streaming = true;
                break;
            }
            Spi::run("SELECT pg_sleep(0.1)").unwrap();
        }
        let s = one::<JsonB>("SELECT autoscale.node_stats()").0;
        // and a sample records it, in the same round trip as the other metrics
        let sampled = one::<JsonB>("SELECT autoscale.sample()").0;
        let recorded = Spi::get_one_with_args::<i64>(
            "SELECT replication_lag FROM autoscale.node_samples WHERE sample_id = $1 AND reachable",
            &[sampled["sample_id"].as_i64().unwrap_or(0).into()],
        )
        .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(dir.with_extension("log"));
        assert!(streaming, "pg_receivewal never streamed: {log}");
        let lag = s["replication_lag_bytes"].as_i64();
        assert!(lag.is_some_and(|l| l >= 0), "{s}");
        assert!(
            recorded.is_some_and(|l| l >= 0),
            "node_samples.replication_lag of the sample: {recorded:?} ({sampled})"
        );
    }

    // ---------------------------------------------------------------- rollups

    #[pg_test]
    fn the_cluster_rollup_reads_the_data_nodes() {
        fresh_history();
        // two samples in the minute before last: the coordinator holds shards (cpu 30), w2 holds
        // shards (60), w3 joined and holds none yet (0), w4 holds shards but does not answer; then
        // two samples recorded before data nodes were known (data_node NULL): the workers count
        Spi::run(
            "INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver)
               SELECT date_trunc('minute', now(), 'UTC') - interval '2 min' + make_interval(secs => 10 * i), -i, 3, 2, 1, 0, 'test'
                 FROM generate_series(1, 4) i;
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable, data_node, cpu_busy_pct)
               SELECT -i, date_trunc('minute', now(), 'UTC') - interval '2 min' + make_interval(secs => 10 * i), n.id, n.name, 5432,
                      n.id = 1, n.id <> 4, CASE WHEN i <= 2 THEN n.dn END, n.cpu
                 FROM generate_series(1, 4) i,
                      (VALUES (1, 'c', true, 30), (2, 'w2', true, 60), (3, 'w3', false, 0), (4, 'w4', true, NULL)) n(id, name, dn, cpu);",
        )
        .unwrap();
        rollups::fill_level(Level::Minute).unwrap();
        let row = |minute: i32| {
            Spi::get_three_with_args::<f64, f64, f64>(
                "SELECT cpu_busy_pct_avg::float8, data_nodes::float8, workers::float8 FROM autoscale.node_samples_1min
                  WHERE nodename = 'cluster' AND nodeport = 0
                    AND bucket = date_trunc('minute', now(), 'UTC') - make_interval(mins => $1)",
                &[minute.into()],
            )
            .unwrap()
        };
        // the minute before last: samples 1..4 at +10..+40 s: two with data nodes, two without
        let (avg, data_nodes, workers) = row(2);
        // with data nodes: c 30 and w2 60 (w4 counts as a node, has no value): 45 over 3 nodes;
        // without: the workers w2 60, w3 0: 30 over 3 workers
        assert!((avg.unwrap() - 37.5).abs() < 1e-3, "{avg:?}");
        assert_eq!(data_nodes, Some(3.0));
        assert_eq!(workers, Some(3.0));
    }

    #[pg_test]
    fn rollups_fill_incrementally_and_prune_per_level() {
        Spi::run("SET autoscale.sample_interval = '20s'").unwrap();
        fresh_history();
        // 150 minutes, a sample every 20 s; within each minute cpu 10, 20, 90 on w2 (w3 +10)
        record_samples(451, 20.0, "(ARRAY[10, 20, 90])[1 + (451 - i) % 3]");
        let minutes = count(
            "SELECT count(DISTINCT date_trunc('minute', sampled_at, 'UTC')) FROM autoscale.node_samples
              WHERE sampled_at < date_trunc('minute', now(), 'UTC')",
        );
        let hours = count(
            "SELECT count(DISTINCT date_trunc('hour', sampled_at, 'UTC')) FROM autoscale.node_samples
              WHERE sampled_at < date_trunc('hour', now(), 'UTC')",
        );
        assert!((150..=151).contains(&minutes), "{minutes}");
        let buckets = |table: &str| {
            count(&format!(
                "SELECT count(DISTINCT bucket) FROM {table} WHERE nodename = 'cluster'"
            ))
        };
        // one call fills at most 60 minutes: 3 rows each (w2, w3, cluster)
        assert_eq!(rollups::fill_level(Level::Minute).unwrap(), 180);
        assert_eq!(buckets("autoscale.node_samples_1min"), 60);
        assert_eq!(rollups::fill_level(Level::Minute).unwrap(), 180);
        assert_eq!(
            rollups::fill_level(Level::Minute).unwrap(),
            3 * (minutes - 120)
        );
        assert_eq!(buckets("autoscale.node_samples_1min"), minutes);
        assert_eq!(
            rollups::fill_level(Level::Minute).unwrap(),
            0,
            "nothing new"
        );
        // the hour level: one complete hour per call
        for h in 1..=hours {
            assert_eq!(rollups::fill_level(Level::Hour).unwrap(), 3);
            assert_eq!(buckets("autoscale.node_samples_1hour"), h);
        }
        assert_eq!(rollups::fill_level(Level::Hour).unwrap(), 0);
        // a full minute of w2: 3 samples of 10, 20 and 90 in some order
        let (avg, max, p95, n) = (
            one::<f64>("SELECT cpu_busy_pct_avg::float8 FROM autoscale.node_samples_1min WHERE nodename = 'w2' ORDER BY bucket DESC LIMIT 1"),
            one::<f64>("SELECT cpu_busy_pct_max::float8 FROM autoscale.node_samples_1min WHERE nodename = 'w2' ORDER BY bucket DESC LIMIT 1"),
            one::<f64>("SELECT cpu_busy_pct_p95::float8 FROM autoscale.node_samples_1min WHERE nodename = 'w2' ORDER BY bucket DESC LIMIT 1"),
            one::<i32>("SELECT samples FROM autoscale.node_samples_1min WHERE nodename = 'w2' ORDER BY bucket DESC LIMIT 1"),
        );
        assert_eq!(n, 3);
        assert!((avg - 40.0).abs() < 1e-3, "{avg}");
        assert_eq!(max, 90.0);
        assert!(
            (p95 - 83.0).abs() < 1e-3,
            "percentile_cont(0.95) of 10, 20, 90: {p95}"
        );
        // the cluster row: the average of w2 and w3 per sample, and the workers
        let (cavg, workers) = Spi::get_two::<f64, f64>(
            "SELECT cpu_busy_pct_avg::float8, workers::float8 FROM autoscale.node_samples_1min
              WHERE nodename = 'cluster' AND nodeport = 0 ORDER BY bucket DESC LIMIT 1",
        )
        .unwrap();
        assert!((cavg.unwrap() - 45.0).abs() < 1e-3);
        assert_eq!(workers, Some(2.0));
        let storage = count(
            "SELECT count(*) FROM autoscale.history_storage WHERE rows > 0 AND bytes > 0 AND bytes_per_node_per_day > 0",
        );
        assert_eq!(storage, 3, "raw, 1 minute and 1 hour levels");

        // pruning: each level by its own retention
        Spi::run("SET autoscale.rollup_minute_retention = '1h'").unwrap();
        let old_minutes = count(
            "SELECT count(*) FROM autoscale.node_samples_1min WHERE bucket < now() - interval '1 hour'",
        );
        assert!(old_minutes > 0);
        assert_eq!(
            rollups::prune_level(Level::Minute, 50).unwrap(),
            50,
            "bounded"
        );
        assert_eq!(
            rollups::prune_level(Level::Minute, 100_000).unwrap(),
            old_minutes - 50
        );
        assert_eq!(
            rollups::prune_level(Level::Hour, 100_000).unwrap(),
            0,
            "2 years"
        );
        assert_eq!(buckets("autoscale.node_samples_1hour"), hours);
        Spi::run("SET autoscale.rollup_hour_retention = '1h'").unwrap();
        assert!(rollups::prune_level(Level::Hour, 100_000).unwrap() > 0);
        assert_eq!(
            count("SELECT count(*) FROM autoscale.node_samples_1hour WHERE bucket < now() - interval '1 hour'"),
            0
        );
        Spi::run("SET autoscale.rollup_hour_retention = -1").unwrap();
        assert_eq!(rollups::prune_level(Level::Hour, 100_000).unwrap(), 0);
    }

    // ---------------------------------------------------------------- capacity plan

    #[pg_test]
    fn capacity_plan_counts_a_coordinator_that_holds_shards() {
        fresh_history();
        // 90 days on 1 worker and the coordinator holding shards (2 data nodes): cpu 15% rising
        // 0.5 a day to 60% per data node now; the latest sample says the coordinator is a data node
        Spi::run(
            "INSERT INTO autoscale.node_samples_1hour (bucket, nodename, nodeport, samples, workers, data_nodes,
                                                       cpu_busy_pct_avg, database_size_avg)
             SELECT date_trunc('hour', now(), 'UTC') - make_interval(hours => h), 'cluster', 0, 720, 1, 2,
                    60 - 0.5 * h / 24.0, 1e9 + 1e7 * (2160 - h) / 24.0
               FROM generate_series(0, 2159) h;
             INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers,
                                                 unreachable_workers, inactive_workers, driver)
             VALUES (now(), -1, 1, 1, 0, 0, 'test');
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator,
                                                 reachable, data_node, cpu_busy_pct)
             VALUES (-1, now(), 1, 'c', 5432, true, true, true, 60), (-1, now(), 2, 'w2', 5432, false, true, true, 60);
             SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, min_workers => 0,
                                         max_workers => 3);",
        )
        .unwrap();
        let days = |col: &str| {
            one::<f64>(&format!(
                "SELECT extract(epoch FROM {col} - now())::float8 / 86400 FROM autoscale.capacity_plan() WHERE metric = 'cpu'"
            ))
        };
        // per data node 60 + 0.5/day reaches 80 in 40 days (on the worker alone: 120%, "now")
        let cross = days("crosses_at");
        assert!((cross - 40.0).abs() < 1.0, "crosses in {cross} days");
        // 3 workers and the coordinator: 2 x (60 + 0.5 d) = 4 x 80: 200 days
        let full = days("max_workers_full_at");
        assert!((full - 200.0).abs() < 1.0, "full in {full} days");
        let (current, in3) = Spi::get_two::<f64, f64>(
            "SELECT current_value, in_3_months FROM autoscale.capacity_plan() WHERE metric = 'cpu'",
        )
        .unwrap();
        assert!((current.unwrap() - 60.0).abs() < 0.01);
        assert!((in3.unwrap() - 105.0).abs() < 1.0, "{in3:?}");
        let (action, unit) = Spi::get_two::<String, String>(
            "SELECT action, unit FROM autoscale.capacity_plan() WHERE metric = 'cpu'",
        )
        .unwrap();
        let action = action.unwrap();
        assert!(
            action.contains("even 3 workers and the coordinator pass the threshold (policy cpu)"),
            "{action}"
        );
        assert_eq!(unit.as_deref(), Some("% per data node"));
        // database bytes: 10 MB a day per data node, 2 data nodes: 600 MB a month
        let per_month = one::<f64>(
            "SELECT per_month FROM autoscale.capacity_plan() WHERE metric = 'database_bytes'",
        );
        assert!((per_month / 6e8 - 1.0).abs() < 0.01, "{per_month}");
    }

    #[pg_test]
    fn capacity_plan_finds_the_crossing_of_a_known_trend() {
        fresh_history();
        // 90 days of hourly cluster rollups on 4 workers: cpu 20% rising 0.5 a day to 65% now,
        // memory flat at 50%
        Spi::run(
            "INSERT INTO autoscale.node_samples_1hour (bucket, nodename, nodeport, samples, workers,
                                                       cpu_busy_pct_avg, mem_used_pct_avg, database_size_avg)
             SELECT date_trunc('hour', now(), 'UTC') - make_interval(hours => h), 'cluster', 0, 720, 4,
                    65 - 0.5 * h / 24.0, 50, 1e9 + 1e7 * (2160 - h) / 24.0
               FROM generate_series(0, 2159) h;
             INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers,
                                                 unreachable_workers, inactive_workers, driver)
             VALUES (now(), -1, 4, 4, 0, 0, 'test');
             SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, max_workers => 8);",
        )
        .unwrap();
        let days = |col: &str, metric: &str| {
            one::<f64>(&format!(
                "SELECT extract(epoch FROM {col} - now())::float8 / 86400 FROM autoscale.capacity_plan() WHERE metric = '{metric}'"
            ))
        };
        // 65 + 0.5/day reaches 80 in 30 days (the hour buckets start at the top of the hour)
        let cross = days("crosses_at", "cpu");
        assert!((cross - 30.0).abs() < 1.0, "crosses in {cross} days");
        // 4 x (65 + 0.5 d) = 8 x 80: 190 days
        let full = days("max_workers_full_at", "cpu");
        assert!((full - 190.0).abs() < 1.0, "full in {full} days");
        let (current, in3) = Spi::get_two::<f64, f64>(
            "SELECT current_value, in_3_months FROM autoscale.capacity_plan() WHERE metric = 'cpu'",
        )
        .unwrap();
        assert!((current.unwrap() - 65.0).abs() < 0.01);
        assert!((in3.unwrap() - 110.0).abs() < 1.0);
        let action =
            one::<String>("SELECT action FROM autoscale.capacity_plan() WHERE metric = 'cpu'");
        assert!(
            action.starts_with("raise max_workers (8) or use bigger nodes before"),
            "{action}"
        );
        assert!(action.contains("(policy cpu)"), "{action}");
        assert_eq!(
            one::<String>("SELECT action FROM autoscale.capacity_plan() WHERE metric = 'memory'"),
            "none: flat or falling"
        );
        assert_eq!(
            one::<f64>("SELECT threshold FROM autoscale.capacity_plan() WHERE metric = 'memory'"),
            90.0,
            "the default when no policy watches memory"
        );
        // database bytes: 10 MB a day per worker, 4 workers: 1.2 GB a month
        let per_month = one::<f64>(
            "SELECT per_month FROM autoscale.capacity_plan() WHERE metric = 'database_bytes'",
        );
        assert!((per_month / 1.2e9 - 1.0).abs() < 0.01, "{per_month}");
        assert_eq!(
            count("SELECT count(*) FROM autoscale.capacity_plan()"),
            6,
            "cpu, memory, disk, connections, commits_per_sec, database_bytes"
        );
        assert!(one::<String>(
            "SELECT action FROM autoscale.capacity_plan() WHERE metric = 'disk'"
        )
        .starts_with("too little history to plan: 0s of hourly rollups"));
        // with three days only, it says so instead of forecasting
        Spi::run(
            "DELETE FROM autoscale.node_samples_1hour WHERE bucket < now() - interval '73 hours'",
        )
        .unwrap();
        let (action, in3) = Spi::get_two::<String, f64>(
            "SELECT action, in_3_months FROM autoscale.capacity_plan() WHERE metric = 'cpu'",
        )
        .unwrap();
        assert!(action
            .unwrap()
            .starts_with("too little history to plan: 3d of hourly rollups, need 7d"),);
        assert_eq!(in3, None);
    }
}
