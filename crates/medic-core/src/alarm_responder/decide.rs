//! The alarm responder's pure rules: which remediation an alarm asks for, and how far a group
//! may scale. What the alarm event lacks (tags, comparison operator) is observed first and
//! passed in.

use serde::Serialize;

use super::event::{AlarmChanged, AlarmState, AlarmSubject};
use crate::fleet::{replace_member, GroupMember, InstanceObservation, GROUP_NAME_TAG};
use crate::plan::{Action, Alert, Decision, Plan, PlannedAction, Severity, SkipReason};
use crate::policy::Policy;
use crate::policy::Scope;
use crate::scope::{out_of_scope, tag_value, Tags};
use crate::time::EpochSeconds;

/// Alarm tag naming the remediation explicitly.
pub const ACTION_TAG: &str = "medic:action";
/// Alarm tag with the scaling step (default 1).
pub const STEP_TAG: &str = "medic:step";

const STATUS_CHECKS: [&str; 3] = ["StatusCheckFailed", "StatusCheckFailed_Instance", "StatusCheckFailed_System"];
const LOAD_METRICS: [&str; 2] = ["CPUUtilization", "mem_used_percent"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleDirection {
    Out,
    In,
}

/// Which status check failed decides how a standalone instance is recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusCheck {
    /// The instance's own OS or configuration: a reboot can fix it.
    Instance,
    /// The host: only a stop and start (onto new hardware) fixes it.
    System,
    /// `StatusCheckFailed` (either): treated like a system check failure.
    Either,
}

/// What an alarm asks for, before the target is looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Remediation {
    Scale {
        group: String,
        direction: ScaleDirection,
        step: i32,
    },
    ReplaceInstance {
        instance_id: String,
        check: StatusCheck,
    },
    ReplaceUnhealthyTargets {
        target_group_arn: String,
    },
    /// No automatic fix: tell a human, with the reason.
    Notify {
        why: String,
    },
}

/// Maps an alarm to a remediation. `medic:action` on the alarm wins; otherwise the metric and
/// its dimensions decide. `comparison_operator` comes from the event (SNS) or DescribeAlarms.
pub fn remediation(
    change: &AlarmChanged,
    alarm_tags: &[(String, String)],
    comparison_operator: Option<&str>,
) -> Remediation {
    let subject = &change.subject;
    let dimension = |name: &str| subject.dimension(name).map(str::to_owned);
    let notify = |why: String| Remediation::Notify { why };
    let step = match tag_value(alarm_tags, STEP_TAG).map(str::trim) {
        None => 1,
        Some(text) => match text.parse::<i32>() {
            Ok(step) if (1..=100).contains(&step) => step,
            _ => return notify(format!("tag {STEP_TAG}={text} is not a whole number from 1 to 100")),
        },
    };
    let scale = |direction| match dimension("AutoScalingGroupName") {
        Some(group) => Remediation::Scale { group, direction, step },
        None => notify("scaling needs the alarm's AutoScalingGroupName dimension".into()),
    };
    let replace_instance = |check| match dimension("InstanceId") {
        Some(instance_id) => Remediation::ReplaceInstance { instance_id, check },
        None => notify("replacing an instance needs the alarm's InstanceId dimension".into()),
    };
    let replace_targets = || match dimension("TargetGroup") {
        Some(target_group) => Remediation::ReplaceUnhealthyTargets {
            target_group_arn: format!(
                "arn:aws:elasticloadbalancing:{}:{}:{target_group}",
                change.region, change.account
            ),
        },
        None => notify("replacing targets needs the alarm's TargetGroup dimension".into()),
    };

    if let Some(action) = tag_value(alarm_tags, ACTION_TAG).map(str::trim) {
        return match action {
            "scale-out" => scale(ScaleDirection::Out),
            "scale-in" => scale(ScaleDirection::In),
            "replace-instance" => replace_instance(status_check(subject)),
            "replace-unhealthy-targets" => replace_targets(),
            "notify" => notify(format!("tagged {ACTION_TAG}=notify")),
            other => notify(format!(
                "tag {ACTION_TAG}={other} is not one of scale-out, scale-in, replace-instance, replace-unhealthy-targets, notify"
            )),
        };
    }
    let AlarmSubject::Metric { name, .. } = subject else {
        return notify(match subject {
            AlarmSubject::Composite { .. } => {
                "composite alarm: medic does not guess a fix for a rule over other alarms".into()
            }
            _ => "metric math alarm: medic does not guess a fix for an expression".into(),
        });
    };
    if STATUS_CHECKS.contains(&name.as_str()) && dimension("InstanceId").is_some() {
        return replace_instance(status_check(subject));
    }
    if name == "UnHealthyHostCount" && dimension("TargetGroup").is_some() {
        return replace_targets();
    }
    if LOAD_METRICS.contains(&name.as_str()) && dimension("AutoScalingGroupName").is_some() {
        return match comparison_operator {
            Some(op) if op.starts_with("GreaterThan") => scale(ScaleDirection::Out),
            Some(op) if op.starts_with("LessThan") && !op.contains("OrGreaterThan") => scale(ScaleDirection::In),
            Some(op) => notify(format!("comparison operator {op} gives no scaling direction")),
            None => notify("the alarm's comparison operator is unknown, so the scaling direction is too".into()),
        };
    }
    notify(format!("no remediation is known for metric {name}; tag the alarm {ACTION_TAG}=… to choose one"))
}

fn status_check(subject: &AlarmSubject) -> StatusCheck {
    match subject {
        AlarmSubject::Metric { name, .. } if name == "StatusCheckFailed_Instance" => StatusCheck::Instance,
        AlarmSubject::Metric { name, .. } if name == "StatusCheckFailed_System" => StatusCheck::System,
        _ => StatusCheck::Either,
    }
}

/// What CloudWatch says about the alarm itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AlarmFacts {
    pub tags: Tags,
    pub comparison_operator: Option<String>,
    /// The alarm's state as DescribeAlarms shows it now; `None` when the alarm no longer exists.
    pub now: Option<AlarmNow>,
}

/// An alarm's current state and when it last changed (`StateTransitionedTimestamp`, else
/// `StateUpdatedTimestamp`), in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AlarmNow {
    pub state: AlarmState,
    pub changed_at_millis: i64,
}

/// An Auto Scaling group's capacity as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GroupCapacity {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    /// The group's own cooldown after a scaling activity.
    pub default_cooldown_seconds: i64,
    /// When the group's last scaling activity ended, if any is known.
    pub last_activity_ended_at: Option<EpochSeconds>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ScalePlan {
    /// Set desired capacity to `to` (an absolute value: idempotent).
    Set { from: i32, to: i32 },
    /// Already at max: a capacity-planning signal for humans.
    AtMax { max: i32 },
    /// Already at min: nothing to do.
    AtMin { min: i32 },
    /// Inside the group's own cooldown after its last activity.
    GroupCooldown { remaining_seconds: i64 },
}

/// New desired = clamp(desired ± step, min, max), never outside the bounds even if the group's
/// desired already is (then it is brought back inside them).
pub fn scale_plan(direction: ScaleDirection, step: i32, capacity: &GroupCapacity, now: EpochSeconds) -> ScalePlan {
    if let Some(ended) = capacity.last_activity_ended_at {
        let remaining_seconds = ended + capacity.default_cooldown_seconds - now;
        if remaining_seconds > 0 {
            return ScalePlan::GroupCooldown { remaining_seconds };
        }
    }
    let (min, max) = (capacity.min, capacity.max.max(capacity.min));
    let wanted = match direction {
        ScaleDirection::Out => capacity.desired.saturating_add(step),
        ScaleDirection::In => capacity.desired.saturating_sub(step),
    };
    let to = wanted.clamp(min, max);
    match direction {
        ScaleDirection::Out if to <= capacity.desired && capacity.desired >= max => ScalePlan::AtMax { max },
        ScaleDirection::In if to >= capacity.desired && capacity.desired <= min => ScalePlan::AtMin { min },
        _ => ScalePlan::Set { from: capacity.desired, to },
    }
}

/// What medic observed about the remediation's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    /// For `Scale`.
    Group { group: String, capacity: GroupCapacity, group_tags: Tags },
    /// For `ReplaceInstance`.
    Instance(InstanceObservation),
    /// For `ReplaceUnhealthyTargets`: each target the load balancer reports unhealthy.
    UnhealthyTargets(Vec<(String, InstanceObservation)>),
    /// Nothing to look at (`Notify`), or the target does not exist.
    Nothing,
}

/// Why an alarm is none of this deployment's business: its name lacks the deployment's prefix
/// (it arrived on a shared alarm topic). Decided before any call, since IAM allows reading only
/// the deployment's own alarms.
pub fn outside_prefix(change: &AlarmChanged, policy: &Policy) -> Option<SkipReason> {
    let prefix = policy.alarm_name_prefix.as_deref()?;
    (!change.alarm_name.starts_with(prefix)).then(|| SkipReason::AlarmOutsidePrefix { prefix: prefix.to_owned() })
}

/// Why an alarm event in ALARM must not lead to a change any more: the alarm is gone, out of
/// ALARM, or changed state after the event's transition (then a newer event speaks for it).
/// Timestamps within a second count as the same transition (precisions differ by shape).
fn not_live(change: &AlarmChanged, now: Option<AlarmNow>) -> Option<SkipReason> {
    let Some(now) = now else { return Some(SkipReason::AlarmGone) };
    if now.state != AlarmState::Alarm {
        return Some(SkipReason::AlarmNoLongerFiring { state: now.state, changed_at_millis: now.changed_at_millis });
    }
    (now.changed_at_millis >= change.changed_at_millis + 1000)
        .then_some(SkipReason::AlarmReevaluated { changed_at_millis: now.changed_at_millis })
}

/// What to do about an alarm that is not in ALARM, without looking at anything: an info notice
/// when it is back to OK and the policy asks for one, else nothing.
pub fn decide_not_firing(change: &AlarmChanged, policy: &Policy) -> Plan {
    let alarm = change.alarm_name.as_str();
    if change.state == AlarmState::Ok && policy.notify_on_ok {
        return alert(
            alarm,
            Severity::Info,
            "back to OK".to_owned(),
            format!("alarm {alarm} went {} -> OK", change.previous_state.map_or("?", AlarmState::as_str)),
            "Nothing to do; this notice is sent because MEDIC_NOTIFY_ON_OK=true.".to_owned(),
            format!("alarm {alarm}"),
        );
    }
    Plan::skip(alarm, SkipReason::AlarmNotFiring { state: change.state })
}

/// The alarm responder's decision, a pure function of the alarm, its tags, what it asks for,
/// what the target looks like now, the policy, and the time.
pub fn decide_alarm(
    change: &AlarmChanged,
    facts: &AlarmFacts,
    remediation: &Remediation,
    target: &Target,
    policy: &Policy,
    now: EpochSeconds,
) -> Plan {
    let alarm = change.alarm_name.as_str();
    if let Some(why) = out_of_scope(Scope::All, &[&facts.tags]) {
        return Plan::skip(alarm, SkipReason::OutOfScope { why: format!("alarm {why}") });
    }
    if change.state != AlarmState::Alarm {
        return decide_not_firing(change, policy);
    }
    if !matches!(remediation, Remediation::Notify { .. }) {
        if let Some(reason) = not_live(change, facts.now) {
            return Plan::skip(alarm, reason);
        }
    }
    match (remediation, target) {
        (Remediation::Notify { why }, _) => alert(
            alarm,
            Severity::Warning,
            format!("alarm {alarm} in ALARM, no automatic fix"),
            format!("{why}. CloudWatch says: {}", change.reason),
            format!(
                "Look at what alarm {alarm} watches and act by hand, or tag the alarm medic:action=… to let medic act."
            ),
            format!("alarm {alarm}"),
        ),
        (Remediation::Scale { group, direction, step }, Target::Group { capacity, group_tags, .. }) => {
            if let Some(why) = out_of_scope(policy.scope, &[group_tags]) {
                return Plan::skip(group, SkipReason::OutOfScope { why });
            }
            match scale_plan(*direction, *step, capacity, now) {
                ScalePlan::Set { from, to } => act(
                    group,
                    Action::ScaleGroup { group: group.clone(), from, to },
                    format!("alarm {alarm}"),
                ),
                ScalePlan::AtMax { max } => alert(
                    group,
                    Severity::Warning,
                    format!("at max capacity ({max}), alarm {alarm}"),
                    format!("alarm {alarm} asks for more capacity but {group} is already at its maximum of {max}"),
                    format!("Raise MaxSize of {group} if the load is real, or find what drives it (traffic spike, runaway process)."),
                    format!("asg {group}"),
                ),
                ScalePlan::AtMin { min } => {
                    Plan::skip(group, SkipReason::AtMinCapacity { group: group.clone(), min })
                }
                ScalePlan::GroupCooldown { remaining_seconds } => {
                    Plan::skip(group, SkipReason::GroupCooldown { group: group.clone(), remaining_seconds })
                }
            }
        }
        (Remediation::ReplaceInstance { instance_id, check }, Target::Instance(observed)) => {
            let why = format!("{} status check failed", check_name(*check));
            if let Some(member) = &observed.member {
                return replace_member(instance_id, member, observed.instance.as_ref(), &why, policy, now);
            }
            let Some(facts) = &observed.instance else {
                return Plan::skip(instance_id, SkipReason::InstanceNotFound);
            };
            if let Some(group) = tag_value(&facts.tags, GROUP_NAME_TAG) {
                return Plan::skip(instance_id, SkipReason::LeftGroup { group: group.to_owned() });
            }
            if let Some(scope) = out_of_scope(policy.scope, &[&facts.tags]) {
                return Plan::skip(instance_id, SkipReason::OutOfScope { why: scope });
            }
            if facts.state != "running" {
                return Plan::skip(instance_id, SkipReason::NotRunning { state: facts.state.clone() });
            }
            // EC2's automatic recovery acts on a system check failure only.
            if facts.auto_recovery && *check == StatusCheck::System {
                return alert(
                    instance_id,
                    Severity::Warning,
                    format!("EC2 automatic recovery handles {instance_id}"),
                    format!("{why} on {instance_id}, which has EC2's automatic recovery on (MaintenanceOptions.AutoRecovery=default): EC2 recovers it in place onto healthy hardware, without a stop, so medic does not stop it"),
                    format!("Watch {instance_id} for the recovery (EC2 console, the AWS Health event); if it does not come back, stop and start it by hand."),
                    format!("ec2 {instance_id}"),
                );
            }
            let action = match check {
                StatusCheck::Instance => Action::RebootInstance { instance_id: instance_id.clone() },
                StatusCheck::System | StatusCheck::Either => {
                    Action::StopForRecovery { instance_id: instance_id.clone() }
                }
            };
            act(instance_id, action, why)
        }
        (Remediation::ReplaceUnhealthyTargets { target_group_arn }, Target::UnhealthyTargets(targets)) => {
            let mut actions: Vec<PlannedAction> = Vec::new();
            let mut skipped = Vec::new();
            let mut held_back: Option<Alert> = None;
            for (instance_id, observed) in targets {
                let Some(member) = &observed.member else {
                    skipped.push(format!("{instance_id} is in no Auto Scaling group"));
                    continue;
                };
                // The replacements planned so far take their group's instances out of service too.
                let planned_in_group = actions
                    .iter()
                    .filter(|p| matches!(&p.action, Action::ReplaceInstance { group, .. } if *group == member.group))
                    .count();
                let member = GroupMember {
                    out_of_service: member.out_of_service + i32::try_from(planned_in_group).unwrap_or(i32::MAX),
                    ..member.clone()
                };
                let why = format!("is an unhealthy target of {}", short_name(target_group_arn));
                match replace_member(instance_id, &member, observed.instance.as_ref(), &why, policy, now).decision {
                    Decision::Act { actions: planned } => actions.extend(planned),
                    Decision::Skip { reason } => skipped.push(format!("{instance_id}: {reason}")),
                    Decision::Alert(alert) => {
                        if alert.held_back.is_some() && held_back.is_none() {
                            held_back = Some(alert.clone());
                        }
                        skipped.push(format!("{instance_id}: {}", alert.headline));
                    }
                }
            }
            let resource = short_name(target_group_arn).to_owned();
            // Nothing to replace because a safety rule held every replacement back: that is the
            // critical alert, not a quiet skip.
            if let (true, Some(mut alert)) = (actions.is_empty(), held_back) {
                alert.reason = format!("{}; unhealthy targets left alone: {}", alert.reason, skipped.join("; "));
                return Plan { resource, decision: Decision::Alert(alert) };
            }
            if actions.is_empty() {
                let why =
                    if skipped.is_empty() { "the target group reports none".to_owned() } else { skipped.join("; ") };
                return Plan::skip(&resource, SkipReason::NoEligibleTargets { target_group: resource.clone(), why });
            }
            if !skipped.is_empty() {
                if let Some(first) = actions.first_mut() {
                    first.reason = format!("{}; left alone: {}", first.reason, skipped.join("; "));
                }
            }
            Plan { resource, decision: Decision::Act { actions } }
        }
        (remediation, _) => Plan::skip(alarm, SkipReason::TargetNotFound { what: target_description(remediation) }),
    }
}

fn act(resource: &str, action: Action, reason: String) -> Plan {
    Plan { resource: resource.to_owned(), decision: Decision::Act { actions: vec![PlannedAction { action, reason }] } }
}

fn alert(
    resource: &str,
    severity: Severity,
    headline: String,
    reason: String,
    advice: String,
    scope_label: String,
) -> Plan {
    Plan {
        resource: resource.to_owned(),
        decision: Decision::Alert(Alert { severity, headline, reason, advice, scope_label, held_back: None }),
    }
}

fn check_name(check: StatusCheck) -> &'static str {
    match check {
        StatusCheck::Instance => "instance",
        StatusCheck::System => "system",
        StatusCheck::Either => "EC2",
    }
}

/// `targetgroup/web-prod/0123…` from a target group ARN.
fn short_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/").map_or(arn, |(_, rest)| rest)
}

fn target_description(remediation: &Remediation) -> String {
    match remediation {
        Remediation::Scale { group, .. } => format!("Auto Scaling group {group}"),
        Remediation::ReplaceInstance { instance_id, .. } => format!("instance {instance_id}"),
        Remediation::ReplaceUnhealthyTargets { target_group_arn } => format!("target group {target_group_arn}"),
        Remediation::Notify { .. } => "the alarm's target".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::parse_alarm_event;
    use super::*;
    use std::path::PathBuf;

    fn change(file: &str) -> AlarmChanged {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/alarm-responder").join(file);
        let raw = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        parse_alarm_event(&raw).unwrap().remove(0)
    }

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn kind(remediation: &Remediation) -> String {
        match remediation {
            Remediation::Scale { group, direction, step } => format!("scale {direction:?} {step} {group}"),
            Remediation::ReplaceInstance { instance_id, check } => format!("replace {instance_id} {check:?}"),
            Remediation::ReplaceUnhealthyTargets { target_group_arn } => format!("targets {target_group_arn}"),
            Remediation::Notify { .. } => "notify".into(),
        }
    }

    #[test]
    fn given_alarm_tags_and_metric_when_mapped_then_expected_remediation() {
        let gt = Some("GreaterThanThreshold");
        let lt = Some("LessThanThreshold");
        let targets =
            "targets arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-prod/0123456789abcdef";
        type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
        let rows: [Row<'_>; 16] = [
            ("eventbridge-cpu-high.json", &[], gt, "scale Out 1 web-prod"),
            ("eventbridge-cpu-low.json", &[], lt, "scale In 1 web-prod"),
            ("eventbridge-cpu-low.json", &[], Some("LessThanOrEqualToThreshold"), "scale In 1 web-prod"),
            ("eventbridge-cpu-high.json", &[], None, "notify"),
            ("eventbridge-cpu-high.json", &[], Some("LessThanLowerOrGreaterThanUpperThreshold"), "notify"),
            ("eventbridge-cpu-high.json", &[(ACTION_TAG, "scale-out"), (STEP_TAG, "2")], None, "scale Out 2 web-prod"),
            ("eventbridge-cpu-high.json", &[(ACTION_TAG, "notify")], gt, "notify"),
            ("eventbridge-cpu-high.json", &[(ACTION_TAG, "reboot-everything")], gt, "notify"),
            ("eventbridge-cpu-high.json", &[(STEP_TAG, "0")], gt, "notify"),
            ("eventbridge-cpu-high.json", &[(ACTION_TAG, "replace-instance")], gt, "notify"),
            (
                "eventbridge-status-check-failed.json",
                &[],
                Some("GreaterThanOrEqualToThreshold"),
                "replace i-0a1b2c3d4e5f67890 Either",
            ),
            ("eventbridge-unhealthy-hosts.json", &[], gt, targets),
            ("eventbridge-unhealthy-hosts.json", &[(ACTION_TAG, "scale-out")], gt, "notify"),
            ("eventbridge-metric-math.json", &[], gt, "notify"),
            ("eventbridge-composite.json", &[], None, "notify"),
            ("sns-unhealthy-hosts.json", &[], gt, targets),
        ];
        for (file, alarm_tags, operator, expected) in rows {
            let got = remediation(&change(file), &tags(alarm_tags), operator);
            assert_eq!(kind(&got), expected, "{file} {alarm_tags:?} {operator:?}: {got:?}");
        }
    }

    #[test]
    fn given_status_check_metric_when_mapped_then_check_kind_follows_metric() {
        let mut alarm = change("eventbridge-status-check-failed.json");
        for (metric, check) in [
            ("StatusCheckFailed_Instance", StatusCheck::Instance),
            ("StatusCheckFailed_System", StatusCheck::System),
            ("StatusCheckFailed", StatusCheck::Either),
        ] {
            if let AlarmSubject::Metric { name, .. } = &mut alarm.subject {
                *name = metric.into();
            }
            assert_eq!(
                remediation(&alarm, &[], None),
                Remediation::ReplaceInstance { instance_id: "i-0a1b2c3d4e5f67890".into(), check }
            );
        }
    }

    #[test]
    fn given_capacity_when_scaling_then_clamped_to_bounds() {
        let group = |min, max, desired| GroupCapacity { min, max, desired, ..GroupCapacity::default() };
        let rows = [
            (ScaleDirection::Out, 1, group(1, 4, 2), ScalePlan::Set { from: 2, to: 3 }),
            (ScaleDirection::Out, 5, group(1, 4, 2), ScalePlan::Set { from: 2, to: 4 }),
            (ScaleDirection::Out, 1, group(1, 4, 4), ScalePlan::AtMax { max: 4 }),
            (ScaleDirection::Out, 1, group(1, 4, 6), ScalePlan::AtMax { max: 4 }),
            (ScaleDirection::In, 1, group(1, 4, 2), ScalePlan::Set { from: 2, to: 1 }),
            (ScaleDirection::In, 3, group(1, 4, 3), ScalePlan::Set { from: 3, to: 1 }),
            (ScaleDirection::In, 1, group(1, 4, 1), ScalePlan::AtMin { min: 1 }),
            (ScaleDirection::In, 1, group(2, 4, 0), ScalePlan::AtMin { min: 2 }),
            (ScaleDirection::Out, i32::MAX, group(1, 4, 2), ScalePlan::Set { from: 2, to: 4 }),
        ];
        for (direction, step, capacity, expected) in rows {
            assert_eq!(scale_plan(direction, step, &capacity, 1000), expected, "{direction:?} {step} {capacity:?}");
        }
    }

    #[test]
    fn given_group_inside_its_cooldown_when_scaling_then_waits() {
        let capacity = GroupCapacity {
            min: 1,
            max: 4,
            desired: 2,
            default_cooldown_seconds: 300,
            last_activity_ended_at: Some(1000),
        };
        assert_eq!(
            scale_plan(ScaleDirection::Out, 1, &capacity, 1100),
            ScalePlan::GroupCooldown { remaining_seconds: 200 }
        );
        assert_eq!(scale_plan(ScaleDirection::Out, 1, &capacity, 1300), ScalePlan::Set { from: 2, to: 3 });
    }

    mod decide {
        use super::*;
        use crate::fleet::InstanceFacts;
        use crate::scope::MANAGED_TAG;

        const NOW: EpochSeconds = 1_795_260_000;

        fn managed() -> Tags {
            tags(&[(MANAGED_TAG, "true")])
        }

        fn group_target(min: i32, max: i32, desired: i32) -> Target {
            Target::Group {
                group: "web-prod".into(),
                capacity: GroupCapacity { min, max, desired, ..GroupCapacity::default() },
                group_tags: managed(),
            }
        }

        fn member(lifecycle: &str) -> InstanceObservation {
            InstanceObservation {
                instance: Some(InstanceFacts {
                    state: "running".into(),
                    tags: managed(),
                    launched_at: Some(NOW - 7200),
                    ..InstanceFacts::default()
                }),
                member: Some(GroupMember {
                    group: "web-prod".into(),
                    lifecycle_state: lifecycle.into(),
                    health_status: "HEALTHY".into(),
                    health_check_grace_period_seconds: 300,
                    suspended_processes: vec![],
                    group_tags: managed(),
                    desired_capacity: 3,
                    out_of_service: 0,
                }),
                stopped_by_medic: false,
            }
        }

        fn standalone(state: &str) -> InstanceObservation {
            InstanceObservation {
                instance: Some(InstanceFacts {
                    state: state.into(),
                    tags: managed(),
                    launched_at: Some(NOW - 7200),
                    ..InstanceFacts::default()
                }),
                member: None,
                stopped_by_medic: false,
            }
        }

        fn in_group_of(desired: i32, mut observed: InstanceObservation) -> InstanceObservation {
            if let Some(member) = observed.member.as_mut() {
                member.desired_capacity = desired;
            }
            observed
        }

        fn auto_recovering() -> InstanceObservation {
            let mut observed = standalone("running");
            if let Some(facts) = observed.instance.as_mut() {
                facts.auto_recovery = true;
            }
            observed
        }

        fn shape(plan: &Plan) -> String {
            match &plan.decision {
                Decision::Act { actions } => {
                    let names: Vec<String> =
                        actions.iter().map(|a| format!("{} {}", a.action.name(), a.action.resource())).collect();
                    format!("act {}", names.join(", "))
                }
                Decision::Alert(alert) => format!("alert {} {}", alert.severity.as_str(), alert.headline),
                Decision::Skip { reason } => format!("skip {}", reason.label()),
            }
        }

        #[test]
        fn given_alarm_remediation_and_target_when_decided_then_expected_plan() {
            let out = Remediation::Scale { group: "web-prod".into(), direction: ScaleDirection::Out, step: 1 };
            let scale_in = Remediation::Scale { group: "web-prod".into(), direction: ScaleDirection::In, step: 1 };
            let id = "i-0a1b2c3d4e5f67890";
            let replace = |check| Remediation::ReplaceInstance { instance_id: id.into(), check };
            let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-prod/0123456789abcdef";
            let targets = Remediation::ReplaceUnhealthyTargets { target_group_arn: tg.into() };
            let notify = Remediation::Notify { why: "composite alarm".into() };
            let untagged_group = Target::Group {
                group: "web-prod".into(),
                capacity: GroupCapacity { min: 1, max: 4, desired: 2, ..GroupCapacity::default() },
                group_tags: vec![],
            };
            type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Remediation, Target, &'a str);
            let rows: Vec<Row<'_>> = vec![
                (
                    "cpu high scales out",
                    "eventbridge-cpu-high.json",
                    &[],
                    out.clone(),
                    group_target(1, 4, 2),
                    "act scale-out web-prod",
                ),
                (
                    "cpu high at max",
                    "eventbridge-cpu-high.json",
                    &[],
                    out.clone(),
                    group_target(1, 4, 4),
                    "alert warning at max capacity (4), alarm web-prod-cpu-high",
                ),
                (
                    "cpu low scales in",
                    "eventbridge-cpu-low.json",
                    &[],
                    scale_in.clone(),
                    group_target(1, 4, 2),
                    "act scale-in web-prod",
                ),
                (
                    "cpu low at min",
                    "eventbridge-cpu-low.json",
                    &[],
                    scale_in,
                    group_target(1, 4, 1),
                    "skip at-min-capacity",
                ),
                (
                    "group not opted in",
                    "eventbridge-cpu-high.json",
                    &[],
                    out.clone(),
                    untagged_group,
                    "skip out-of-scope",
                ),
                (
                    "alarm opted out",
                    "eventbridge-cpu-high.json",
                    &[(MANAGED_TAG, "false")],
                    out.clone(),
                    group_target(1, 4, 2),
                    "skip out-of-scope",
                ),
                (
                    "OK transition",
                    "eventbridge-ok-transition.json",
                    &[],
                    out.clone(),
                    group_target(1, 4, 2),
                    "skip alarm-not-firing",
                ),
                ("group gone", "eventbridge-cpu-high.json", &[], out, Target::Nothing, "skip target-not-found"),
                (
                    "status check, ASG member",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::Either),
                    Target::Instance(member("InService")),
                    "act replace i-0a1b2c3d4e5f67890",
                ),
                (
                    "status check, member in Standby",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::Either),
                    Target::Instance(member("Standby")),
                    "skip lifecycle-state",
                ),
                (
                    "instance check, standalone",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::Instance),
                    Target::Instance(standalone("running")),
                    "act reboot i-0a1b2c3d4e5f67890",
                ),
                (
                    "system check, standalone",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::System),
                    Target::Instance(standalone("running")),
                    "act recover i-0a1b2c3d4e5f67890",
                ),
                (
                    "rule 2: system check, standalone with EC2 automatic recovery",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::System),
                    Target::Instance(auto_recovering()),
                    "alert warning EC2 automatic recovery handles i-0a1b2c3d4e5f67890",
                ),
                (
                    "rule 2: either check, standalone with EC2 automatic recovery (it may be the instance check)",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::Either),
                    Target::Instance(auto_recovering()),
                    "act recover i-0a1b2c3d4e5f67890",
                ),
                (
                    "rule 2: instance check, standalone with EC2 automatic recovery (a reboot, not a stop)",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::Instance),
                    Target::Instance(auto_recovering()),
                    "act reboot i-0a1b2c3d4e5f67890",
                ),
                (
                    "standalone already stopped",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::System),
                    Target::Instance(standalone("stopped")),
                    "skip not-running",
                ),
                (
                    "instance gone",
                    "eventbridge-status-check-failed.json",
                    &[],
                    replace(StatusCheck::System),
                    Target::Instance(InstanceObservation::default()),
                    "skip instance-not-found",
                ),
                (
                    "unhealthy targets",
                    "eventbridge-unhealthy-hosts.json",
                    &[],
                    targets.clone(),
                    Target::UnhealthyTargets(vec![
                        ("i-1".into(), in_group_of(10, member("InService"))),
                        ("i-2".into(), in_group_of(10, member("Terminating"))),
                        ("i-3".into(), in_group_of(10, member("InService"))),
                        ("i-4".into(), standalone("running")),
                    ]),
                    "act replace i-1, replace i-3",
                ),
                (
                    "rule 10: the only unhealthy target would put the group over the floor: a critical alert, not a skip",
                    "eventbridge-unhealthy-hosts.json",
                    &[],
                    targets.clone(),
                    Target::UnhealthyTargets(vec![(
                        "i-1".into(),
                        InstanceObservation {
                            member: member("InService").member.map(|m| GroupMember { out_of_service: 1, ..m }),
                            ..member("InService")
                        },
                    )]),
                    "alert critical 2 of 3 out of service, over 34 %: left i-1 alone",
                ),
                (
                    "rule 10: three unhealthy targets of a group of 3, one plan: only the first",
                    "eventbridge-unhealthy-hosts.json",
                    &[],
                    targets.clone(),
                    Target::UnhealthyTargets(vec![
                        ("i-1".into(), member("InService")),
                        ("i-2".into(), member("InService")),
                        ("i-3".into(), member("InService")),
                    ]),
                    "act replace i-1",
                ),
                (
                    "no replaceable target",
                    "eventbridge-unhealthy-hosts.json",
                    &[],
                    targets.clone(),
                    Target::UnhealthyTargets(vec![("i-2".into(), member("Pending"))]),
                    "skip no-eligible-targets",
                ),
                (
                    "no unhealthy target",
                    "eventbridge-unhealthy-hosts.json",
                    &[],
                    targets,
                    Target::UnhealthyTargets(vec![]),
                    "skip no-eligible-targets",
                ),
                (
                    "composite notifies",
                    "eventbridge-composite.json",
                    &[],
                    notify,
                    Target::Nothing,
                    "alert warning alarm web-prod-degraded in ALARM, no automatic fix",
                ),
            ];
            for (name, file, alarm_tags, remediation, target, expected) in rows {
                let change = change(file);
                let facts = AlarmFacts { tags: tags(alarm_tags), ..firing(&change) };
                let plan = decide_alarm(&change, &facts, &remediation, &target, &Policy::default(), NOW);
                assert_eq!(shape(&plan), expected, "row: {name}: {plan:?}");
            }
        }

        /// The alarm as DescribeAlarms shows it when it is still in the event's ALARM episode.
        fn firing(change: &AlarmChanged) -> AlarmFacts {
            AlarmFacts {
                now: Some(AlarmNow { state: AlarmState::Alarm, changed_at_millis: change.changed_at_millis }),
                ..AlarmFacts::default()
            }
        }

        #[test]
        fn rule4_given_the_alarm_as_it_is_now_when_decided_then_medic_acts_only_on_a_live_alarm() {
            let scale_out = Remediation::Scale { group: "web-prod".into(), direction: ScaleDirection::Out, step: 1 };
            let notify = Remediation::Notify { why: "tagged medic:action=notify".into() };
            let change = change("eventbridge-cpu-high.json");
            let at = change.changed_at_millis;
            let now = |state, changed_at_millis| Some(AlarmNow { state, changed_at_millis });
            let rows = [
                ("still in ALARM since the event", &scale_out, now(AlarmState::Alarm, at), "act scale-out web-prod"),
                (
                    "same transition, second precision",
                    &scale_out,
                    now(AlarmState::Alarm, at - at % 1000),
                    "act scale-out web-prod",
                ),
                ("back to OK", &scale_out, now(AlarmState::Ok, at + 60_000), "skip alarm-no-longer-firing"),
                (
                    "INSUFFICIENT_DATA now",
                    &scale_out,
                    now(AlarmState::InsufficientData, at + 60_000),
                    "skip alarm-no-longer-firing",
                ),
                (
                    "ALARM again after an OK since",
                    &scale_out,
                    now(AlarmState::Alarm, at + 120_000),
                    "skip alarm-re-evaluated",
                ),
                ("alarm deleted", &scale_out, None, "skip alarm-gone"),
                (
                    "a notice only, alarm back to OK",
                    &notify,
                    now(AlarmState::Ok, at + 60_000),
                    "alert warning alarm web-prod-cpu-high in ALARM, no automatic fix",
                ),
            ];
            for (name, remediation, live, expected) in rows {
                let facts = AlarmFacts { now: live, ..AlarmFacts::default() };
                let plan = decide_alarm(&change, &facts, remediation, &group_target(1, 4, 2), &Policy::default(), NOW);
                assert_eq!(shape(&plan), expected, "row: {name}: {plan:?}");
            }
        }

        #[test]
        fn given_scale_out_when_decided_then_action_carries_bounds_and_reason() {
            let remediation = Remediation::Scale { group: "web-prod".into(), direction: ScaleDirection::Out, step: 5 };
            let change = change("sns-cpu-high.json");
            let plan =
                decide_alarm(&change, &firing(&change), &remediation, &group_target(1, 4, 2), &Policy::default(), NOW);
            let Decision::Act { actions } = plan.decision else { panic!("expected an action") };
            assert_eq!(actions[0].action, Action::ScaleGroup { group: "web-prod".into(), from: 2, to: 4 });
            assert_eq!(actions[0].reason, "alarm web-prod-cpu-high");
        }
    }
}
