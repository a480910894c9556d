//! medic's pure domain: what happened (`Trigger`), what is true now (`Observation`), what we are
//! allowed to do (`Policy`), and what we will do about it (`Plan`). Nothing here performs I/O or
//! reads a clock: every function takes the current time as an argument.
//!
//! One module per function, named as under `functions/`, holds that function's event types and
//! its `decide`: [`instance_healer`], [`alarm_responder`], [`rds_rerouter`], [`notifier`], [`reconciler`]. Beside
//! them, the shared vocabulary: [`accounts`] (central mode's accounts and regions), [`trigger`] (any event, for the engine), [`envelope`], [`plan`],
//! [`guard`], [`notice`], [`policy`], [`scope`], [`fleet`] (EC2 and Auto Scaling facts),
//! [`states`], [`watch`], [`ids`], [`outcome`], [`time`]. Function modules use the shared ones,
//! never each other, except the reconciler, which decides each finding by the rules of the
//! function whose event it stands for.

pub mod accounts;
pub mod alarm_responder;
pub mod envelope;
pub mod fleet;
pub mod guard;
pub mod ids;
pub mod instance_healer;
pub mod notice;
pub mod notifier;
pub mod outcome;
pub mod plan;
pub mod policy;
pub mod rds_rerouter;
pub mod reconciler;
pub mod scope;
pub mod states;
pub mod time;
pub mod trigger;
pub mod watch;

pub use envelope::MalformedEvent;
pub use outcome::{Outcome, Status};
pub use plan::{Action, Alert, Decision, Plan, PlannedAction, Severity, SkipReason};
pub use policy::{ConfigError, Policy, Scope};
pub use trigger::{parse_event, Trigger};
