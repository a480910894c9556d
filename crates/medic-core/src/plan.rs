//! What medic decided: actions with a reason each, an alert for a human, or a skip with its reason.

use serde::{Deserialize, Serialize};

use crate::states::{AlarmState, Ec2State};
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// `SetInstanceHealth(Unhealthy, ShouldRespectGracePeriod=true)`: Auto Scaling replaces it.
    ReplaceInstance { group: String, instance_id: String },
    /// `StartInstances` on a standalone instance that EC2 stopped, or that medic stopped itself to
    /// recover it (`completes_recovery`: the second half of that one remediation).
    StartInstance { instance_id: String, completes_recovery: bool },
    /// `SetDesiredCapacity` to an absolute value (idempotent), inside [min, max].
    ScaleGroup { group: String, from: i32, to: i32 },
    /// `RebootInstances`: a standalone instance failed its instance status check.
    RebootInstance { instance_id: String },
    /// `StopInstances` on a standalone instance whose host failed; the instance healer starts it
    /// again (on new hardware) when EC2 reports it stopped.
    StopForRecovery { instance_id: String },
    /// `rds:PromoteReadReplica`: `primary` is lost, `replica` becomes a standalone writer that
    /// keeps automated backups for as many days as the primary did (at least 1).
    PromoteReplica { primary: String, replica: String, backup_retention_days: i32 },
    /// Route 53 UPSERT of the writer CNAME to the promoted replica's endpoint. Runs only if the
    /// promotion before it was accepted.
    PointWriterRecord {
        primary: String,
        zone_id: String,
        record_name: String,
        endpoint: String,
        ttl: i64,
        health_check_id: Option<String>,
    },
    /// Route 53 UPSERT of one weighted reader CNAME (SetIdentifier = the replica id) to `weight`.
    SetReaderWeight { reader: ReaderRecord, from: i64, to: i64 },
    /// `rds:RebootDBInstance` of a replica whose replication broke; runs only once it is out of
    /// the reader set.
    RebootReplica { primary: String, replica: String },
    /// `rds:FailoverDBCluster` to `target`: the one retry after Aurora's own failover failed.
    FailoverCluster { cluster: String, target: String },
}

/// One weighted reader record in Route 53 and the replica behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ReaderRecord {
    /// The replica's source (primary) DB instance: what the breaker counts against.
    pub primary: String,
    pub replica: String,
    pub zone_id: String,
    pub record_name: String,
    /// The record's CNAME value (the replica's endpoint) and TTL, kept as they are.
    pub endpoint: String,
    pub ttl: i64,
    /// Kept on the UPSERT, which replaces the whole record.
    pub health_check_id: Option<String>,
}

/// The names (as [`Action::name`] gives them, and outcomes record them) of the actions that do
/// something again when called again: reboot, stop for recovery, promote, reboot a replica, fail
/// over.
pub const NOT_IDEMPOTENT: [&str; 5] = ["reboot", "recover", "promote", "reboot-replica", "failover"];

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
            Self::PromoteReplica { .. } => "promote",
            Self::PointWriterRecord { .. } => "reroute-writer",
            Self::SetReaderWeight { to: 0, .. } => "reader-out",
            Self::SetReaderWeight { .. } => "reader-in",
            Self::RebootReplica { .. } => "reboot-replica",
            Self::FailoverCluster { .. } => "failover",
        }
    }

    /// Severity of the notice once the action is done: a promotion can lose writes, so it pages.
    pub fn done_severity(&self) -> Severity {
        match self {
            Self::PromoteReplica { .. } | Self::PointWriterRecord { .. } => Severity::Critical,
            Self::SetReaderWeight { to, .. } if *to > 0 => Severity::Info,
            _ => Severity::Warning,
        }
    }

    /// True when calling it again after it succeeded changes nothing more: a retry that cannot
    /// tell whether an interrupted attempt made the call simply makes it again. A reboot, a stop,
    /// a promotion or a failover is never repeated blindly.
    pub fn is_idempotent(&self) -> bool {
        !NOT_IDEMPOTENT.contains(&self.name())
    }

    /// True for the start that completes medic's own stop for recovery: the breaker counted the
    /// remediation with the stop.
    pub fn completes_recovery(&self) -> bool {
        matches!(self, Self::StartInstance { completes_recovery: true, .. })
    }

    /// True when the action only makes sense after the one before it in the plan happened
    /// (reroute after the promotion, reboot after the replica left the reader set).
    pub fn needs_previous(&self) -> bool {
        matches!(self, Self::PointWriterRecord { .. } | Self::RebootReplica { .. })
    }

    pub fn resource(&self) -> &str {
        match self {
            Self::ReplaceInstance { instance_id, .. }
            | Self::StartInstance { instance_id, .. }
            | Self::RebootInstance { instance_id }
            | Self::StopForRecovery { instance_id } => instance_id,
            Self::ScaleGroup { group, .. } => group,
            Self::PromoteReplica { primary, .. } => primary,
            Self::PointWriterRecord { record_name, .. } => record_name,
            Self::SetReaderWeight { reader, .. } => &reader.replica,
            Self::RebootReplica { replica, .. } => replica,
            Self::FailoverCluster { cluster, .. } => cluster,
        }
    }

    /// What the circuit breaker counts this action against.
    pub fn breaker_scope(&self) -> String {
        match self {
            Self::ReplaceInstance { group, .. } | Self::ScaleGroup { group, .. } => format!("asg/{group}"),
            Self::StartInstance { .. } | Self::RebootInstance { .. } | Self::StopForRecovery { .. } => {
                STANDALONE_SCOPE.to_owned()
            }
            Self::PromoteReplica { primary, .. } | Self::PointWriterRecord { primary, .. } => format!("rds/{primary}"),
            // Reader housekeeping has its own scope: it must never use up a promotion's slots.
            Self::SetReaderWeight { reader: ReaderRecord { primary, .. }, .. }
            | Self::RebootReplica { primary, .. } => {
                format!("rds-readers/{primary}")
            }
            Self::FailoverCluster { cluster, .. } => format!("rds-cluster/{cluster}"),
        }
    }

    /// The human label of the scope, used in notice subjects (`asg web-prod`).
    pub fn scope_label(&self) -> String {
        match self {
            Self::ReplaceInstance { group, .. } | Self::ScaleGroup { group, .. } => format!("asg {group}"),
            Self::StartInstance { instance_id, .. }
            | Self::RebootInstance { instance_id }
            | Self::StopForRecovery { instance_id } => format!("ec2 {instance_id}"),
            Self::PromoteReplica { primary, .. }
            | Self::PointWriterRecord { primary, .. }
            | Self::SetReaderWeight { reader: ReaderRecord { primary, .. }, .. }
            | Self::RebootReplica { primary, .. } => format!("rds {primary}"),
            Self::FailoverCluster { cluster, .. } => format!("rds-cluster {cluster}"),
        }
    }

    /// Past tense when done, conditional when dry-run.
    pub fn describe(&self, done: bool) -> String {
        let (did, would) = match self {
            Self::ReplaceInstance { instance_id, .. } => {
                (format!("replaced {instance_id}"), format!("would replace {instance_id}"))
            }
            Self::StartInstance { instance_id, .. } => {
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
            Self::PromoteReplica { replica, .. } => {
                (format!("promoted {replica} to writer"), format!("would promote {replica} to writer"))
            }
            Self::PointWriterRecord { record_name, endpoint, .. } => {
                (format!("pointed {record_name} at {endpoint}"), format!("would point {record_name} at {endpoint}"))
            }
            Self::SetReaderWeight { reader, to: 0, .. } => (
                format!("took {} out of the reader set", reader.replica),
                format!("would take {} out of the reader set", reader.replica),
            ),
            Self::SetReaderWeight { reader, to, .. } => (
                format!("put {} back in the reader set (weight {to})", reader.replica),
                format!("would put {} back in the reader set (weight {to})", reader.replica),
            ),
            Self::RebootReplica { replica, .. } => {
                (format!("rebooted replica {replica}"), format!("would reboot replica {replica}"))
            }
            Self::FailoverCluster { target, .. } => {
                (format!("failed over to {target}"), format!("would fail over to {target}"))
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
            Self::StartInstance { instance_id, .. } => format!("ec2:StartInstances({instance_id})"),
            Self::ScaleGroup { group, to, .. } => format!("autoscaling:SetDesiredCapacity({group}, {to})"),
            Self::RebootInstance { instance_id } => format!("ec2:RebootInstances({instance_id})"),
            Self::StopForRecovery { instance_id } => format!(
                "ec2:StopInstances({instance_id}); the instance healer starts it on new hardware once it is stopped"
            ),
            Self::PromoteReplica { replica, backup_retention_days, .. } => {
                format!("rds:PromoteReadReplica({replica}, BackupRetentionPeriod={backup_retention_days})")
            }
            Self::PointWriterRecord { zone_id, record_name, endpoint, ttl, .. } => {
                format!("route53:ChangeResourceRecordSets({zone_id}, UPSERT {record_name} CNAME {endpoint} TTL {ttl})")
            }
            Self::SetReaderWeight { reader, to, .. } => format!(
                "route53:ChangeResourceRecordSets({}, UPSERT {} CNAME {} SetIdentifier={} Weight={to})",
                reader.zone_id, reader.record_name, reader.endpoint, reader.replica
            ),
            Self::RebootReplica { replica, .. } => format!("rds:RebootDBInstance({replica})"),
            Self::FailoverCluster { cluster, target } => {
                format!("rds:FailoverDBCluster({cluster}, TargetDBInstanceIdentifier={target})")
            }
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
    AlarmNoLongerFiring { state: AlarmState, changed_at_millis: i64 },
    AlarmReevaluated { changed_at_millis: i64 },
    AlarmGone,
    AlarmOutsidePrefix { prefix: String },
    AtMinCapacity { group: String, min: i32 },
    GroupCooldown { group: String, remaining_seconds: i64 },
    NotRunning { state: String },
    TargetNotFound { what: String },
    NoEligibleTargets { target_group: String, why: String },
    UnknownDbEvent { event_id: String },
    AlreadyPromoted { primary: String, until: EpochSeconds },
    NotInReaderSet { replica: String, record_name: String },
    ReaderAlreadyOut { replica: String },
    ReaderAlreadyIn { replica: String, weight: i64 },
    ReplicaNotAvailable { replica: String, status: String },
    LaunchFailuresEscalated { group: String, count: usize },
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
            Self::AlarmNoLongerFiring { .. } => "alarm-no-longer-firing",
            Self::AlarmReevaluated { .. } => "alarm-re-evaluated",
            Self::AlarmGone => "alarm-gone",
            Self::AlarmOutsidePrefix { .. } => "alarm-outside-prefix",
            Self::AtMinCapacity { .. } => "at-min-capacity",
            Self::GroupCooldown { .. } => "group-cooldown",
            Self::NotRunning { .. } => "not-running",
            Self::TargetNotFound { .. } => "target-not-found",
            Self::NoEligibleTargets { .. } => "no-eligible-targets",
            Self::UnknownDbEvent { .. } => "unknown-db-event",
            Self::AlreadyPromoted { .. } => "already-promoted",
            Self::NotInReaderSet { .. } => "not-in-reader-set",
            Self::ReaderAlreadyOut { .. } => "reader-already-out",
            Self::ReaderAlreadyIn { .. } => "reader-already-in",
            Self::ReplicaNotAvailable { .. } => "replica-not-available",
            Self::LaunchFailuresEscalated { .. } => "launch-failures-escalated",
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
            Self::AlarmNoLongerFiring { state, changed_at_millis } => write!(
                f,
                "the alarm is {state} now (since {}): no longer firing, nothing to fix",
                format_timestamp(changed_at_millis.div_euclid(1000))
            ),
            Self::AlarmReevaluated { changed_at_millis } => write!(
                f,
                "the alarm changed state again at {}, after this event's transition: the newer event decides",
                format_timestamp(changed_at_millis.div_euclid(1000))
            ),
            Self::AlarmGone => write!(f, "the alarm no longer exists"),
            Self::AlarmOutsidePrefix { prefix } => {
                write!(f, "the alarm's name does not start with {prefix:?}: not one of this deployment's alarms")
            }
            Self::AtMinCapacity { group, min } => write!(f, "{group} is already at its minimum capacity ({min})"),
            Self::GroupCooldown { group, remaining_seconds } => {
                write!(f, "{group} is inside its own scaling cooldown ({remaining_seconds} s left)")
            }
            Self::NotRunning { state } => write!(f, "instance is {state}, not running; the instance healer handles that"),
            Self::TargetNotFound { what } => write!(f, "{what} was not found"),
            Self::NoEligibleTargets { target_group, why } => {
                write!(f, "no unhealthy target of {target_group} can be replaced: {why}")
            }
            Self::UnknownDbEvent { event_id } => {
                write!(f, "{event_id} is not an RDS event medic handles; ignored")
            }
            Self::AlreadyPromoted { primary, until } => write!(
                f,
                "medic already promoted a replica of {primary}; at most one promotion per primary per 24 h (next allowed {})",
                format_timestamp(*until)
            ),
            Self::NotInReaderSet { replica, record_name } => {
                write!(f, "{replica} has no weighted record (SetIdentifier {replica}) in {record_name}")
            }
            Self::ReaderAlreadyOut { replica } => {
                write!(f, "{replica} is already out of the reader set (weight 0) and needs nothing more")
            }
            Self::ReaderAlreadyIn { replica, weight } => {
                write!(f, "{replica} is already in the reader set (weight {weight})")
            }
            Self::LaunchFailuresEscalated { group, count } => write!(
                f,
                "{count} launch failures of {group} within 15 minutes: a critical notice about it went out less than 15 minutes ago"
            ),
            Self::ReplicaNotAvailable { replica, status } => {
                write!(f, "{replica} is {status}, not available; medic puts it back once RDS reports it resumed and available")
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
    /// The action a safety rule held back, when that is what the alert is about: the first
    /// such alert per scope and window is sent, the others are named in one digest.
    pub held_back: Option<Box<Action>>,
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

/// A plan that only tells a human: `scope_label: headline` in the subject, then why and what to
/// check.
pub(crate) fn alert(
    resource: &str,
    severity: Severity,
    scope_label: String,
    headline: String,
    reason: String,
    advice: impl Into<String>,
) -> Plan {
    Plan {
        resource: resource.to_owned(),
        decision: Decision::Alert(Alert {
            severity,
            headline,
            reason,
            advice: advice.into(),
            scope_label,
            held_back: None,
        }),
    }
}
