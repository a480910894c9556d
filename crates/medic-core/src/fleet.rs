//! EC2 and Auto Scaling facts shared by every function that heals instances (instance healer,
//! alarm responder, reconciler), and the one set of rules for replacing a group member.

use serde::Serialize;

use crate::plan::{Action, Alert, Decision, Plan, PlannedAction, Severity, SkipReason};
use crate::policy::Policy;
use crate::scope::{out_of_scope, Tags};
use crate::time::EpochSeconds;

/// Auto Scaling processes without which marking an instance Unhealthy replaces nothing.
pub const REPLACEMENT_PROCESSES: [&str; 3] = ["ReplaceUnhealthy", "Launch", "Terminate"];

/// The tag Auto Scaling puts on every instance it launches.
pub const GROUP_NAME_TAG: &str = "aws:autoscaling:groupName";

/// What EC2 says about the instance now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct InstanceFacts {
    pub state: String,
    pub tags: Tags,
    pub launched_at: Option<EpochSeconds>,
    /// Why EC2 says the instance stopped (`StateReason.Code`): `Server.*` when EC2 stopped it,
    /// `Client.UserInitiatedShutdown` for a StopInstances call, `Client.InstanceInitiatedShutdown`
    /// for a shutdown from inside the OS.
    pub state_reason: Option<String>,
    /// EC2's simplified automatic recovery is on (`MaintenanceOptions.AutoRecovery=default`) for
    /// an EBS-backed on-demand instance: EC2 recovers it in place after a system check failure.
    pub auto_recovery: bool,
}

/// What Auto Scaling says about the instance and its group now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GroupMember {
    pub group: String,
    pub lifecycle_state: String,
    pub health_status: String,
    pub health_check_grace_period_seconds: i64,
    pub suspended_processes: Vec<String>,
    pub group_tags: Tags,
    /// The group's desired capacity, and how many of its other instances are out of service
    /// now (Unhealthy, or in any lifecycle state but InService).
    pub desired_capacity: i32,
    pub out_of_service: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct InstanceObservation {
    pub instance: Option<InstanceFacts>,
    pub member: Option<GroupMember>,
    /// The ledger holds medic's own stop of this instance for recovery (a failed host).
    pub stopped_by_medic: bool,
}

/// The rules for replacing an Auto Scaling member through Auto Scaling, shared by every function
/// that replaces instances: scope, lifecycle state, health, grace period, suspended processes.
/// `why` says what is wrong with the instance ("stopped unexpectedly").
pub fn replace_member(
    id: &str,
    member: &GroupMember,
    instance: Option<&InstanceFacts>,
    why: &str,
    policy: &Policy,
    now: EpochSeconds,
) -> Plan {
    let skip = |reason| Plan::skip(id, reason);
    let instance_tags: &[(String, String)] = instance.map_or(&[], |facts| &facts.tags);
    if let Some(scope) = out_of_scope(policy.scope, &[instance_tags, &member.group_tags]) {
        return skip(SkipReason::OutOfScope { why: scope });
    }
    if member.lifecycle_state != "InService" {
        return skip(SkipReason::LifecycleState {
            group: member.group.clone(),
            lifecycle_state: member.lifecycle_state.clone(),
        });
    }
    if member.health_status.eq_ignore_ascii_case("Unhealthy") {
        return skip(SkipReason::AlreadyUnhealthy { group: member.group.clone() });
    }
    if let Some(launched_at) = instance.and_then(|facts| facts.launched_at) {
        let remaining_seconds = launched_at + member.health_check_grace_period_seconds - now;
        if remaining_seconds > 0 {
            return skip(SkipReason::InGracePeriod { group: member.group.clone(), remaining_seconds });
        }
    }
    let out = i64::from(member.out_of_service) + 1;
    // At least one may always be out, or a group of one or two could never heal.
    let allowed = (policy.max_unhealthy_percent * i64::from(member.desired_capacity) / 100).max(1);
    if out > allowed {
        let max = policy.max_unhealthy_percent;
        return Plan {
            resource: id.to_owned(),
            decision: Decision::Alert(Alert {
                severity: Severity::Critical,
                headline: format!("{out} of {} out of service, over {max} %: left {id} alone", member.desired_capacity),
                reason: format!(
                    "instance {id} {why}, but replacing it would put {out} of {}'s {} desired instances out of service at once, over MEDIC_MAX_UNHEALTHY_PERCENT ({max} %): likely an AZ or deployment problem, which replacing instances one by one would make worse",
                    member.group, member.desired_capacity
                ),
                advice: format!(
                    "Look at {} as a whole: an Availability Zone event (AWS Health), a bad launch template or AMI, a failing dependency. Replace instances by hand once the cause is known.",
                    member.group
                ),
                scope_label: format!("asg {}", member.group),
                held_back: Some(Box::new(Action::ReplaceInstance { group: member.group.clone(), instance_id: id.to_owned() })),
            }),
        };
    }
    let suspended: Vec<&str> = member
        .suspended_processes
        .iter()
        .map(String::as_str)
        .filter(|process| REPLACEMENT_PROCESSES.contains(process))
        .collect();
    if !suspended.is_empty() {
        let suspended = suspended.join(", ");
        return Plan {
            resource: id.to_owned(),
            decision: Decision::Alert(Alert {
                severity: Severity::Warning,
                headline: format!("cannot replace {id}: {suspended} suspended"),
                reason: format!(
                    "instance {id} {why}, but Auto Scaling processes {suspended} are suspended in {}, so marking it Unhealthy would not replace it",
                    member.group
                ),
                advice: format!(
                    "Resume the processes (aws autoscaling resume-processes --auto-scaling-group-name {}) or replace {id} by hand; check why they were suspended (deploy in progress?).",
                    member.group
                ),
                scope_label: format!("asg {}", member.group),
                held_back: None,
            }),
        };
    }
    Plan {
        resource: id.to_owned(),
        decision: Decision::Act {
            actions: vec![PlannedAction {
                action: Action::ReplaceInstance { group: member.group.clone(), instance_id: id.to_owned() },
                reason: why.to_owned(),
            }],
        },
    }
}

/// One instance of a group as Auto Scaling lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GroupInstance {
    pub id: String,
    pub lifecycle_state: String,
    pub health_status: String,
}

impl GroupInstance {
    /// Serving: InService and not marked Unhealthy.
    pub fn serving(&self) -> bool {
        self.lifecycle_state == "InService" && !self.health_status.eq_ignore_ascii_case("Unhealthy")
    }
}

/// An Auto Scaling group as a whole: what the reconciler sweeps and checks convergence against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GroupHealth {
    pub name: String,
    pub desired: i32,
    pub grace_seconds: i64,
    pub tags: Tags,
    pub instances: Vec<GroupInstance>,
}

impl GroupHealth {
    /// How many members serve now.
    pub fn in_service(&self) -> i32 {
        i32::try_from(self.instances.iter().filter(|i| i.serving()).count()).unwrap_or(i32::MAX)
    }
}
