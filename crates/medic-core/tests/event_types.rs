//! Why medic-core keeps its own types for two of the shapes it parses, each pinned with the input
//! that shows it. The envelopes come from aws_lambda_events (EventBridge for every `aws.*`
//! source, SNS for SNS-wrapped alarms); the CloudWatch alarm payloads do not:
//! - the SNS alarm message: the crate's `CloudWatchAlarmPayload` rejects real messages;
//! - the direct alarm action: the crate's `CloudWatchAlarm` rejects metric math with typed
//!   configuration, and reads a state without a value as `OK`, where medic must refuse it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::path::PathBuf;

use aws_lambda_events::cloudwatch_alarms::{CloudWatchAlarm, CloudWatchAlarmStateValue, CloudWatchMetricAlarm};
use aws_lambda_events::sns::{CloudWatchAlarmPayload, SnsEvent};
use medic_core::alarm_responder::{parse_alarm_event, AlarmShape, AlarmSubject};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/alarm-responder").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sns_message(event: &Value) -> String {
    event["Records"][0]["Sns"]["Message"].as_str().unwrap().to_owned()
}

fn with_sns_message(mut event: Value, message: &Value) -> Value {
    event["Records"][0]["Sns"]["Message"] = message.to_string().into();
    event
}

#[test]
fn given_every_sns_alarm_file_when_read_as_the_crates_sns_event_then_accepted() {
    for name in ["sns-composite.json", "sns-cpu-high.json", "sns-metric-math.json", "sns-ok-transition.json"] {
        let event: SnsEvent = serde_json::from_value(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(event.records[0].event_source, "aws:sns");
    }
}

#[test]
fn given_a_composite_alarms_sns_message_when_read_as_the_crates_payload_then_rejected_and_medic_reads_it() {
    let event = fixture("sns-composite.json");
    let error = serde_json::from_str::<CloudWatchAlarmPayload>(&sns_message(&event)).expect_err("no Trigger");
    assert!(error.to_string().contains("missing field `Trigger`"), "{error}");
    let changes = parse_alarm_event(&event).unwrap();
    assert!(matches!(changes[0].subject, AlarmSubject::Composite { .. }), "{changes:?}");
}

#[test]
fn given_an_alarm_without_a_description_when_read_as_the_crates_payload_then_rejected_and_medic_reads_it() {
    // CloudWatch sends `"AlarmDescription": null` for an alarm that has none.
    let event = fixture("sns-cpu-high.json");
    let mut message: Value = serde_json::from_str(&sns_message(&event)).unwrap();
    message["AlarmDescription"] = Value::Null;
    let error = serde_json::from_value::<CloudWatchAlarmPayload>(message.clone()).expect_err("null description");
    assert!(error.to_string().contains("invalid type: null"), "{error}");
    let changes = parse_alarm_event(&with_sns_message(event, &message)).unwrap();
    assert_eq!(changes[0].alarm_name, "web-prod-cpu-high");
}

#[test]
fn given_a_direct_metric_math_alarm_when_read_as_the_crates_metric_alarm_then_rejected_and_medic_reads_it() {
    let event = fixture("direct-metric-math.json");
    let error = serde_json::from_value::<CloudWatchMetricAlarm>(event.clone()).expect_err("no metricStat");
    assert!(error.to_string().contains("missing field `metricStat`"), "{error}");
    let changes = parse_alarm_event(&event).unwrap();
    assert!(matches!(changes[0].subject, AlarmSubject::MetricMath { .. }), "{changes:?}");
    assert_eq!(changes[0].shape, AlarmShape::Direct);
}

#[test]
fn given_a_direct_alarm_whose_state_has_no_value_when_read_by_the_crate_then_ok_and_medic_refuses_it() {
    let mut event = fixture("direct-cpu-high.json");
    event["alarmData"]["state"].as_object_mut().unwrap().remove("value");
    let read: CloudWatchAlarm = serde_json::from_value(event.clone()).expect("the crate fills in a default");
    assert_eq!(read.alarm_data.state.unwrap().value, CloudWatchAlarmStateValue::Ok);
    let error = parse_alarm_event(&event).expect_err("an alarm state without a value is malformed");
    assert!(error.to_string().contains("missing field `value`"), "{error}");
}
