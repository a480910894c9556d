//! CloudWatch alarm state changes in the three shapes a Lambda can receive them, normalized into
//! one [`AlarmChanged`]:
//! 1. EventBridge "CloudWatch Alarm State Change" (`detail`),
//! 2. a direct Lambda alarm action (`alarmData`, `+0000` timestamps),
//! 3. SNS-wrapped (`Records[].Sns.Message`, a JSON string; one event may carry several).
//!
//! The idempotency key is the alarm ARN (or account/region/name), the state-change time to the
//! millisecond and the new state: the same transition delivered twice, or wired two ways, is one.
//!
//! The EventBridge and SNS envelopes are aws_lambda_events' types. The alarm payloads (the
//! `alarmData` of a direct action, the SNS message) are medic's own: the crate's reject real ones
//! or read a state without a value as `OK` (`tests/event_types.rs` pins each case).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use aws_lambda_events::sns::SnsEvent;

use crate::envelope::{eventbridge, typed, MalformedEvent};
pub use crate::states::AlarmState;
use crate::time::parse_timestamp_millis;

/// How the alarm reached medic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmShape {
    EventBridge,
    Direct,
    Sns,
}

/// What the alarm watches.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AlarmSubject {
    /// One metric; dimensions sorted by name.
    Metric { namespace: String, name: String, dimensions: Vec<(String, String)> },
    /// Metric math: the expressions, and the metrics they read.
    MetricMath { expressions: Vec<String> },
    /// A composite alarm's rule over other alarms.
    Composite { rule: String },
}

impl AlarmSubject {
    pub fn dimension(&self, name: &str) -> Option<&str> {
        match self {
            Self::Metric { dimensions, .. } => dimensions.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()),
            Self::MetricMath { .. } | Self::Composite { .. } => None,
        }
    }
}

/// One alarm state transition, whatever shape it came in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmChanged {
    pub alarm_name: String,
    /// Present in every shape AWS sends; `None` only for hand-made events.
    pub alarm_arn: Option<String>,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    pub changed_at_millis: i64,
    pub reason: String,
    pub subject: AlarmSubject,
    /// Only the SNS shape carries these; the others are completed with DescribeAlarms.
    pub comparison_operator: Option<String>,
    pub threshold: Option<f64>,
    pub shape: AlarmShape,
    pub account: String,
    pub region: String,
}

impl AlarmChanged {
    pub fn idempotency_key(&self) -> String {
        let alarm =
            self.alarm_arn.clone().unwrap_or_else(|| format!("{}:{}:{}", self.account, self.region, self.alarm_name));
        format!("alarm:{alarm}@{}:{}", self.changed_at_millis, self.state)
    }

    pub fn summary(&self) -> String {
        let transition = match self.previous_state {
            Some(previous) => format!("CloudWatch alarm {} went {previous} -> {}", self.alarm_name, self.state),
            None => format!("CloudWatch alarm {} is {}", self.alarm_name, self.state),
        };
        if self.reason.is_empty() {
            transition
        } else {
            format!("{transition} ({})", self.reason.trim_end_matches('.'))
        }
    }
}

pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: StateBlock,
    previous_state: Option<StateBlock>,
    configuration: Option<Configuration>,
}

#[derive(Debug, Deserialize, Serialize)]
struct StateBlock {
    value: AlarmState,
    #[serde(default)]
    reason: String,
    timestamp: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Configuration {
    #[serde(default)]
    metrics: Vec<MetricEntry>,
    alarm_rule: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricEntry {
    metric_stat: Option<MetricStat>,
    expression: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
struct MetricStat {
    metric: MetricId,
}

#[derive(Debug, Deserialize, Serialize)]
struct MetricId {
    namespace: String,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DirectAlarm {
    alarm_arn: Option<String>,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    region: String,
    alarm_data: AlarmDetail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage {
    alarm_name: String,
    new_state_value: AlarmState,
    old_state_value: Option<AlarmState>,
    #[serde(default)]
    new_state_reason: String,
    state_change_time: String,
    alarm_arn: Option<String>,
    #[serde(rename = "AWSAccountId", default)]
    aws_account_id: String,
    trigger: Option<SnsTrigger>,
    alarm_rule: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsTrigger {
    metric_name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<SnsDimension>,
    comparison_operator: Option<String>,
    threshold: Option<f64>,
    #[serde(default)]
    metrics: Vec<SnsMetricEntry>,
}

#[derive(Debug, Deserialize)]
struct SnsDimension {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetricEntry {
    expression: Option<String>,
}

/// Parses any of the three alarm shapes. An SNS event yields one change per record.
pub fn parse_alarm_event(raw: &Value) -> Result<Vec<AlarmChanged>, MalformedEvent> {
    let Some(object) = raw.as_object() else {
        return Err(malformed("a CloudWatch alarm event must be a JSON object"));
    };
    if object.contains_key("Records") {
        return parse_sns(raw);
    }
    if object.contains_key("alarmData") {
        if object.get("source").and_then(Value::as_str) != Some("aws.cloudwatch") {
            return Err(malformed("direct alarm action: `source` must be `aws.cloudwatch`"));
        }
        let direct: DirectAlarm = typed(raw, "direct alarm action")?;
        let arn = direct.alarm_arn.clone();
        return Ok(vec![from_detail(direct.alarm_data, arn, AlarmShape::Direct, direct.account_id, direct.region)?]);
    }
    let source = object.get("source").and_then(Value::as_str);
    let detail_type = object.get("detail-type").and_then(Value::as_str);
    if source == Some("aws.cloudwatch") && detail_type == Some(ALARM_STATE_CHANGE) {
        let delivered = eventbridge::<AlarmDetail>(raw, ALARM_STATE_CHANGE)?;
        let (account, region) = (delivered.account(), delivered.region());
        let event = delivered.event;
        let arn = event.resources.unwrap_or_default().into_iter().find(|r| r.contains(":alarm:"));
        return Ok(vec![from_detail(event.detail, arn, AlarmShape::EventBridge, account, region)?]);
    }
    Err(malformed(format!(
        "not a CloudWatch alarm event: expected EventBridge `{ALARM_STATE_CHANGE}`, a direct alarm action (`alarmData`) or SNS `Records`; got source {} and detail-type {}",
        source.map_or("(none)".to_owned(), |s| format!("`{s}`")),
        detail_type.map_or("(none)".to_owned(), |s| format!("`{s}`")),
    )))
}

fn from_detail(
    detail: AlarmDetail,
    alarm_arn: Option<String>,
    shape: AlarmShape,
    account: String,
    region: String,
) -> Result<AlarmChanged, MalformedEvent> {
    let changed_at_millis = millis(&detail.state.timestamp, "state.timestamp")?;
    let configuration = detail.configuration.unwrap_or_default();
    let subject = if let Some(rule) = configuration.alarm_rule {
        AlarmSubject::Composite { rule }
    } else {
        let expressions: Vec<String> = configuration.metrics.iter().filter_map(|m| m.expression.clone()).collect();
        let stats: Vec<&MetricId> =
            configuration.metrics.iter().filter_map(|m| m.metric_stat.as_ref().map(|s| &s.metric)).collect();
        match (expressions.is_empty(), stats.as_slice()) {
            (true, [metric]) => AlarmSubject::Metric {
                namespace: metric.namespace.clone(),
                name: metric.name.clone(),
                dimensions: metric.dimensions.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            },
            (false, _) => AlarmSubject::MetricMath { expressions },
            (true, []) => {
                return Err(malformed(format!(
                    "alarm {}: configuration has neither metrics nor alarmRule",
                    detail.alarm_name
                )))
            }
            (true, _) => AlarmSubject::MetricMath { expressions: vec![] },
        }
    };
    checked_ids(&detail.alarm_name, alarm_arn.as_deref(), &subject)?;
    Ok(AlarmChanged {
        alarm_name: detail.alarm_name,
        alarm_arn,
        state: detail.state.value,
        previous_state: detail.previous_state.map(|p| p.value),
        changed_at_millis,
        reason: detail.state.reason,
        subject,
        comparison_operator: None,
        threshold: None,
        shape,
        account,
        region,
    })
}

fn parse_sns(raw: &Value) -> Result<Vec<AlarmChanged>, MalformedEvent> {
    let event = SnsEvent::deserialize(raw).map_err(|e| malformed(format!("SNS Records: {e}")))?;
    if event.records.is_empty() {
        return Err(malformed("SNS event has no Records"));
    }
    event
        .records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            if record.event_source != "aws:sns" {
                return Err(malformed(format!(
                    "Records[{index}].EventSource is `{}`, not `aws:sns`",
                    record.event_source
                )));
            }
            let message: SnsAlarmMessage = serde_json::from_str(&record.sns.message).map_err(|e| {
                malformed(format!("Records[{index}].Sns.Message is not a CloudWatch alarm notification: {e}"))
            })?;
            from_sns_message(message, index)
        })
        .collect()
}

fn from_sns_message(message: SnsAlarmMessage, index: usize) -> Result<AlarmChanged, MalformedEvent> {
    let changed_at_millis = millis(&message.state_change_time, &format!("Records[{index}] StateChangeTime"))?;
    let (subject, comparison_operator, threshold) = match (message.alarm_rule, message.trigger) {
        (Some(rule), _) => (AlarmSubject::Composite { rule }, None, None),
        (None, Some(trigger)) => {
            let subject = match (trigger.metric_name, trigger.namespace) {
                (Some(name), Some(namespace)) => {
                    let mut dimensions: Vec<(String, String)> =
                        trigger.dimensions.into_iter().map(|d| (d.name, d.value)).collect();
                    dimensions.sort();
                    AlarmSubject::Metric { namespace, name, dimensions }
                }
                _ if !trigger.metrics.is_empty() => AlarmSubject::MetricMath {
                    expressions: trigger.metrics.into_iter().filter_map(|m| m.expression).collect(),
                },
                _ => {
                    return Err(malformed(format!(
                        "Records[{index}]: Trigger has neither MetricName and Namespace nor Metrics"
                    )))
                }
            };
            (subject, trigger.comparison_operator, trigger.threshold)
        }
        (None, None) => {
            return Err(malformed(format!("Records[{index}]: alarm notification has neither Trigger nor AlarmRule")))
        }
    };
    checked_ids(&message.alarm_name, message.alarm_arn.as_deref(), &subject)?;
    // The message's Region is a display name ("US East (N. Virginia)"); the ARN has the code.
    let region = message.alarm_arn.as_deref().and_then(|arn| arn.split(':').nth(3)).unwrap_or_default().to_owned();
    Ok(AlarmChanged {
        alarm_name: message.alarm_name,
        alarm_arn: message.alarm_arn,
        state: message.new_state_value,
        previous_state: message.old_state_value,
        changed_at_millis,
        reason: message.new_state_reason,
        subject,
        comparison_operator,
        threshold,
        shape: AlarmShape::Sns,
        account: message.aws_account_id,
        region,
    })
}

/// The alarm's name and ARN, and the dimensions medic passes to AWS calls, in their documented
/// formats.
fn checked_ids(name: &str, arn: Option<&str>, subject: &AlarmSubject) -> Result<(), MalformedEvent> {
    crate::ids::alarm_name("alarm name", name)?;
    if let Some(arn) = arn {
        crate::ids::arn("alarm ARN", arn, "cloudwatch")?;
    }
    if let Some(id) = subject.dimension("InstanceId") {
        crate::ids::instance_id("dimension InstanceId", id)?;
    }
    if let Some(group) = subject.dimension("AutoScalingGroupName") {
        crate::ids::group_name("dimension AutoScalingGroupName", group)?;
    }
    if let Some(target_group) = subject.dimension("TargetGroup") {
        crate::ids::target_group_dimension("dimension TargetGroup", target_group)?;
    }
    Ok(())
}

fn millis(text: &str, field: &str) -> Result<i64, MalformedEvent> {
    parse_timestamp_millis(text).ok_or_else(|| malformed(format!("{field} `{text}` is not a timestamp")))
}

fn malformed(reason: impl Into<String>) -> MalformedEvent {
    MalformedEvent { reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const SHAPES: [&str; 3] = ["eventbridge", "direct", "sns"];

    fn fixture(name: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/alarm-responder").join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn metric(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> AlarmSubject {
        AlarmSubject::Metric {
            namespace: namespace.into(),
            name: name.into(),
            dimensions: dimensions.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn given_each_case_in_three_shapes_when_parsed_then_same_transition_and_key() {
        let asg = [("AutoScalingGroupName", "web-prod")];
        let cases: [(&str, &str, AlarmState, AlarmSubject, Option<&str>); 7] = [
            (
                "cpu-high",
                "web-prod-cpu-high",
                AlarmState::Alarm,
                metric("AWS/EC2", "CPUUtilization", &asg),
                Some("GreaterThanThreshold"),
            ),
            (
                "cpu-low",
                "web-prod-cpu-low",
                AlarmState::Alarm,
                metric("AWS/EC2", "CPUUtilization", &asg),
                Some("LessThanThreshold"),
            ),
            (
                "status-check-failed",
                "web-prod-i-0a1b2c3d4e5f67890-status",
                AlarmState::Alarm,
                metric("AWS/EC2", "StatusCheckFailed", &[("InstanceId", "i-0a1b2c3d4e5f67890")]),
                Some("GreaterThanOrEqualToThreshold"),
            ),
            (
                "unhealthy-hosts",
                "web-prod-unhealthy-hosts",
                AlarmState::Alarm,
                metric(
                    "AWS/ApplicationELB",
                    "UnHealthyHostCount",
                    &[
                        ("LoadBalancer", "app/web-prod/fedcba9876543210"),
                        ("TargetGroup", "targetgroup/web-prod/0123456789abcdef"),
                    ],
                ),
                Some("GreaterThanThreshold"),
            ),
            (
                "ok-transition",
                "web-prod-cpu-high",
                AlarmState::Ok,
                metric("AWS/EC2", "CPUUtilization", &asg),
                Some("GreaterThanThreshold"),
            ),
            (
                "metric-math",
                "web-prod-error-rate",
                AlarmState::Alarm,
                AlarmSubject::MetricMath { expressions: vec!["m1 / m2 * 100".into()] },
                Some("GreaterThanThreshold"),
            ),
            (
                "composite",
                "web-prod-degraded",
                AlarmState::Alarm,
                AlarmSubject::Composite { rule: "ALARM(web-prod-cpu-high) AND ALARM(web-prod-error-rate)".into() },
                None,
            ),
        ];
        for (case, name, state, subject, sns_operator) in cases {
            let mut keys = Vec::new();
            for shape in SHAPES {
                let file = format!("{shape}-{case}.json");
                let changes = parse_alarm_event(&fixture(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(changes.len(), 1, "{file}");
                let change = &changes[0];
                assert_eq!(change.alarm_name, name, "{file}");
                assert_eq!(change.state, state, "{file}");
                assert_eq!(change.subject, subject, "{file}");
                assert_eq!(change.changed_at_millis, 1_795_252_502_118, "{file}");
                assert_eq!((change.account.as_str(), change.region.as_str()), ("123456789012", "us-east-1"), "{file}");
                let operator = if shape == "sns" { sns_operator } else { None };
                assert_eq!(change.comparison_operator.as_deref(), operator, "{file}");
                keys.push(change.idempotency_key());
            }
            assert!(keys.iter().all(|k| *k == keys[0]), "{case}: {keys:?}");
            assert_eq!(
                keys[0],
                format!("alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}@1795252502118:{state}")
            );
        }
    }

    #[test]
    fn given_malformed_alarm_events_when_parsed_then_error_names_the_problem() {
        let cases = [
            (
                fixture("eventbridge-malformed-missing-state.json"),
                "CloudWatch Alarm State Change: missing field `state`",
            ),
            (fixture("direct-malformed-unknown-state.json"), "direct alarm action: unknown variant `ON_FIRE`"),
            (
                fixture("sns-malformed-message-not-json.json"),
                "Records[0].Sns.Message is not a CloudWatch alarm notification",
            ),
            (serde_json::json!({"Records": []}), "SNS event has no Records"),
            (
                {
                    let mut other_source = fixture("sns-cpu-high.json");
                    other_source["Records"][0]["EventSource"] = "aws:sqs".into();
                    other_source
                },
                "Records[0].EventSource is `aws:sqs`",
            ),
            (
                serde_json::json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}),
                "not a CloudWatch alarm event",
            ),
            (serde_json::json!({"source": "aws.s3", "alarmData": {}}), "`source` must be `aws.cloudwatch`"),
            (serde_json::json!("ALARM"), "must be a JSON object"),
        ];
        for (event, expected) in cases {
            let error = parse_alarm_event(&event).expect_err("must be rejected");
            assert!(error.to_string().contains(expected), "{error} should contain {expected}");
        }
    }

    #[test]
    fn given_sns_event_with_two_records_when_parsed_then_two_changes() {
        let mut event = fixture("sns-cpu-high.json");
        let second = fixture("sns-cpu-low.json")["Records"][0].clone();
        event["Records"].as_array_mut().unwrap().push(second);
        let names: Vec<String> = parse_alarm_event(&event).unwrap().into_iter().map(|c| c.alarm_name).collect();
        assert_eq!(names, ["web-prod-cpu-high", "web-prod-cpu-low"]);
    }
}
