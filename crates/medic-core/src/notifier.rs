//! Notifier: Auto Scaling activity (launch / terminate, successful or not, lifecycle actions) and
//! AWS Health events, turned into notices. Nothing here changes AWS. Launch failures of one group
//! are counted over a window, and the Nth within it escalates to one critical notice instead of
//! a stream of warnings.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::{eventbridge, MalformedEvent};
use crate::plan::{alert, Plan, Severity, SkipReason};
use crate::policy::Policy;
use crate::time::EpochSeconds;

/// Launch failures of one group are counted over the last this-many seconds (by event time), and
/// the critical notice they escalate to is sent at most once per this span.
pub const LAUNCH_FAILURE_WINDOW_SECONDS: i64 = 900;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsgActivityKind {
    LaunchSuccessful,
    LaunchUnsuccessful,
    TerminateSuccessful,
    TerminateUnsuccessful,
    LaunchLifecycleAction,
    TerminateLifecycleAction,
}

impl AsgActivityKind {
    pub fn from_detail_type(detail_type: &str) -> Option<Self> {
        Some(match detail_type {
            "EC2 Instance Launch Successful" => Self::LaunchSuccessful,
            "EC2 Instance Launch Unsuccessful" => Self::LaunchUnsuccessful,
            "EC2 Instance Terminate Successful" => Self::TerminateSuccessful,
            "EC2 Instance Terminate Unsuccessful" => Self::TerminateUnsuccessful,
            "EC2 Instance-launch Lifecycle Action" => Self::LaunchLifecycleAction,
            "EC2 Instance-terminate Lifecycle Action" => Self::TerminateLifecycleAction,
            _ => return None,
        })
    }
}

/// One Auto Scaling activity or lifecycle action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsgActivity {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub kind: AsgActivityKind,
    pub group: String,
    pub instance_id: Option<String>,
    /// What Auto Scaling says happened, best first: StatusMessage, Cause, Description.
    pub cause: String,
    pub lifecycle_hook: Option<String>,
    pub lifecycle_transition: Option<String>,
    pub occurred_at: EpochSeconds,
}

/// One AWS Health event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub arn: String,
    pub service: String,
    pub type_code: String,
    pub category: String,
    pub description: String,
    pub entities: Vec<String>,
    pub occurred_at: EpochSeconds,
}

impl AsgActivity {
    pub fn summary(&self) -> String {
        let instance = self.instance_id.as_deref().map_or(String::new(), |id| format!(" for {id}"));
        let what = match self.kind {
            AsgActivityKind::LaunchSuccessful => "launched an instance",
            AsgActivityKind::LaunchUnsuccessful => "failed to launch an instance",
            AsgActivityKind::TerminateSuccessful => "terminated an instance",
            AsgActivityKind::TerminateUnsuccessful => "failed to terminate an instance",
            AsgActivityKind::LaunchLifecycleAction => "paused a launch at a lifecycle hook",
            AsgActivityKind::TerminateLifecycleAction => "paused a termination at a lifecycle hook",
        };
        let cause =
            if self.cause.is_empty() { String::new() } else { format!(": {}", self.cause.trim_end_matches('.')) };
        format!("Auto Scaling group {} {what}{instance}{cause}", self.group)
    }
}

impl HealthEvent {
    pub fn summary(&self) -> String {
        format!("AWS Health {} event {} ({})", self.service, self.type_code, self.category)
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AsgDetail {
    auto_scaling_group_name: String,
    #[serde(rename = "EC2InstanceId")]
    ec2_instance_id: Option<String>,
    status_message: Option<String>,
    cause: Option<String>,
    description: Option<String>,
    lifecycle_hook_name: Option<String>,
    lifecycle_transition: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthDetail {
    #[serde(default)]
    event_arn: String,
    #[serde(default)]
    service: String,
    event_type_code: String,
    #[serde(default)]
    event_type_category: String,
    #[serde(default)]
    event_description: Vec<HealthDescription>,
    #[serde(default)]
    affected_entities: Vec<HealthEntity>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthDescription {
    #[serde(default)]
    latest_description: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthEntity {
    entity_value: String,
}

/// What the notifier receives.
#[derive(Debug, Clone, PartialEq)]
pub enum NoticeEvent {
    AsgActivity(AsgActivity),
    Health(HealthEvent),
}

/// Parses an Auto Scaling activity / lifecycle event or an AWS Health event.
pub fn parse_notice_event(raw: &Value) -> Result<NoticeEvent, MalformedEvent> {
    let source = raw.get("source").and_then(Value::as_str).unwrap_or_default();
    let detail_type = raw.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    match (source, AsgActivityKind::from_detail_type(detail_type)) {
        ("aws.autoscaling", Some(kind)) => {
            let delivered = eventbridge::<AsgDetail>(raw, detail_type)?;
            let (account, region) = (delivered.account(), delivered.region());
            let detail = delivered.event.detail;
            if detail.auto_scaling_group_name.trim().is_empty() {
                return Err(MalformedEvent::new(format!("{detail_type}: detail.AutoScalingGroupName is empty")));
            }
            crate::ids::group_name("detail.AutoScalingGroupName", &detail.auto_scaling_group_name)?;
            if let Some(instance_id) = detail.ec2_instance_id.as_deref().filter(|id| !id.is_empty()) {
                crate::ids::instance_id("detail.EC2InstanceId", instance_id)?;
            }
            let cause = [detail.status_message, detail.cause, detail.description]
                .into_iter()
                .flatten()
                .map(|text| text.trim().to_owned())
                .find(|text| !text.is_empty())
                .unwrap_or_default();
            Ok(NoticeEvent::AsgActivity(AsgActivity {
                account,
                region,
                occurred_at: delivered.at,
                event_id: delivered.id,
                kind,
                group: detail.auto_scaling_group_name,
                instance_id: detail.ec2_instance_id.filter(|id| !id.is_empty()),
                cause,
                lifecycle_hook: detail.lifecycle_hook_name,
                lifecycle_transition: detail.lifecycle_transition,
            }))
        }
        ("aws.health", _) => {
            let delivered = eventbridge::<HealthDetail>(raw, detail_type)?;
            let (account, region) = (delivered.account(), delivered.region());
            let detail = delivered.event.detail;
            Ok(NoticeEvent::Health(HealthEvent {
                account,
                region,
                occurred_at: delivered.at,
                event_id: delivered.id,
                arn: detail.event_arn,
                service: detail.service,
                type_code: detail.event_type_code,
                category: detail.event_type_category,
                description: detail
                    .event_description
                    .into_iter()
                    .map(|d| d.latest_description)
                    .next()
                    .unwrap_or_default(),
                entities: detail.affected_entities.into_iter().map(|e| e.entity_value).collect(),
            }))
        }
        _ => Err(MalformedEvent::new(format!(
            "not an Auto Scaling activity or AWS Health event: source `{source}` with detail-type `{detail_type}`"
        ))),
    }
}

/// Ledger key of the bucket of launch failures of `group` whose time falls in the epoch-aligned
/// window containing `at`. Counting reads this bucket and the one before, and keeps the failures
/// of the 15 minutes up to the failure being counted.
pub fn launch_failures_key(group: &str, at: EpochSeconds) -> String {
    format!("launch-failures#{group}#{}", crate::guard::window_start(at, LAUNCH_FAILURE_WINDOW_SECONDS))
}

/// A failure as stored in its bucket: its time and its event, so a retried event is one member.
pub fn launch_failure_member(at: EpochSeconds, event_key: &str) -> String {
    format!("{at}#{event_key}")
}

/// How many stored failures fall within the 15 minutes up to and including `at`.
pub fn failures_in_window(members: &[String], at: EpochSeconds) -> usize {
    members
        .iter()
        .filter_map(|member| member.split_once('#').and_then(|(time, _)| time.parse::<EpochSeconds>().ok()))
        .filter(|time| *time > at - LAUNCH_FAILURE_WINDOW_SECONDS && *time <= at)
        .count()
}

/// Ledger key of the quiet period after a critical launch-failure notice of `group`.
pub fn launch_escalation_key(group: &str) -> String {
    format!("launch-escalated#{group}")
}

/// How many launch failures of the group fall in the counting span, and whether this one is the
/// first to reach the threshold in its window (it then escalates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LaunchFailures {
    pub count: usize,
    pub escalate: bool,
}

/// The notice for an Auto Scaling activity; `failures` is given for launch failures.
pub fn decide_activity(activity: &AsgActivity, failures: Option<LaunchFailures>, policy: &Policy) -> Plan {
    let group = &activity.group;
    let label = format!("asg {group}");
    let instance = activity.instance_id.as_deref().unwrap_or("an instance");
    let cause = if activity.cause.is_empty() { "no cause given".to_owned() } else { activity.cause.clone() };
    let threshold = policy.launch_failure_threshold as usize;
    match activity.kind {
        AsgActivityKind::LaunchUnsuccessful => {
            let count = failures.map_or(1, |f| f.count);
            if failures.is_some_and(|f| f.escalate) {
                return alert(
                    group,
                    Severity::Critical,
                    format!("ASG {group} cannot launch"),
                    cause.clone(),
                    format!("{count} launch failures of {group} within 15 minutes (threshold {threshold}): {cause}"),
                    "The group cannot reach its desired capacity. Common causes: no capacity for the instance type in the AZ (allow more instance types or AZs), a deleted or invalid launch template, AMI, key pair or security group, a subnet out of addresses, an EC2 quota. Read the group's activity history. medic sends this at most once per 15 minutes while the failures go on.",
                );
            }
            if count >= threshold {
                return Plan::skip(group, SkipReason::LaunchFailuresEscalated { group: group.clone(), count });
            }
            alert(
                group,
                Severity::Warning,
                label,
                format!("launch failed ({count} of {threshold} in 15 min)"),
                format!("Auto Scaling could not launch an instance in {group}: {cause}"),
                "Auto Scaling retries by itself; medic escalates to a critical notice if the failures reach the threshold within 15 minutes.",
            )
        }
        AsgActivityKind::TerminateUnsuccessful => alert(
            group,
            Severity::Warning,
            label,
            format!("could not terminate {instance}"),
            format!("Auto Scaling could not terminate {instance} in {group}: {cause}"),
            "Check the instance (termination protection, a stuck lifecycle hook) and the group's activity history; it may keep running and cost money.",
        ),
        AsgActivityKind::LaunchSuccessful | AsgActivityKind::TerminateSuccessful => {
            let verb = if activity.kind == AsgActivityKind::LaunchSuccessful { "launched" } else { "terminated" };
            alert(
                group,
                Severity::Info,
                label,
                format!("{verb} {instance}"),
                format!("Auto Scaling {verb} {instance} in {group}: {cause}"),
                "Nothing to fix.",
            )
        }
        AsgActivityKind::LaunchLifecycleAction | AsgActivityKind::TerminateLifecycleAction => {
            let hook = activity.lifecycle_hook.as_deref().unwrap_or("a lifecycle hook");
            let transition = activity.lifecycle_transition.as_deref().unwrap_or("a lifecycle transition");
            alert(
                group,
                Severity::Info,
                label,
                format!("{hook} holds {instance}"),
                format!("{hook} paused {instance} in {group} at {transition}; medic reports lifecycle actions and never completes them"),
                "The hook's owner completes the action (CompleteLifecycleAction); otherwise it times out with the hook's default result.",
            )
        }
    }
}

/// The notice for an AWS Health event.
pub fn decide_health(event: &HealthEvent) -> Plan {
    let severity = match event.category.as_str() {
        "issue" | "scheduledChange" => Severity::Warning,
        _ => Severity::Info,
    };
    let entities = if event.entities.is_empty() { "no resource named".to_owned() } else { event.entities.join(", ") };
    let description = event.description.split_whitespace().collect::<Vec<_>>().join(" ");
    alert(
        &event.arn,
        severity,
        format!("health {}", event.service.to_ascii_lowercase()),
        format!("{} ({entities})", event.type_code),
        format!("AWS Health reports {} for {entities}: {description}", event.type_code),
        "Read the event in the AWS Health dashboard and plan the change it asks for before its start time.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Decision;
    use std::path::PathBuf;

    fn fixture(name: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/notifier").join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn activity(name: &str) -> AsgActivity {
        match parse_notice_event(&fixture(name)).unwrap() {
            NoticeEvent::AsgActivity(activity) => activity,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn summary(plan: &Plan) -> String {
        match &plan.decision {
            Decision::Alert(alert) => format!("{} {}: {}", alert.severity.as_str(), alert.scope_label, alert.headline),
            Decision::Skip { reason } => format!("skip {}", reason.label()),
            Decision::Act { .. } => "act".into(),
        }
    }

    #[test]
    fn given_each_asg_file_when_decided_then_severity_and_headline() {
        let rows = [
            ("launch-successful.json", "info asg web-prod: launched i-0b2c3d4e5f6a7b8c9"),
            ("terminate-successful.json", "info asg web-prod: terminated i-0a1b2c3d4e5f67890"),
            ("terminate-unsuccessful.json", "warning asg web-prod: could not terminate i-0a1b2c3d4e5f67890"),
            ("launch-lifecycle-action.json", "info asg web-prod: web-prod-warmup holds i-0b2c3d4e5f6a7b8c9"),
            ("terminate-lifecycle-action.json", "info asg web-prod: web-prod-drain holds i-0a1b2c3d4e5f67890"),
            ("launch-unsuccessful.json", "warning asg web-prod: launch failed (1 of 3 in 15 min)"),
        ];
        for (file, expected) in rows {
            let first = Some(LaunchFailures { count: 1, escalate: false });
            assert_eq!(summary(&decide_activity(&activity(file), first, &Policy::default())), expected, "{file}");
        }
    }

    #[test]
    fn given_launch_failures_when_counted_then_warnings_until_one_critical_then_quiet() {
        let failed = activity("launch-unsuccessful.json");
        let policy = Policy::default();
        let rows = [
            (LaunchFailures { count: 2, escalate: false }, "warning asg web-prod: launch failed (2 of 3 in 15 min)"),
            (
                LaunchFailures { count: 3, escalate: true },
                "critical ASG web-prod cannot launch: We currently do not have sufficient t3.large capacity in the Availability Zone you requested (us-east-1b). Our system will be working on provisioning additional capacity.",
            ),
            (LaunchFailures { count: 4, escalate: false }, "skip launch-failures-escalated"),
        ];
        for (failures, expected) in rows {
            assert_eq!(summary(&decide_activity(&failed, Some(failures), &policy)), expected, "{failures:?}");
        }
        let lower = Policy { launch_failure_threshold: 1, ..Policy::default() };
        let escalated = decide_activity(&failed, Some(LaunchFailures { count: 1, escalate: true }), &lower);
        assert!(summary(&escalated).starts_with("critical ASG web-prod cannot launch"));
    }

    #[test]
    fn given_health_event_when_decided_then_warning_naming_the_instance() {
        let NoticeEvent::Health(event) = parse_notice_event(&fixture("health-instance-retirement.json")).unwrap()
        else {
            panic!("not a health event")
        };
        assert_eq!(
            summary(&decide_health(&event)),
            "warning health ec2: AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED (i-0a1b2c3d4e5f67890)"
        );
    }

    #[test]
    fn given_malformed_or_foreign_events_when_parsed_then_error_names_the_problem() {
        let mut no_id = fixture("launch-successful.json");
        no_id["id"] = Value::from("");
        let cases = [
            (fixture("malformed-missing-group.json"), "missing field `AutoScalingGroupName`"),
            (no_id, "EventBridge `id` is empty"),
            (
                serde_json::json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}),
                "not an Auto Scaling activity or AWS Health event",
            ),
        ];
        for (event, expected) in cases {
            let error = parse_notice_event(&event).expect_err("must be rejected");
            assert!(error.to_string().contains(expected), "{error} should contain {expected}");
        }
    }

    #[test]
    fn given_failures_in_one_window_when_keyed_then_same_key_per_group() {
        let start = crate::guard::window_start(1_795_252_000, LAUNCH_FAILURE_WINDOW_SECONDS);
        assert_eq!(launch_failures_key("web", start + 1), launch_failures_key("web", start + 899));
        assert_ne!(launch_failures_key("web", start), launch_failures_key("api", start));
        assert_ne!(launch_escalation_key("web"), launch_escalation_key("api"));
    }

    #[test]
    fn given_failures_spread_over_time_when_counted_then_only_the_15_minutes_up_to_this_one_count() {
        let at = 1_795_252_000;
        let members: Vec<String> = [at - 1_000, at - 899, at - 600, at - 5, at]
            .iter()
            .enumerate()
            .map(|(n, time)| launch_failure_member(*time, &format!("event#e{n}")))
            .collect();
        assert_eq!(failures_in_window(&members, at), 4, "the one 1000 s before is too old");
        assert_eq!(failures_in_window(&members, at - 600), 3, "later ones do not count for an earlier failure");
        assert_eq!(failures_in_window(&["garbage".to_owned()], at), 0);
    }
}
