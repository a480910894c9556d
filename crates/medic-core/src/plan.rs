//! What medic decided: actions with a reason each, an alert for a human, or a skip with its reason.

use serde::{Deserialize, Serialize};

use crate::alarm::AlarmState;
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
    /// `SetDesiredCapacity` to an absolute value (idempotent), inside [min, max].
    ScaleGroup { group: String, from: i32, to: i32 },
    /// `RebootInstances`: a standalone instance failed its instance status check.
    RebootInstance { instance_id: String },
    /// `StopInstances` on a standalone instance whose host failed; the instance healer starts it
    /// again (on new hardware) when EC2 reports it stopped.
    StopForRecovery { instance_id: String },
}

/// Blast-radius scope for standalone instances, which have no group to count against.
pub const STANDALONE_SCOPE: &str = "account/standalone-instances";

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReplaceInstance { .. } => "replace",
            Self::StartInstance { .. } => "start",
            Self::ScaleGroup { from, to, .. } if to < from => "scale-in",
            Self::ScaleGroup { .. } => "scale-out",
            Self::RebootInstance { .. } => "reboot",
            Self::StopForRecovery { .. } => "recover",
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            Self::ReplaceInstance { instance_id, .. }
            | Self::StartInstance { instance_id }
            | Self::RebootInstance { instance_id }
            | Self::StopForRecovery { instance_id } => instance_id,
            Self::ScaleGroup { group, .. } => group,
        }
    }

    /// What the circuit breaker counts this action against.
    pub fn breaker_scope(&self) -> String {
        match self {
            Self::ReplaceInstance { group, .. } | Self::ScaleGroup { group, .. } => format!("asg/{group}"),
            Self::StartInstance { .. } | Self::RebootInstance { .. } | Self::StopForRecovery { .. } => {
                STANDALONE_SCOPE.to_owned()
            }
        }
    }

    /// The human label of the scope, used in notice subjects (`asg web-prod`).
    pub fn scope_label(&self) -> String {
        match self {
            Self::ReplaceInstance { group, .. } | Self::ScaleGroup { group, .. } => format!("asg {group}"),
            Self::StartInstance { instance_id }
            | Self::RebootInstance { instance_id }
            | Self::StopForRecovery { instance_id } => format!("ec2 {instance_id}"),
        }
    }

    /// Past tense when done, conditional when dry-run.
    pub fn describe(&self, done: bool) -> String {
        let (did, would) = match self {
            Self::ReplaceInstance { instance_id, .. } => {
                (format!("replaced {instance_id}"), format!("would replace {instance_id}"))
            }
            Self::StartInstance { instance_id } => {
                (format!("started {instance_id}"), format!("would start {instance_id}"))
            }
            Self::ScaleGroup { from, to, .. } => {
                let direction = if to < from { "in" } else { "out" };
                (format!("scaled {direction} {from} -> {to}"), format!("would scale {direction} {from} -> {to}"))
            }
            Self::RebootInstance { instance_id } => {
                (format!("rebooted {instance_id}"), format!("would reboot {instance_id}"))
            }
            Self::StopForRecovery { instance_id } => {
                (format!("stopped {instance_id} to recover it"), format!("would stop {instance_id} to recover it"))
            }
        };
        if done {
            did
        } else {
            would
        }
    }

    /// The exact call, for the notice body.
    pub fn api_call(&self) -> String {
        match self {
            Self::ReplaceInstance { group, instance_id } => format!(
                "autoscaling:SetInstanceHealth({instance_id}, Unhealthy, ShouldRespectGracePeriod=true) in {group}"
            ),
            Self::StartInstance { instance_id } => format!("ec2:StartInstances({instance_id})"),
            Self::ScaleGroup { group, to, .. } => format!("autoscaling:SetDesiredCapacity({group}, {to})"),
            Self::RebootInstance { instance_id } => format!("ec2:RebootInstances({instance_id})"),
            Self::StopForRecovery { instance_id } => format!(
                "ec2:StopInstances({instance_id}); the instance healer starts it on new hardware once it is stopped"
            ),
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
    AlarmNotFiring { state: AlarmState },
    AtMinCapacity { group: String, min: i32 },
    GroupCooldown { group: String, remaining_seconds: i64 },
    NotRunning { state: String },
    TargetNotFound { what: String },
    NoEligibleTargets { target_group: String, why: String },
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
            Self::AlarmNotFiring { .. } => "alarm-not-firing",
            Self::AtMinCapacity { .. } => "at-min-capacity",
            Self::GroupCooldown { .. } => "group-cooldown",
            Self::NotRunning { .. } => "not-running",
            Self::TargetNotFound { .. } => "target-not-found",
            Self::NoEligibleTargets { .. } => "no-eligible-targets",
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
            Self::AlarmNotFiring { state } => write!(f, "alarm is {state}, not ALARM: nothing to fix"),
            Self::AtMinCapacity { group, min } => write!(f, "{group} is already at its minimum capacity ({min})"),
            Self::GroupCooldown { group, remaining_seconds } => {
                write!(f, "{group} is inside its own scaling cooldown ({remaining_seconds} s left)")
            }
            Self::NotRunning { state } => write!(f, "instance is {state}, not running; the instance healer handles that"),
            Self::TargetNotFound { what } => write!(f, "{what} was not found"),
            Self::NoEligibleTargets { target_group, why } => {
                write!(f, "no unhealthy target of {target_group} can be replaced: {why}")
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
