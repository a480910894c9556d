//! The RDS rerouter: RDS instance and cluster events (parsed in [`event`]) and what to do about a
//! lost primary, a broken replica or a failed Aurora failover (decided in [`decide`]).

pub mod decide;
pub mod event;

pub use decide::*;
pub use event::*;
