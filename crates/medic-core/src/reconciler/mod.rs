//! The reconciler: a scheduled tick (parsed in [`event`]) that sweeps for what events missed
//! ([`sweep`]) and checks that every acting remediation healed ([`converge`]), escalating once
//! when one did not. Each finding goes through the decision of the event it stands for, so the
//! reconciler uses the other functions' rules and none of them uses its.

pub mod converge;
pub mod event;
pub mod sweep;

pub use converge::*;
pub use event::*;
pub use sweep::*;
