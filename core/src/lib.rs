//! Pure logic of citus_autoscale. Nothing here links to PostgreSQL: no pgrx, no SPI, no I/O
//! beyond what a caller passes in. Everything is tested with plain `cargo test -p autoscale_core`.
//!
//! - [`procfs`]: parsers for /proc and cgroup v2 files (the raw material of `autoscale.node_stats()`).
//! - [`stats`]: the json shape of one node's raw reading, shared by the node that produces it and
//!   the coordinator that reads it.
//! - [`rates`]: cumulative counters to rates (CPU busy %, commits/s), Prometheus-style.
//! - [`policy`]: the policy engine: policies + recent samples + action history -> decision + reasons.
//! - [`forecast`]: the short-term load forecast (seasonal profile x a cycle found in the data x
//!   robust trend, with its own error), the learned lead time, and the linear trend of the capacity plan.
//! - [`history`]: the compact node history: one sample's node readings in one value, and back.
//! - [`schedule`]: schedules: cron windows in a time zone that set min/max workers while they
//!   apply (overlaps: the highest min and the highest max), the clamp and its explanation.
//! - [`capacity`]: the capacity plan: linear trends months ahead, threshold and max_workers dates.
//! - [`compat`]: the supported PostgreSQL / Citus pairs and what is said on the others.
//! - [`clones`]: warm clones in the pool: when one is ready for a snapshot split, which one a
//!   scale-out takes, and which path (split or logical) a scale-out will take.
//! - [`load`]: per-shard-group load: rates, smoothing, the by-load cost, the load-skew trigger.
//! - [`node`]: `NodeAddr`, a node's address, shared by every module that names nodes.
//! - [`duration`]: parsing and printing of human durations ("2 min", "90s").
//! - [`operations`]: the persisted operation state machine (rebalance, scale-out, scale-in), the
//!   rebalance trigger, the guards and the maintenance window.
//! - [`resize`]: vertical scaling advice (more vCPUs, RAM or shared_buffers for one node), the
//!   decision matrix.
//! - [`safety`]: webhook URL shape, bounded reasons, the failure backoff, conflicting settings.

pub mod backoff;
pub mod capacity;
pub mod clones;
pub mod compat;
pub mod duration;
pub mod forecast;
pub mod history;
pub mod load;
pub mod metrics;
pub mod node;
pub mod operations;
pub mod policy;
pub mod procfs;
pub mod rates;
pub mod resize;
pub mod safety;
pub mod schedule;
pub mod stats;
