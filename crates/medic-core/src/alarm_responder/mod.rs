//! The alarm responder: CloudWatch alarm state changes (parsed in [`event`]) and the remediation
//! each asks for (decided in [`decide`]).

pub mod decide;
pub mod event;

pub use decide::*;
pub use event::*;
