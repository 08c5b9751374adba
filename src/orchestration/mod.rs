//! Orchestration: one tick (sample, then decide and act) and the autopilot that decides and acts.

pub mod autopilot;
pub mod tick;
