//! The sampler: [`local`] reads this node's raw load, [`cluster`] samples every node of the
//! cluster from the coordinator in one parallel fan-out and turns counters into rates.

pub mod cluster;
pub mod local;
