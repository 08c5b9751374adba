//! Services: the sampler, clones (checking the pool's warm clones), decide (feeding the policy engine), isolate (hot tenants), resize (vertical scaling advice), execute (performing operation
//! steps) and provision (requests to an external provisioner, webhooks). They use the stores and
//! infrastructure, and the pure logic of `autoscale_core`.

pub mod capacity;
pub mod clones;
pub mod dead;
pub mod decide;
pub mod execute;
pub mod isolate;
pub mod provision;
pub mod resize;
pub mod sampler;
