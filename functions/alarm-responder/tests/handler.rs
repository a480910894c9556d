//! The handler with in-memory ports over every `events/alarm-responder` file: each of the three
//! shapes of each case reaches the same decision. AWS behaviour itself is in `emulated_aws.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::collections::HashMap;
use std::path::PathBuf;

use alarm_responder::Responder;
use lambda_runtime::Diagnostic;
use medic_aws::fakes::{FakeAlarms, FakeInstances, FakeTargets, MemoryLedger, MemoryNotifier};
use medic_core::alarm_responder::AlarmState;
use medic_core::alarm_responder::{AlarmFacts, AlarmNow, GroupCapacity};
use medic_core::scope::MANAGED_TAG;
use medic_core::{Policy, Status};
use serde_json::Value;

const NOW: i64 = 1_795_260_000;

type Fake = Responder<FakeAlarms, FakeInstances, FakeTargets, MemoryLedger, MemoryNotifier>;

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn responder() -> Fake {
    let operators = [
        ("web-prod-cpu-high", "GreaterThanThreshold"),
        ("web-prod-cpu-low", "LessThanThreshold"),
        ("web-prod-i-0a1b2c3d4e5f67890-status", "GreaterThanOrEqualToThreshold"),
        ("web-prod-unhealthy-hosts", "GreaterThanThreshold"),
        ("web-prod-error-rate", "GreaterThanThreshold"),
    ];
    let facts: HashMap<String, AlarmFacts> = operators
        .iter()
        .map(|(name, op)| {
            ((*name).to_owned(), AlarmFacts { tags: vec![], comparison_operator: Some((*op).to_owned()), now: None })
        })
        .collect();
    Responder {
        alarms: FakeAlarms { facts, ..FakeAlarms::default() },
        instances: FakeInstances {
            observation: medic_aws::fakes::asg_member("running", NOW),
            group: Some((
                GroupCapacity { min: 1, max: 4, desired: 2, ..GroupCapacity::default() },
                tags(&[(MANAGED_TAG, "true")]),
            )),
            ..FakeInstances::default()
        },
        targets: FakeTargets { unhealthy: vec!["i-0ccc0000000000001".into()] },
        ledger: MemoryLedger::default(),
        notifier: MemoryNotifier::default(),
        policy: Policy::default(),
    }
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/alarm-responder").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn actions(responder: &Fake) -> Vec<String> {
    let calls = responder.instances.calls.lock().unwrap();
    calls.iter().filter(|c| !c.starts_with("observe")).cloned().collect()
}

#[tokio::test]
async fn given_each_alarm_file_when_handled_then_every_shape_decides_the_same() {
    let cases: [(&str, Status, &[&str]); 7] = [
        ("cpu-high", Status::Acted, &["scale-out web-prod"]),
        ("cpu-low", Status::Acted, &["scale-in web-prod"]),
        ("status-check-failed", Status::Acted, &["replace i-0a1b2c3d4e5f67890"]),
        ("unhealthy-hosts", Status::Acted, &["replace i-0ccc0000000000001"]),
        ("composite", Status::Alerted, &[]),
        ("metric-math", Status::Alerted, &[]),
        ("ok-transition", Status::Skipped, &[]),
    ];
    let malformed = [
        ("eventbridge-malformed-missing-state.json", "missing field `state`"),
        ("direct-malformed-unknown-state.json", "unknown variant `ON_FIRE`"),
        ("sns-malformed-message-not-json.json", "Sns.Message is not a CloudWatch alarm notification"),
    ];
    let mut covered: Vec<String> = malformed.iter().map(|(f, _)| (*f).to_owned()).collect();
    for (case, status, expected_actions) in cases {
        for shape in ["eventbridge", "direct", "sns"] {
            let file = format!("{shape}-{case}.json");
            let responder = responder();
            let outcomes = responder.handle(fixture(&file), NOW).await.unwrap();
            assert_eq!(outcomes.len(), 1, "{file}");
            assert_eq!(outcomes[0].status, status, "{file}: {:?}", outcomes[0]);
            assert_eq!(actions(&responder), expected_actions, "{file}");
            if case == "ok-transition" {
                assert!(responder.alarms.calls.lock().unwrap().is_empty(), "{file}: an OK transition reads nothing");
            }
            covered.push(file);
        }
    }
    for (file, says) in malformed {
        let responder = responder();
        let error = responder.handle(fixture(file), NOW).await.unwrap_err();
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "NonRetryable", "{file}");
        assert!(diagnostic.error_message.contains(says), "{file}: {}", diagnostic.error_message);
        assert!(actions(&responder).is_empty());
    }
    let mut files: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/alarm-responder"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    files.sort();
    covered.sort();
    assert_eq!(files, covered, "every events/alarm-responder file needs a row");
}

#[tokio::test]
async fn given_sns_event_with_two_alarms_when_handled_then_one_outcome_each() {
    let mut event = fixture("sns-cpu-high.json");
    let second = fixture("sns-status-check-failed.json")["Records"][0].clone();
    event["Records"].as_array_mut().unwrap().push(second);
    let responder = responder();

    let outcomes = responder.handle(event, NOW).await.unwrap();

    let statuses: Vec<Status> = outcomes.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [Status::Acted, Status::Acted]);
    assert_eq!(actions(&responder), ["scale-out web-prod", "replace i-0a1b2c3d4e5f67890"]);
}

#[tokio::test]
async fn given_notify_on_ok_when_alarm_returns_to_ok_then_one_info_notice_and_nothing_read() {
    let mut responder = responder();
    responder.policy.notify_on_ok = true;

    let first = responder.handle(fixture("eventbridge-ok-transition.json"), NOW).await.unwrap();
    let again = responder.handle(fixture("sns-ok-transition.json"), NOW).await.unwrap();

    assert_eq!((first[0].status, again[0].status), (Status::Alerted, Status::Duplicate));
    assert_eq!(responder.notifier.subjects(), ["[INFO] alarm web-prod-cpu-high: back to OK"]);
    assert!(responder.alarms.calls.lock().unwrap().is_empty());
    assert!(responder.instances.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rule13_given_hostile_alarm_dimensions_when_handled_then_non_retryable_naming_them_and_no_aws_call() {
    let rows = [
        ("eventbridge-status-check-failed.json", "InstanceId", "i-../../etc/passwd\"; DROP"),
        ("eventbridge-cpu-high.json", "AutoScalingGroupName", "web prod:*"),
        ("eventbridge-unhealthy-hosts.json", "TargetGroup", "targetgroup/web/../../x"),
    ];
    for (file, dimension, value) in rows {
        let responder = responder();
        let mut event = fixture(file);
        event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"][dimension] =
            Value::from(value);

        let error = responder.handle(event, NOW).await.expect_err(file);

        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "NonRetryable", "{file}");
        assert!(diagnostic.error_message.contains(dimension), "{file}: {}", diagnostic.error_message);
        assert!(responder.instances.calls.lock().unwrap().is_empty(), "{file}");
        assert!(responder.alarms.calls.lock().unwrap().is_empty(), "{file}");
    }
}

#[tokio::test]
async fn rule4_given_an_alarm_outside_the_name_prefix_on_a_shared_topic_when_handled_then_skipped_without_any_aws_call()
{
    let mut responder = responder();
    responder.policy.alarm_name_prefix = Some("api-prod-".into());

    let outcomes = responder.handle(fixture("sns-cpu-high.json"), NOW).await.unwrap();

    assert_eq!(outcomes[0].label.as_deref(), Some("alarm-outside-prefix"), "{outcomes:?}");
    assert!(responder.alarms.calls.lock().unwrap().is_empty(), "no DescribeAlarms, no AccessDenied");
    assert!(responder.instances.calls.lock().unwrap().is_empty());
    assert!(responder.ledger.keys().is_empty(), "nothing claimed");
}

#[tokio::test]
async fn rule4_given_an_alarm_back_to_ok_before_medic_looks_when_handled_then_skipped_and_nothing_changed() {
    let mut responder = responder();
    let facts = responder.alarms.facts.get_mut("web-prod-cpu-high").unwrap();
    facts.now = Some(AlarmNow { state: AlarmState::Ok, changed_at_millis: 1_795_252_600_000 });

    let outcomes = responder.handle(fixture("eventbridge-cpu-high.json"), NOW).await.unwrap();

    assert_eq!(outcomes[0].label.as_deref(), Some("alarm-no-longer-firing"), "{outcomes:?}");
    assert!(actions(&responder).is_empty(), "{:?}", actions(&responder));
}

#[tokio::test]
async fn rule12_given_a_target_group_with_three_unhealthy_targets_when_handled_then_their_instances_are_observed_in_one_batch(
) {
    let mut responder = responder();
    responder.targets.unhealthy =
        vec!["i-0ccc0000000000001".into(), "i-0ccc0000000000002".into(), "i-0ccc0000000000003".into()];

    responder.handle(fixture("eventbridge-unhealthy-hosts.json"), NOW).await.unwrap();

    let calls = responder.instances.calls.lock().unwrap().clone();
    let observations: Vec<&String> = calls.iter().filter(|c| c.starts_with("observe")).collect();
    let batch = "observe many i-0ccc0000000000001,i-0ccc0000000000002,i-0ccc0000000000003";
    assert_eq!(observations, [batch], "one observation for all targets: {calls:?}");
}
