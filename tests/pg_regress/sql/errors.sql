-- User-visible errors: each bad call prints its message, then whether it failed and the last SQLSTATE.
-- No call may end in XX000.
\set VERBOSITY default
\set SHOW_CONTEXT never
\set ON_ERROR_STOP 0
SELECT autoscale.set_policy('p', metric => 'cpu_pct', scale_out_above => 80, scale_in_below => 20);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', aggregate => 'median', scale_out_above => 80, scale_in_below => 20);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', scale_out_above => 20, scale_in_below => 80);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', metric => NULL);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', target => 50, scale_out_above => 80);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', target => 50, tolerance => 2);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', scale_out_above => 80, scale_in_below => 20, min_workers => 5, max_workers => 3);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', scale_out_above => 80, scale_in_below => 20, step => 0);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', scale_out_above => 80, scale_in_below => 20, scale_out_for => '-1 min');
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('', scale_out_above => 80, scale_in_below => 20);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', metric => 'custom', scale_out_above => 80, scale_in_below => 20);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.drop_policy('no_such_policy');
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.pause('-1 hour');
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT * FROM autoscale.backtest('-1 day');
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT * FROM autoscale.backtest('1 day', 'no_such_policy');
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.cancel_operation();
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SET autoscale.mode = 'sometimes';
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SET autoscale.sample_interval = '1 ms';
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SET autoscale.shard_transfer_mode = 'teleport';
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SET autoscale.no_such_setting = 'x';
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
SELECT autoscale.set_policy('p', scale_out_above => 80, scale_in_below => 20, predictive => NULL);
\echo error :ERROR sqlstate :LAST_ERROR_SQLSTATE
