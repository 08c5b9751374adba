//! The texts that the step tables and the messages both use: why a step cannot be cancelled, and
//! what an inconsistent row lacks. Their own module, so that neither imports the other for them.

use super::Step;

/// Why a scale-in at `return_to_pool` cannot be cancelled.
pub const CANCEL_ALREADY_REMOVED: &str =
    "the node is already removed from the cluster; it finishes returning it to the pool";
/// Why a scale-in at `restore` cannot be cancelled.
pub const CANCEL_ALREADY_RESTORING: &str =
    "it is already restoring shouldhaveshards and finishes as failed";

pub const NEEDS_NODE: &str = "a node and none is recorded";
pub const NEEDS_DEAD: &str = "the dead node and none is recorded";
pub const NEEDS_JOB: &str = "a job id and none is recorded";
pub const NEEDS_CLONE: &str = "the clone and its primary and they are not recorded";
pub const NEEDS_COORDINATOR: &str = "the coordinator and a value, and none is recorded";

/// A running row at `step` lacks a value: `what` is one of the `NEEDS_*` texts.
pub fn needs(step: Step, what: &str) -> String {
    format!("inconsistent operation: step {step} needs {what}")
}

/// What the isolate_tenant steps need recorded.
pub const NEEDS_TENANT: &str = "the tenant and none is recorded";
