//! medic's pure domain: what happened (`Trigger`), what is true now (`Observation`), what we are
//! allowed to do (`Policy`), and what we will do about it (`Plan`). Nothing here performs I/O or
//! reads a clock: every function takes the current time as an argument.

pub mod alarm;
pub mod event;
pub mod guard;
pub mod ids;
pub mod instance;
pub mod notice;
pub mod notifier;
pub mod outcome;
pub mod plan;
pub mod policy;
pub mod rds;
pub mod rerouter;
pub mod responder;
pub mod scope;
pub mod time;

pub use event::{parse_event, MalformedEvent, Trigger};
pub use outcome::{Outcome, Status};
pub use plan::{Action, Alert, Decision, Plan, PlannedAction, Severity, SkipReason};
pub use policy::{ConfigError, Policy, Scope};
