//! `#[pg_test]`s of issue 21: schedules in SQL (set_schedule, drop_schedule, their errors and
//! privileges), a schedule applying now in explain() and metrics(), and backtest_series() on a
//! series whose figures can be worked out by hand.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;

    fn one<T: FromDatum + IntoDatum>(sql: &str) -> T {
        Spi::get_one::<T>(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: NULL"))
    }

    /// `pg_temp.err(sql)`: the SQLSTATE, message and detail `sql` fails with, caught in a
    /// subtransaction (NULL when it does not fail).
    fn setup() {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
             DECLARE d text;
             BEGIN EXECUTE sql; RETURN NULL;
             EXCEPTION WHEN OTHERS THEN
               GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
               RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' DETAIL: ' || nullif(d, ''), ''); END $$;
             DELETE FROM autoscale.schedules; DELETE FROM autoscale.policy_config",
        )
        .unwrap();
    }

    #[track_caller]
    fn assert_err(sql: &str, sqlstate: &str, contains: &[&str]) {
        let e = Spi::get_one_with_args::<String>("SELECT pg_temp.err($1)", &[sql.into()])
            .unwrap()
            .unwrap_or_else(|| format!("no error from {sql}"));
        assert!(
            e.starts_with(&format!("{sqlstate}: ")),
            "{sql} -- gave: {e} -- expected SQLSTATE {sqlstate}"
        );
        for c in contains {
            assert!(
                e.contains(c),
                "{sql} -- gave: {e} -- expected it to contain {c:?}"
            );
        }
    }

    /// Empties the sample history and keeps the test instance's background worker from
    /// committing samples until the test ends; then `n` samples 5 s apart ending now, 2 workers
    /// at `cpu`%.
    fn history_at(n: i32, cpu: f64) {
        Spi::run(&format!(
            "LOCK TABLE autoscale.worker_count IN EXCLUSIVE MODE;
             DELETE FROM autoscale.worker_count; DELETE FROM autoscale.node_samples;
             DELETE FROM autoscale.operations;
             INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver)
               SELECT now() - make_interval(secs => ({n} - i) * 5), -i, 2, 2, 0, 0, 'test' FROM generate_series(1, {n}) i;
             INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable, cpu_busy_pct)
               SELECT -i, now() - make_interval(secs => ({n} - i) * 5), w, 'w' || w, 5432, false, true, {cpu}
                 FROM generate_series(1, {n}) i, generate_series(2, 3) w;"
        ))
        .unwrap();
    }

    #[pg_test]
    fn set_schedule_validates_upserts_and_drops() {
        setup();
        assert_err(
            "SELECT autoscale.set_schedule('s', '0 25 * * *', min_workers => 4)",
            "22023",
            &["cron", "0 25 * * *", "hour 25 is outside 0-23"],
        );
        assert_err(
            "SELECT autoscale.set_schedule('s', '0 8 * *', min_workers => 4)",
            "22023",
            &["cron", "expected 5 fields"],
        );
        assert_err(
            "SELECT autoscale.set_schedule('s', '0 8 * * *', min_workers => 4, time_zone => 'Mars/Olympus')",
            "22023",
            &["time_zone", "Mars/Olympus", "IANA name"],
        );
        assert_err(
            "SELECT autoscale.set_schedule('s', '0 8 * * *', min_workers => 4, duration => '30 seconds')",
            "22023",
            &["duration", "30s", "between 1 minute and 7 days"],
        );
        assert_err(
            "SELECT autoscale.set_schedule('s', '0 8 * * *')",
            "22023",
            &["min_workers and max_workers", "neither given"],
        );
        assert_err(
            "SELECT autoscale.set_schedule('s', '0 8 * * *', min_workers => -1)",
            "22023",
            &["min_workers", "-1", "between 0 and 1000"],
        );
        assert_err(
            "SELECT autoscale.set_schedule('s', '0 8 * * *', min_workers => 6, max_workers => 4)",
            "22023",
            &["min_workers 6 > max_workers 4"],
        );
        assert_err(
            "SELECT autoscale.set_schedule('s', NULL, min_workers => 4)",
            "22004",
            &["cron", "5-field cron"],
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM autoscale.schedules"), 0);

        let s = one::<JsonB>(
            "SELECT autoscale.set_schedule('business-hours', '0 8 * * mon-fri', min_workers => 6,
                                           time_zone => 'Europe/Berlin', duration => '10 hours')",
        );
        assert_eq!(s.0["min_workers"], 6);
        assert_eq!(s.0["duration"], 36000.0);
        // upsert by name
        Spi::run("SELECT autoscale.set_schedule('business-hours', '0 7 * * 1-5', min_workers => 5, duration => '11 hours')").unwrap();
        let (cron, min, dur) = Spi::get_three::<String, i32, f64>(
            "SELECT cron, min_workers, extract(epoch FROM duration)::float8 FROM autoscale.schedules",
        )
        .unwrap();
        assert_eq!(
            (cron.as_deref(), min, dur),
            (Some("0 7 * * 1-5"), Some(5), Some(39600.0))
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM autoscale.schedules"), 1);
        assert!(
            one::<i64>("SELECT count(*) FROM autoscale.events WHERE kind = 'schedule_set'") >= 2
        );

        assert_err(
            "SELECT autoscale.drop_schedule('nope')",
            "42704",
            &["schedule \"nope\" does not exist"],
        );
        assert!(one::<bool>(
            "SELECT autoscale.drop_schedule('business-hours')"
        ));
        assert_eq!(one::<i64>("SELECT count(*) FROM autoscale.schedules"), 0);

        // cluster-changing configuration: not PUBLIC, not pg_monitor; the replay is for pg_monitor
        for f in [
            "autoscale.set_schedule(text, text, integer, integer, text, interval)",
            "autoscale.drop_schedule(text)",
        ] {
            assert!(!one::<bool>(&format!(
                "SELECT has_function_privilege('pg_monitor', '{f}', 'EXECUTE')"
            )));
            assert!(one::<bool>(&format!(
                "SELECT proacl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM aclexplode(proacl) a WHERE a.grantee = 0)
                   FROM pg_proc WHERE oid = '{f}'::regprocedure"
            )));
        }
        assert!(one::<bool>(
            "SELECT has_function_privilege('pg_monitor',
               'autoscale.backtest_series(timestamptz[], float8[], text, interval, integer, float8[])', 'EXECUTE')"
        ));
        assert!(one::<bool>(
            "SELECT has_table_privilege('pg_monitor', 'autoscale.schedules', 'SELECT')"
        ));
    }

    #[pg_test]
    fn a_schedule_applying_now_sets_the_decision_in_explain_and_metrics() {
        setup();
        Spi::run("SET autoscale.sample_interval = '5s'; SET autoscale.mode = 'observe'").unwrap();
        // 3 minutes at 50%: the policy holds at 2 workers
        history_at(37, 50.0);
        Spi::run("SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, min_workers => 1)").unwrap();
        assert_eq!(
            one::<String>("SELECT decision FROM autoscale.explain() WHERE policy = 'cpu'"),
            "hold"
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.explain() WHERE policy = 'schedule'"),
            0
        );
        // a window starts every minute and lasts 10: the schedule applies now
        Spi::run("SELECT autoscale.set_schedule('always', '* * * * *', min_workers => 5, duration => '10 min')").unwrap();
        let (decision, workers, desired) = Spi::get_three::<String, i32, i32>(
            "SELECT decision, workers, desired_workers FROM autoscale.explain() WHERE policy = 'schedule'",
        )
        .unwrap();
        assert_eq!(decision.as_deref(), Some("out"));
        assert_eq!((workers, desired), (Some(2), Some(5)));
        let reasons = one::<String>(
            "SELECT array_to_string(reasons, ' | ') FROM autoscale.explain() WHERE policy = 'schedule'",
        );

        assert!(
            reasons.contains("2 -> 5 workers: schedule 'always' (* * * * *, 10m, UTC) raises min_workers to 5 until"),
            "{reasons}"
        );
        let rule = one::<String>("SELECT rule FROM autoscale.explain() WHERE policy = 'schedule'");
        assert!(rule.starts_with("min_workers 5, max_workers 16"), "{rule}");
        let m = one::<String>("SELECT autoscale.metrics()");
        assert!(
            m.contains("autoscale_schedule_min_workers{schedule=\"always\"} 5"),
            "{m}"
        );

        // backtest() replays the schedule over the recorded samples: out to 5 at the first one
        let (decision, from, to, reasons) = Spi::connect(|c| {
            let r = c
                .select(
                    "SELECT decision, from_workers, to_workers, array_to_string(reasons, ' | ')
                       FROM autoscale.backtest('1 hour') ORDER BY at LIMIT 1",
                    None,
                    &[],
                )?
                .first();
            Ok::<_, pgrx::spi::SpiError>((
                r.get::<String>(1)?,
                r.get::<i32>(2)?,
                r.get::<i32>(3)?,
                r.get::<String>(4)?.unwrap_or_default(),
            ))
        })
        .unwrap();
        assert_eq!(
            (decision.as_deref(), from, to),
            (Some("out"), Some(2), Some(5)),
            "{reasons}"
        );
        assert!(
            reasons.contains("2 -> 5 workers: schedule 'always'"),
            "{reasons}"
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.backtest('1 hour')"),
            1,
            "then it holds at 5"
        );

        // a max_workers below the workers scales in
        Spi::run("SELECT autoscale.drop_schedule('always')").unwrap();
        Spi::run("SELECT autoscale.set_schedule('cap', '* * * * *', max_workers => 1, duration => '10 min')").unwrap();
        let (decision, desired) = Spi::get_two::<String, i32>(
            "SELECT decision, desired_workers FROM autoscale.explain() WHERE policy = 'schedule'",
        )
        .unwrap();
        assert_eq!((decision.as_deref(), desired), (Some("in"), Some(1)));
        let m = one::<String>("SELECT autoscale.metrics()");
        assert!(
            m.contains("autoscale_schedule_max_workers{schedule=\"cap\"} 1"),
            "{m}"
        );

        // a schedule whose window is not open does nothing
        Spi::run("SELECT autoscale.drop_schedule('cap')").unwrap();
        let later =
            one::<i32>("SELECT (extract(hour FROM now() AT TIME ZONE 'UTC')::int + 12) % 24");
        Spi::run(&format!(
            "SELECT autoscale.set_schedule('elsewhen', '0 {later} * * *', min_workers => 5, duration => '1 hour')"
        ))
        .unwrap();
        assert_eq!(
            one::<i64>("SELECT count(*) FROM autoscale.explain() WHERE policy = 'schedule'"),
            0
        );
        assert_eq!(
            one::<i32>("SELECT desired_workers FROM autoscale.explain() WHERE policy = 'cpu'"),
            2
        );
    }

    /// One hour of 5-s points at 90% on 2 workers (demand 180 worker-percent). A sample stands
    /// for the 5 s before it, so the 24th (t = 115 s) completes the 2 minutes and the policy scales
    /// out; the operation takes 3 minutes: 59 samples (t = 0..290 s) at 2 workers and 90%, then
    /// 661 at 3 workers and 60%.
    #[pg_test]
    fn backtest_series_replays_a_constant_load_by_hand() {
        setup();
        Spi::run("SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, scale_out_for => '2 min', min_workers => 1)").unwrap();
        Spi::run("SELECT autoscale.set_policy('mem', metric => 'memory', scale_out_above => 95, scale_in_below => 10, min_workers => 1)").unwrap();
        let series =
            "ARRAY(SELECT to_timestamp(1700000000 + i * 5) FROM generate_series(0, 719) i)";
        let (minutes, above, wmin, outs, ins, rev, end) =
            Spi::connect(|c| {
                let r = c
                    .select(
                        &format!(
                            "SELECT minutes, minutes_above, worker_minutes, scale_outs, scale_ins, reversals, end_workers
                               FROM autoscale.backtest_series({series}, array_fill(90::float8, ARRAY[720]),
                                                              'cpu', start_workers => 2)"
                        ),
                        None,
                        &[],
                    )?
                    .first();
                Ok::<_, pgrx::spi::SpiError>((
                    r.get::<f64>(1)?.unwrap(),
                    r.get::<JsonB>(2)?.unwrap(),
                    r.get::<f64>(3)?.unwrap(),
                    r.get::<i32>(4)?.unwrap(),
                    r.get::<i32>(5)?.unwrap(),
                    r.get::<i32>(6)?.unwrap(),
                    r.get::<i32>(7)?.unwrap(),
                ))
            })
            .unwrap();
        assert_eq!(minutes, 60.0);
        assert_eq!(
            above.0,
            serde_json::json!({"70": 4.917, "80": 4.917, "90": 0.0})
        );
        // (2 x 59 + 3 x 661) x 5 s = 10505 s
        assert_eq!(wmin, 175.083);
        assert_eq!((outs, ins, rev, end), (1, 0, 0, 3));
        // operation_time 0: the third worker from the sample after the decision (24 samples,
        // 0 s to 115 s, above 80%)
        assert_eq!(
            one::<JsonB>(&format!(
                "SELECT minutes_above FROM autoscale.backtest_series({series}, array_fill(90::float8, ARRAY[720]),
                                                                     'cpu', '0 s', 2, '{{80}}')"
            ))
            .0,
            serde_json::json!({"80": 2.0})
        );
        // NULL policy: each policy; memory does not spread over workers and stays below 95
        assert_eq!(
            one::<String>(&format!(
                "SELECT string_agg(policy || ':' || scale_outs, ',' ORDER BY policy)
                   FROM autoscale.backtest_series({series}, array_fill(90::float8, ARRAY[720]), start_workers => 2)"
            )),
            "cpu:1,mem:0"
        );
        // a schedule replays too: at least 4 workers from the series' start (2023-11-14 22:13 UTC)
        Spi::run("SELECT autoscale.set_schedule('night', '13 22 * * *', min_workers => 4, duration => '2 hours')").unwrap();
        let (outs, peak) = Spi::get_two::<i32, i32>(&format!(
            "SELECT scale_outs, peak_workers FROM autoscale.backtest_series({series}, array_fill(90::float8, ARRAY[720]),
                                                                           'cpu', start_workers => 2)"
        ))
        .unwrap();
        assert_eq!((outs, peak), (Some(1), Some(4)));
    }

    #[pg_test]
    fn backtest_series_names_bad_input() {
        setup();
        Spi::run("SELECT autoscale.set_policy('cpu', min_workers => 1)").unwrap();
        let ts3 = "ARRAY['2026-01-01 00:00:00+00', '2026-01-01 00:00:05+00', '2026-01-01 00:00:10+00']::timestamptz[]";
        assert_err(
            &format!("SELECT * FROM autoscale.backtest_series({ts3}, '{{1,2}}')"),
            "22023",
            &["value", "2 elements (ts has 3)", "as many elements as ts"],
        );
        assert_err(
            "SELECT * FROM autoscale.backtest_series(ARRAY[now()], '{1}')",
            "22023",
            &["ts", "1 elements", "between 2 and"],
        );
        assert_err(
            "SELECT * FROM autoscale.backtest_series(ARRAY['2026-01-01 00:00:10+00', '2026-01-01 00:00:05+00']::timestamptz[], '{1,2}')",
            "22023",
            &["ts", "position 2 is not after position 1", "strictly ascending"],
        );
        assert_err(
            "SELECT * FROM autoscale.backtest_series(ARRAY['2026-01-01 00:00:10+00', NULL]::timestamptz[], '{1,2}')",
            "22023",
            &["ts", "NULL at position 2", "none NULL"],
        );
        assert_err(
            &format!("SELECT * FROM autoscale.backtest_series({ts3}, '{{1,NULL,3}}')"),
            "22023",
            &["value", "NULL at position 2"],
        );
        assert_err(
            &format!("SELECT * FROM autoscale.backtest_series({ts3}, '{{1,2,3}}', 'nope')"),
            "22023",
            &["policy", "'nope'", "the name of a policy"],
        );
        assert_err(
            &format!("SELECT * FROM autoscale.backtest_series({ts3}, '{{1,2,3}}', operation_time => '-1 min')"),
            "22023",
            &["operation_time", "-60 seconds", "an interval >= 0"],
        );
        assert_err(
            &format!(
                "SELECT * FROM autoscale.backtest_series({ts3}, '{{1,2,3}}', start_workers => 0)"
            ),
            "22023",
            &["start_workers", "0", "between 1 and 1000"],
        );
        assert_err(
            &format!("SELECT * FROM autoscale.backtest_series({ts3}, NULL)"),
            "22004",
            &["value"],
        );
    }
}
