//! The sampler: [`local`] reads this node's raw load, [`cluster`] samples every node of the
//! cluster from the coordinator in one parallel fan-out and turns counters into rates, and
//! [`custom`] runs the policies' custom metric queries for the same sample.

pub mod cluster;
pub mod custom;
pub mod local;
