//! Entry points: the SQL functions of schema `autoscale` ([`api`]), the background worker and the
//! Prometheus metrics. They check arguments and call the layers below; no rule lives here.

pub mod api;
pub mod metrics;
pub mod worker;
