//! The instance healer: an EC2 instance went down (its state-change event, parsed here); replace
//! it, start it, alert, or skip.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::{eventbridge, MalformedEvent};
use crate::fleet::{replace_member, InstanceFacts, InstanceObservation, GROUP_NAME_TAG};
use crate::plan::{alert, Action, Alert, Decision, Plan, PlannedAction, Severity, SkipReason};
use crate::policy::Policy;
use crate::scope::{out_of_scope, tag_value};
use crate::states::Ec2State;
use crate::time::EpochSeconds;

pub const EC2_STATE_CHANGE: &str = "EC2 Instance State-change Notification";

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Ec2StateChangeDetail {
    #[serde(rename = "instance-id")]
    instance_id: String,
    state: Ec2State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStateChanged {
    pub event_id: String,
    pub instance_id: String,
    pub state: Ec2State,
    pub occurred_at: EpochSeconds,
    pub account: String,
    pub region: String,
}

/// Parses an EventBridge "EC2 Instance State-change Notification".
pub fn parse_state_change(raw: &Value) -> Result<InstanceStateChanged, MalformedEvent> {
    let delivered = eventbridge::<Ec2StateChangeDetail>(raw, EC2_STATE_CHANGE)?;
    let (account, region) = (delivered.account(), delivered.region());
    let detail = delivered.event.detail;
    crate::ids::instance_id("detail.instance-id", &detail.instance_id)?;
    Ok(InstanceStateChanged {
        event_id: delivered.id,
        instance_id: detail.instance_id,
        state: detail.state,
        occurred_at: delivered.at,
        account,
        region,
    })
}

/// Why the event needs no AWS call at all (pending, running), or `None` when it needs a look.
pub fn skip_without_observation(change: &InstanceStateChanged) -> Option<SkipReason> {
    (!change.state.is_down()).then_some(SkipReason::StateNeedsNoHealing { state: change.state })
}

pub fn decide(
    change: &InstanceStateChanged,
    observed: &InstanceObservation,
    policy: &Policy,
    now: EpochSeconds,
) -> Plan {
    if let Some(reason) = skip_without_observation(change) {
        return Plan::skip(&change.instance_id, reason);
    }
    let id = change.instance_id.as_str();
    let skip = |reason| Plan::skip(id, reason);

    if let Some(member) = &observed.member {
        if let Some(state) = recovered_state(observed) {
            return skip(SkipReason::Recovered { state });
        }
        let why = format!("{} unexpectedly", went(change.state));
        return replace_member(id, member, observed.instance.as_ref(), &why, policy, now);
    }

    let Some(facts) = &observed.instance else {
        return skip(SkipReason::InstanceNotFound);
    };
    if let Some(group) = tag_value(&facts.tags, GROUP_NAME_TAG) {
        return skip(SkipReason::LeftGroup { group: group.to_owned() });
    }
    if let Some(why) = out_of_scope(policy.scope, &[&facts.tags]) {
        return skip(SkipReason::OutOfScope { why });
    }
    if let Some(state) = recovered_state(observed) {
        return skip(SkipReason::Recovered { state });
    }
    match change.state {
        Ec2State::Stopped if facts.state == "stopped" => decide_stopped(id, facts, observed.stopped_by_medic),
        Ec2State::Terminated | Ec2State::ShuttingDown if matches!(facts.state.as_str(), "terminated" | "shutting-down") => {
            Plan {
                resource: id.to_owned(),
                decision: Decision::Alert(Alert {
                    severity: Severity::Critical,
                    headline: format!("standalone {id} terminated, nothing to heal"),
                    reason: format!(
                        "standalone instance {id} was terminated; it is in no Auto Scaling group, so nothing will replace it"
                    ),
                    advice: "Find out who or what terminated it (CloudTrail TerminateInstances), restore from the latest AMI or snapshot, and consider putting it in an Auto Scaling group of one.".to_owned(),
                    scope_label: format!("ec2 {id}"),
                    held_back: None,
                }),
            }
        }
        state => skip(SkipReason::Transitional { state }),
    }
}

/// A stopped standalone instance is started only when EC2 stopped it (`Server.*`) or medic
/// stopped it itself for recovery; a stop by a person or from inside the OS is left alone.
fn decide_stopped(id: &str, facts: &InstanceFacts, stopped_by_medic: bool) -> Plan {
    let reason = facts.state_reason.as_deref().unwrap_or("none given");
    let start = |completes_recovery, why: String| Plan {
        resource: id.to_owned(),
        decision: Decision::Act {
            actions: vec![PlannedAction {
                action: Action::StartInstance { instance_id: id.to_owned(), completes_recovery },
                reason: why,
            }],
        },
    };
    if stopped_by_medic {
        return start(
            true,
            "medic stopped it to move it off a failed host; this start completes that recovery".to_owned(),
        );
    }
    if reason.starts_with("Server.") {
        return start(false, format!("EC2 stopped it ({reason})"));
    }
    alert(
        id,
        Severity::Info,
        format!("ec2 {id}"),
        "stopped by a user: left alone".to_owned(),
        format!(
            "standalone instance {id} stopped with StateReason {reason}: a person, a script or its own OS stopped it, not EC2, so medic does not start it"
        ),
        format!(
            "Nothing to do if the stop was intended. If not, find who stopped it (CloudTrail StopInstances, or the OS logs for a shutdown) and start {id} by hand."
        ),
    )
}

fn went(state: Ec2State) -> &'static str {
    match state {
        Ec2State::Stopping => "stopping",
        Ec2State::Stopped => "stopped",
        Ec2State::ShuttingDown => "shutting down",
        Ec2State::Terminated => "terminated",
        Ec2State::Pending | Ec2State::Running => "changed state",
    }
}

/// The instance is up again (someone started it, or the event is stale).
fn recovered_state(observed: &InstanceObservation) -> Option<String> {
    let state = observed.instance.as_ref()?.state.as_str();
    matches!(state, "pending" | "running").then(|| state.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::GroupMember;
    use crate::policy::Scope;
    use crate::scope::{Tags, MANAGED_TAG};

    const NOW: EpochSeconds = 1_795_252_502;
    const ID: &str = "i-0a1b2c3d4e5f67890";

    fn change(state: Ec2State) -> InstanceStateChanged {
        InstanceStateChanged {
            event_id: "e-1".into(),
            instance_id: ID.into(),
            state,
            occurred_at: NOW,
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn facts(state: &str, extra: &[(&str, &str)]) -> InstanceFacts {
        InstanceFacts {
            state: state.into(),
            tags: tags(extra),
            launched_at: Some(NOW - 3600),
            ..InstanceFacts::default()
        }
    }

    fn member() -> GroupMember {
        GroupMember {
            group: "web-prod".into(),
            lifecycle_state: "InService".into(),
            health_status: "Healthy".into(),
            health_check_grace_period_seconds: 300,
            suspended_processes: vec![],
            group_tags: tags(&[(MANAGED_TAG, "true")]),
            desired_capacity: 3,
            out_of_service: 0,
        }
    }

    fn asg_member(state: &str) -> InstanceObservation {
        InstanceObservation {
            instance: Some(facts(state, &[(GROUP_NAME_TAG, "web-prod"), (MANAGED_TAG, "true")])),
            member: Some(member()),
            stopped_by_medic: false,
        }
    }

    fn with_member(edit: impl Fn(&mut GroupMember)) -> InstanceObservation {
        let mut observed = asg_member("stopped");
        if let Some(member) = observed.member.as_mut() {
            edit(member);
        }
        observed
    }

    fn stopped_because(reason: &str, stopped_by_medic: bool) -> InstanceObservation {
        let mut facts = facts("stopped", &[(MANAGED_TAG, "true")]);
        facts.state_reason = Some(reason.into());
        InstanceObservation { instance: Some(facts), member: None, stopped_by_medic }
    }

    fn standalone(state: &str, extra: &[(&str, &str)]) -> InstanceObservation {
        InstanceObservation { instance: Some(facts(state, extra)), member: None, stopped_by_medic: false }
    }

    fn replace() -> Decision {
        Decision::Act {
            actions: vec![PlannedAction {
                action: Action::ReplaceInstance { group: "web-prod".into(), instance_id: ID.into() },
                reason: String::new(),
            }],
        }
    }

    /// Compares decisions by kind, action and skip label; reasons are checked in their own test.
    fn shape(decision: &Decision) -> String {
        match decision {
            Decision::Act { actions } => {
                let names: Vec<String> = actions.iter().map(|a| format!("{:?}", a.action)).collect();
                format!("act {}", names.join(","))
            }
            Decision::Alert(alert) => format!("alert {}", alert.severity.as_str()),
            Decision::Skip { reason } => format!("skip {}", reason.label()),
        }
    }

    #[test]
    fn given_event_and_observation_when_decided_then_expected_plan() {
        let start = Decision::Act {
            actions: vec![PlannedAction {
                action: Action::StartInstance { instance_id: ID.into(), completes_recovery: false },
                reason: String::new(),
            }],
        };
        let recovery_start = Decision::Act {
            actions: vec![PlannedAction {
                action: Action::StartInstance { instance_id: ID.into(), completes_recovery: true },
                reason: String::new(),
            }],
        };
        let skip = |label: &str| format!("skip {label}");
        let opted_out = InstanceObservation {
            instance: Some(facts("stopped", &[(GROUP_NAME_TAG, "web-prod"), (MANAGED_TAG, "false")])),
            member: Some(member()),
            stopped_by_medic: false,
        };
        let untagged_group = with_member(|m| m.group_tags.clear());
        let untagged_member = InstanceObservation {
            instance: Some(facts("stopped", &[(GROUP_NAME_TAG, "web-prod")])),
            member: untagged_group.member.clone(),
            stopped_by_medic: false,
        };
        let rows: Vec<(&str, Ec2State, InstanceObservation, Scope, String)> = vec![
            ("ASG member stopped", Ec2State::Stopped, asg_member("stopped"), Scope::Tagged, shape(&replace())),
            ("ASG member stopping", Ec2State::Stopping, asg_member("stopping"), Scope::Tagged, shape(&replace())),
            (
                "ASG member shutting down",
                Ec2State::ShuttingDown,
                asg_member("shutting-down"),
                Scope::Tagged,
                shape(&replace()),
            ),
            ("ASG member terminated", Ec2State::Terminated, asg_member("terminated"), Scope::Tagged, shape(&replace())),
            (
                "running is ignored",
                Ec2State::Running,
                asg_member("running"),
                Scope::Tagged,
                skip("state-needs-no-healing"),
            ),
            (
                "pending is ignored",
                Ec2State::Pending,
                InstanceObservation::default(),
                Scope::Tagged,
                skip("state-needs-no-healing"),
            ),
            ("opted out on the instance", Ec2State::Stopped, opted_out, Scope::Tagged, skip("out-of-scope")),
            ("not opted in", Ec2State::Stopped, untagged_member.clone(), Scope::Tagged, skip("out-of-scope")),
            ("scope all needs no opt-in", Ec2State::Stopped, untagged_member, Scope::All, shape(&replace())),
            ("already running again", Ec2State::Stopped, asg_member("running"), Scope::Tagged, skip("recovered")),
            (
                "Pending:Wait",
                Ec2State::Stopped,
                with_member(|m| m.lifecycle_state = "Pending:Wait".into()),
                Scope::Tagged,
                skip("lifecycle-state"),
            ),
            (
                "Terminating (Auto Scaling's own)",
                Ec2State::ShuttingDown,
                with_member(|m| m.lifecycle_state = "Terminating".into()),
                Scope::Tagged,
                skip("lifecycle-state"),
            ),
            (
                "Terminating:Wait",
                Ec2State::Stopped,
                with_member(|m| m.lifecycle_state = "Terminating:Wait".into()),
                Scope::Tagged,
                skip("lifecycle-state"),
            ),
            (
                "Standby",
                Ec2State::Stopped,
                with_member(|m| m.lifecycle_state = "Standby".into()),
                Scope::Tagged,
                skip("lifecycle-state"),
            ),
            (
                "Detaching",
                Ec2State::Stopped,
                with_member(|m| m.lifecycle_state = "Detaching".into()),
                Scope::Tagged,
                skip("lifecycle-state"),
            ),
            (
                "Warmed:Stopped",
                Ec2State::Stopped,
                with_member(|m| m.lifecycle_state = "Warmed:Stopped".into()),
                Scope::Tagged,
                skip("lifecycle-state"),
            ),
            (
                "already Unhealthy",
                Ec2State::Stopped,
                with_member(|m| m.health_status = "Unhealthy".into()),
                Scope::Tagged,
                skip("already-unhealthy"),
            ),
            (
                "inside grace period",
                Ec2State::Stopped,
                with_member(|m| m.health_check_grace_period_seconds = 7200),
                Scope::Tagged,
                skip("grace-period"),
            ),
            (
                "ReplaceUnhealthy suspended",
                Ec2State::Stopped,
                with_member(|m| m.suspended_processes = vec!["AZRebalance".into(), "ReplaceUnhealthy".into()]),
                Scope::Tagged,
                "alert warning".into(),
            ),
            (
                "rule 10: one other of 3 already Unhealthy (67 % > 34 %)",
                Ec2State::Stopped,
                with_member(|m| m.out_of_service = 1),
                Scope::Tagged,
                "alert critical".into(),
            ),
            (
                "rule 10: one of 3 out is 33 %, within 34 %",
                Ec2State::Stopped,
                with_member(|m| m.out_of_service = 0),
                Scope::Tagged,
                shape(&replace()),
            ),
            (
                "rule 10: a group of 2 may still have its one dead instance replaced",
                Ec2State::Stopped,
                with_member(|m| m.desired_capacity = 2),
                Scope::Tagged,
                shape(&replace()),
            ),
            (
                "rule 10: one other of 10 out, 20 %",
                Ec2State::Stopped,
                with_member(|m| {
                    m.desired_capacity = 10;
                    m.out_of_service = 1;
                }),
                Scope::Tagged,
                shape(&replace()),
            ),
            (
                "rule 10: four others of 10 out, 50 %",
                Ec2State::Stopped,
                with_member(|m| {
                    m.desired_capacity = 10;
                    m.out_of_service = 4;
                }),
                Scope::Tagged,
                "alert critical".into(),
            ),
            (
                "Launch suspended",
                Ec2State::Stopped,
                with_member(|m| m.suspended_processes = vec!["Launch".into()]),
                Scope::Tagged,
                "alert warning".into(),
            ),
            (
                "unrelated process suspended",
                Ec2State::Stopped,
                with_member(|m| m.suspended_processes = vec!["AZRebalance".into()]),
                Scope::Tagged,
                shape(&replace()),
            ),
            (
                "no longer in the group",
                Ec2State::Stopped,
                standalone("stopped", &[(GROUP_NAME_TAG, "web-prod"), (MANAGED_TAG, "true")]),
                Scope::Tagged,
                skip("left-group"),
            ),
            (
                "instance not found",
                Ec2State::Stopped,
                InstanceObservation::default(),
                Scope::Tagged,
                skip("instance-not-found"),
            ),
            (
                "rule 1: standalone stopped by EC2 (Server.*)",
                Ec2State::Stopped,
                stopped_because("Server.InternalError", false),
                Scope::Tagged,
                shape(&start),
            ),
            (
                "rule 1: standalone stopped by a person",
                Ec2State::Stopped,
                stopped_because("Client.UserInitiatedShutdown", false),
                Scope::Tagged,
                "alert info".into(),
            ),
            (
                "rule 1: standalone shut down from its OS",
                Ec2State::Stopped,
                stopped_because("Client.InstanceInitiatedShutdown", false),
                Scope::Tagged,
                "alert info".into(),
            ),
            (
                "rule 1: standalone stopped, reason unknown",
                Ec2State::Stopped,
                standalone("stopped", &[(MANAGED_TAG, "true")]),
                Scope::Tagged,
                "alert info".into(),
            ),
            (
                "rule 2: standalone stopped by medic's own recovery",
                Ec2State::Stopped,
                stopped_because("Client.UserInitiatedShutdown", true),
                Scope::Tagged,
                shape(&recovery_start),
            ),
            (
                "standalone not opted in",
                Ec2State::Stopped,
                standalone("stopped", &[]),
                Scope::Tagged,
                skip("out-of-scope"),
            ),
            (
                "standalone started again",
                Ec2State::Stopped,
                standalone("running", &[(MANAGED_TAG, "true")]),
                Scope::Tagged,
                skip("recovered"),
            ),
            (
                "standalone terminated",
                Ec2State::Terminated,
                standalone("terminated", &[(MANAGED_TAG, "true")]),
                Scope::Tagged,
                "alert critical".into(),
            ),
            (
                "standalone stopping",
                Ec2State::Stopping,
                standalone("stopping", &[(MANAGED_TAG, "true")]),
                Scope::Tagged,
                skip("transitional-state"),
            ),
        ];
        for (name, state, observed, scope, expected) in rows {
            let policy = Policy { scope, ..Policy::default() };
            let plan = decide(&change(state), &observed, &policy, NOW);
            assert_eq!(shape(&plan.decision), expected, "row: {name}");
            assert_eq!(plan.resource, ID, "row: {name}");
        }
    }

    #[test]
    fn given_skips_and_alerts_when_decided_then_reasons_say_why() {
        let policy = Policy::default();
        let grace = decide(
            &change(Ec2State::Stopped),
            &with_member(|m| m.health_check_grace_period_seconds = 7200),
            &policy,
            NOW,
        );
        let Decision::Skip { reason } = grace.decision else { panic!("expected a skip") };
        assert_eq!(reason.to_string(), "inside the health-check grace period of web-prod (3600 s left)");

        let suspended = decide(
            &change(Ec2State::Stopped),
            &with_member(|m| m.suspended_processes = vec!["ReplaceUnhealthy".into()]),
            &policy,
            NOW,
        );
        let Decision::Alert(alert) = suspended.decision else { panic!("expected an alert") };
        assert_eq!(alert.headline, format!("cannot replace {ID}: ReplaceUnhealthy suspended"));
        assert!(alert.advice.contains("resume-processes --auto-scaling-group-name web-prod"));

        let replaced = decide(&change(Ec2State::Stopped), &asg_member("stopped"), &policy, NOW);
        let Decision::Act { actions } = replaced.decision else { panic!("expected an action") };
        assert_eq!(actions[0].reason, "stopped unexpectedly");
    }

    #[test]
    fn given_same_inputs_when_decided_twice_then_same_plan() {
        let policy = Policy::default();
        let observed = asg_member("stopped");
        assert_eq!(
            decide(&change(Ec2State::Stopped), &observed, &policy, NOW),
            decide(&change(Ec2State::Stopped), &observed, &policy, NOW)
        );
    }
}
