//! What medic ended up doing about one event: the handler's response, the ledger's record of the
//! first outcome, and the source of the notice and the decision log line.

use serde::{Deserialize, Serialize};

use crate::plan::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The mutating call was made and accepted.
    Acted,
    /// Dry-run: everything but the mutating call.
    WouldAct,
    /// Nothing to do, with a reason.
    Skipped,
    /// A human must act; medic changed nothing.
    Alerted,
    /// The circuit breaker is open: medic refuses to act until its window ends.
    Blocked,
    /// Already handled: the first outcome stands.
    Duplicate,
    /// The call was refused in a way retrying will not fix.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acted => "acted",
            Self::WouldAct => "would-act",
            Self::Skipped => "skipped",
            Self::Alerted => "alerted",
            Self::Blocked => "blocked",
            Self::Duplicate => "duplicate",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The idempotency key of the event.
    pub event: String,
    pub resource: String,
    pub status: Status,
    /// The remediation's name (`replace`, `start`), when one was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A stable label for skips and blocks (`grace-period`, `cooldown`, `breaker-open`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The sentence a human reads: what was done or why not.
    pub reason: String,
    /// The account and region of the event's resources (none for the reconciler's sweeps of its
    /// own account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    pub dry_run: bool,
    /// Subject of the SNS notice sent for this outcome, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}
