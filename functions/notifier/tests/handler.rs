//! The notifier with in-memory ports over every `events/notifier` file, and the launch-failure
//! escalation. The same escalation against moto is in `emulated_aws.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::path::PathBuf;

use lambda_runtime::Diagnostic;
use medic_aws::fakes::{MemoryLedger, MemoryNotifier};
use medic_core::{Policy, Status};
use notifier::NoticeDesk;
use serde_json::{json, Value};

const NOW: i64 = 1_795_252_000;

fn desk() -> NoticeDesk<MemoryLedger, MemoryNotifier> {
    NoticeDesk { ledger: MemoryLedger::default(), notifier: MemoryNotifier::default(), policy: Policy::default() }
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/notifier").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn given_each_notifier_file_when_handled_then_one_notice_of_its_severity() {
    let rows = [
        ("launch-successful.json", "info"),
        ("launch-unsuccessful.json", "warning"),
        ("terminate-successful.json", "info"),
        ("terminate-unsuccessful.json", "warning"),
        ("launch-lifecycle-action.json", "info"),
        ("terminate-lifecycle-action.json", "info"),
        ("health-instance-retirement.json", "warning"),
    ];
    for (file, severity) in rows {
        let desk = desk();
        let outcome = desk.handle(fixture(file), NOW).await.unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert_eq!((outcome.status, outcome.severity.map(|s| s.as_str())), (Status::Alerted, Some(severity)), "{file}");
        assert_eq!(desk.notifier.sent.lock().unwrap().len(), 1, "{file}");
    }
    let error = desk().handle(fixture("malformed-missing-group.json"), NOW).await.expect_err("malformed");
    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "NonRetryable");
    assert!(diagnostic.error_message.contains("AutoScalingGroupName"), "{}", diagnostic.error_message);
}

#[tokio::test]
async fn given_five_launch_failures_and_a_duplicate_when_handled_then_two_warnings_one_critical_then_quiet() {
    let desk = desk();
    let mut statuses = Vec::new();
    for n in 0..5 {
        let mut event = fixture("launch-unsuccessful.json");
        event["id"] = json!(format!("launch-failure-{n}"));
        statuses.push(desk.handle(event.clone(), NOW).await.unwrap().status);
        if n == 0 {
            assert_eq!(desk.handle(event, NOW).await.unwrap().status, Status::Duplicate, "a redelivery counts once");
        }
    }
    assert_eq!(statuses, [Status::Alerted, Status::Alerted, Status::Alerted, Status::Skipped, Status::Skipped]);
    let subjects = desk.notifier.subjects();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(subjects[0].starts_with("[WARNING] asg web-prod: launch failed (1 of 3 in 15 min)"), "{subjects:?}");
    assert!(subjects[1].starts_with("[WARNING] asg web-prod: launch failed (2 of 3 in 15 min)"), "{subjects:?}");
    assert!(
        subjects[2].starts_with("[CRITICAL] ASG web-prod cannot launch: We currently do not have sufficient t3.large"),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn given_three_failures_spread_over_twenty_minutes_when_handled_then_no_critical() {
    let desk = desk();
    for (n, time) in ["2026-11-21T09:00:00Z", "2026-11-21T09:10:00Z", "2026-11-21T09:20:00Z"].iter().enumerate() {
        let mut event = fixture("launch-unsuccessful.json");
        event["id"] = json!(format!("spread-{n}"));
        event["time"] = json!(time);
        desk.handle(event, NOW).await.unwrap();
    }
    let subjects = desk.notifier.subjects();
    assert!(subjects.iter().all(|s| s.starts_with("[WARNING]")), "{subjects:?}");
    assert!(subjects[2].contains("(2 of 3 in 15 min)"), "09:00 is more than 15 minutes before 09:20: {subjects:?}");
}

#[tokio::test]
async fn given_failures_continuing_when_the_quiet_period_ends_then_the_next_critical_goes_out() {
    let desk = desk();
    let times = ["09:00:00", "09:01:00", "09:14:00", "09:16:00", "09:20:00", "09:30:00"];
    for (n, time) in times.iter().enumerate() {
        let mut event = fixture("launch-unsuccessful.json");
        event["id"] = json!(format!("continuing-{n}"));
        event["time"] = json!(format!("2026-11-21T{time}Z"));
        desk.handle(event, NOW).await.unwrap();
    }
    let critical: Vec<String> = desk.notifier.subjects().into_iter().filter(|s| s.starts_with("[CRITICAL]")).collect();
    // 09:14 escalates; 09:16 and 09:20 fall in its quiet period (no new notice just because a
    // clock window turned at 09:15); 09:30 finds 09:16, 09:20 and itself and escalates again.
    assert_eq!(critical.len(), 2, "{critical:?}");
}
