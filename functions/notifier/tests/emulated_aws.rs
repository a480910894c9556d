//! The notifier against moto server over HTTP, through the real SDK clients: launch failures
//! counted in the DynamoDB ledger, notices read back from the SQS inbox subscribed to the topic.
//!
//! Run with `make test`; plain `cargo test` skips these because they are `#[ignore]`d.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::path::PathBuf;

use medic_core::{Policy, Status};
use medic_testbench::{now, unique, World};
use notifier::AwsNoticeDesk;
use serde_json::{json, Value};

fn launch_failure(group: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/notifier/launch-unsuccessful.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["id"] = json!(unique("launch-failure"));
    event["detail"]["AutoScalingGroupName"] = json!(group);
    event["time"] = json!(medic_core::time::format_timestamp(now()));
    event
}

#[tokio::test]
#[ignore = "needs moto: run with `make test`"]
async fn given_three_launch_failures_of_one_group_when_handled_then_exactly_one_critical_notice() {
    let world = World::new("notifier").await;
    let desk = AwsNoticeDesk::from_sdk_config(&world.sdk, world.config(Policy::default()));
    let group = format!("{}-web", world.name);

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let event = launch_failure(&group);
        statuses.push(desk.handle(event.clone(), now()).await.unwrap().status);
        assert_eq!(desk.handle(event, now()).await.unwrap().status, Status::Duplicate, "a redelivery counts once");
    }
    let fourth = desk.handle(launch_failure(&group), now()).await.unwrap();
    let other_group = desk.handle(launch_failure(&format!("{group}-other")), now()).await.unwrap();

    assert_eq!(statuses, [Status::Alerted; 3]);
    assert_eq!(fourth.label.as_deref(), Some("launch-failures-escalated"), "{fourth:?}");
    assert_eq!(other_group.severity.map(|s| s.as_str()), Some("warning"), "another group counts on its own");
    let notices = world.notices().await;
    let critical: Vec<&String> =
        notices.iter().filter(|(_, severity, _)| severity == "critical").map(|(s, _, _)| s).collect();
    assert_eq!(critical.len(), 1, "{notices:?}");
    assert!(
        critical[0].starts_with(&format!("[CRITICAL] ASG {group} cannot launch: We currently do not have")),
        "{}",
        critical[0]
    );
    let warnings = notices.iter().filter(|(_, severity, _)| severity == "warning").count();
    assert_eq!(warnings, 3, "two for this group before the threshold, one for the other group: {notices:?}");
}
