//! Vertical scaling advice from the recorded samples: the nodes that need a bigger machine
//! (`autoscale_core::resize` holds the decision matrix).

use autoscale_core::duration::format_secs;
use autoscale_core::resize::{advise, Advice};

use crate::infra::errors::Result;
use crate::store::samples;

/// The advice for every reachable data node over the samples of the last `window_secs`.
pub fn advice(window_secs: f64) -> Result<Vec<Advice>> {
    let at_max = samples::at_max_workers()?;
    let label = format_secs(window_secs);
    Ok(samples::resize_windows(window_secs)?
        .iter()
        .flat_map(|n| advise(n, at_max, &label))
        .collect())
}
