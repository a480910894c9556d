//! The alarm responder's pure rules: which remediation an alarm asks for, and how far a group
//! may scale. What the alarm event lacks (tags, comparison operator) is observed first and
//! passed in.

use serde::Serialize;

use crate::alarm::{AlarmChanged, AlarmSubject};
use crate::scope::tag_value;
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

/// An Auto Scaling group's capacity as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::parse_alarm_event;
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
}
