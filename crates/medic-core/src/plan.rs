//! What medic decided: actions with a reason each, an alert for a human, or a skip with its reason.

use serde::{Deserialize, Serialize};

use crate::event::Ec2State;
use crate::time::{format_timestamp, EpochSeconds};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// A mutating remediation. Only `act` (in medic-aws) turns one into an AWS call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// `SetInstanceHealth(Unhealthy, ShouldRespectGracePeriod=true)`: Auto Scaling replaces it.
    ReplaceInstance { group: String, instance_id: String },
    /// `StartInstances` on a standalone instance that stopped.
    StartInstance { instance_id: String },
}

/// Blast-radius scope for standalone instances, which have no group to count against.
pub const STANDALONE_SCOPE: &str = "account/standalone-instances";

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReplaceInstance { .. } => "replace",
            Self::StartInstance { .. } => "start",
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            Self::ReplaceInstance { instance_id, .. } | Self::StartInstance { instance_id } => instance_id,
        }
    }

    /// What the circuit breaker counts this action against.
    pub fn breaker_scope(&self) -> String {
        match self {
            Self::ReplaceInstance { group, .. } => format!("asg/{group}"),
            Self::StartInstance { .. } => STANDALONE_SCOPE.to_owned(),
        }
    }

    /// The human label of the scope, used in notice subjects (`asg web-prod`).
    pub fn scope_label(&self) -> String {
        match self {
            Self::ReplaceInstance { group, .. } => format!("asg {group}"),
            Self::StartInstance { instance_id } => format!("ec2 {instance_id}"),
        }
    }

    /// Past tense when done, conditional when dry-run.
    pub fn describe(&self, done: bool) -> String {
        match (self, done) {
            (Self::ReplaceInstance { instance_id, .. }, true) => format!("replaced {instance_id}"),
            (Self::ReplaceInstance { instance_id, .. }, false) => format!("would replace {instance_id}"),
            (Self::StartInstance { instance_id }, true) => format!("started {instance_id}"),
            (Self::StartInstance { instance_id }, false) => format!("would start {instance_id}"),
        }
    }

    /// The exact call, for the notice body.
    pub fn api_call(&self) -> String {
        match self {
            Self::ReplaceInstance { group, instance_id } => format!(
                "autoscaling:SetInstanceHealth({instance_id}, Unhealthy, ShouldRespectGracePeriod=true) in {group}"
            ),
            Self::StartInstance { instance_id } => format!("ec2:StartInstances({instance_id})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    pub action: Action,
    pub reason: String,
}

/// Why medic did nothing. `Display` is the sentence that goes into logs and responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SkipReason {
    StateNeedsNoHealing { state: Ec2State },
    OutOfScope { why: String },
    InstanceNotFound,
    LeftGroup { group: String },
    Recovered { state: String },
    LifecycleState { group: String, lifecycle_state: String },
    AlreadyUnhealthy { group: String },
    InGracePeriod { group: String, remaining_seconds: i64 },
    Transitional { state: Ec2State },
    Duplicate { first_outcome: String },
    DuplicateInProgress,
    Cooldown { until: EpochSeconds },
}

impl SkipReason {
    /// A short stable label for metrics and message attributes.
    pub fn label(&self) -> &'static str {
        match self {
            Self::StateNeedsNoHealing { .. } => "state-needs-no-healing",
            Self::OutOfScope { .. } => "out-of-scope",
            Self::InstanceNotFound => "instance-not-found",
            Self::LeftGroup { .. } => "left-group",
            Self::Recovered { .. } => "recovered",
            Self::LifecycleState { .. } => "lifecycle-state",
            Self::AlreadyUnhealthy { .. } => "already-unhealthy",
            Self::InGracePeriod { .. } => "grace-period",
            Self::Transitional { .. } => "transitional-state",
            Self::Duplicate { .. } => "duplicate",
            Self::DuplicateInProgress => "duplicate-in-progress",
            Self::Cooldown { .. } => "cooldown",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StateNeedsNoHealing { state } => write!(f, "state {state} needs no healing"),
            Self::OutOfScope { why } => write!(f, "not in scope: {why}"),
            Self::InstanceNotFound => write!(f, "instance not found in EC2 or Auto Scaling"),
            Self::LeftGroup { group } => write!(
                f,
                "instance is no longer in Auto Scaling group {group}; Auto Scaling owns its fate, not medic"
            ),
            Self::Recovered { state } => write!(f, "instance is {state} again; nothing to heal"),
            Self::LifecycleState { group, lifecycle_state } => write!(
                f,
                "Auto Scaling lifecycle state is {lifecycle_state} in {group}: Auto Scaling or an operator is handling it"
            ),
            Self::AlreadyUnhealthy { group } => {
                write!(f, "already marked Unhealthy in {group}; Auto Scaling is replacing it")
            }
            Self::InGracePeriod { group, remaining_seconds } => write!(
                f,
                "inside the health-check grace period of {group} ({remaining_seconds} s left)"
            ),
            Self::Transitional { state } => {
                write!(f, "standalone instance is {state}; medic acts on the state that follows")
            }
            Self::Duplicate { first_outcome } => {
                write!(f, "duplicate event, already handled: {first_outcome}")
            }
            Self::DuplicateInProgress => write!(f, "duplicate event, another invocation is handling it"),
            Self::Cooldown { until } => {
                write!(f, "in cooldown until {}", format_timestamp(*until))
            }
        }
    }
}

/// A situation a human must handle; medic changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub severity: Severity,
    /// Short, for the subject: "cannot replace i-0abc: ReplaceUnhealthy suspended".
    pub headline: String,
    pub reason: String,
    /// What a human should check next.
    pub advice: String,
    pub scope_label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    Act { actions: Vec<PlannedAction> },
    Alert(Alert),
    Skip { reason: SkipReason },
}

/// The decision about one trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub resource: String,
    pub decision: Decision,
}

impl Plan {
    pub fn skip(resource: &str, reason: SkipReason) -> Self {
        Self { resource: resource.to_owned(), decision: Decision::Skip { reason } }
    }
}
