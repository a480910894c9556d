//! The alarm responder against moto server over HTTP, through the real SDK clients: each test
//! builds its own world, delivers an alarm event (rebound from an `events/alarm-responder` file to
//! the world's alarm and resources), and reads the result back from the emulated AWS.
//!
//! Run with `make test`; plain `cargo test` skips these because they are `#[ignore]`d.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::path::PathBuf;

use alarm_responder::AwsResponder;
use medic_aws::{Members, Reach};
use medic_core::{Outcome, Policy, Status};
use medic_testbench::{in_account, now, unique, unique_account, GroupSpec, MetricAlarmSpec, World, MANAGED};
use serde_json::{json, Value};

fn responder(world: &World, policy: Policy) -> AwsResponder {
    AwsResponder::from_sdk_config(&world.sdk, world.config(policy))
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/alarm-responder").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An EventBridge alarm event from a fixture, rebound to `alarm` and its dimensions, with the
/// state change at `changed_at` (a new time is a new transition).
fn eventbridge(file: &str, alarm: &str, arn: &str, dimensions: Value, changed_at: &str) -> Value {
    let mut event = fixture(&format!("eventbridge-{file}"));
    event["id"] = json!(medic_testbench::unique("event"));
    event["resources"] = json!([arn]);
    event["detail"]["alarmName"] = json!(alarm);
    event["detail"]["state"]["timestamp"] = json!(changed_at);
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = dimensions;
    event
}

/// The same transition as the SNS shape delivers it.
fn sns(file: &str, alarm: &str, arn: &str, dimensions: Value, changed_at: &str) -> Value {
    let mut event = fixture(&format!("sns-{file}"));
    let mut message: Value = serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    message["AlarmName"] = json!(alarm);
    message["AlarmArn"] = json!(arn);
    message["StateChangeTime"] = json!(changed_at);
    message["Trigger"]["Dimensions"] =
        json!(dimensions.as_object().unwrap().iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>());
    event["Records"][0]["Sns"]["Message"] = json!(message.to_string());
    event
}

/// The same transition as a direct Lambda alarm action delivers it.
fn direct(file: &str, alarm: &str, arn: &str, dimensions: Value, changed_at: &str) -> Value {
    let mut event = fixture(&format!("direct-{file}"));
    event["alarmArn"] = json!(arn);
    event["alarmData"]["alarmName"] = json!(alarm);
    event["alarmData"]["state"]["timestamp"] = json!(changed_at);
    event["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = dimensions;
    event
}

async fn one(responder: &AwsResponder, event: Value) -> Outcome {
    let mut outcomes = responder.handle(event, now()).await.unwrap();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes.remove(0)
}

/// A tagged group and a CPU alarm on it.
async fn cpu_world(prefix: &str, min: i32, max: i32, desired: i32, high: bool) -> (World, String, String, String) {
    let world = World::new(prefix).await;
    let (group, alarm, arn) = cpu_alarm(&world, min, max, desired, high).await;
    (world, group, alarm, arn)
}

/// In `world`: a tagged group and a CPU alarm on it (group, alarm, alarm ARN).
async fn cpu_alarm(world: &World, min: i32, max: i32, desired: i32, high: bool) -> (String, String, String) {
    let spec = GroupSpec { min, max, desired, grace_seconds: 0, tags: &[MANAGED], target_group_arn: None };
    let (group, _) = world.group_with(spec).await;
    let alarm = format!("{group}-cpu-{}", if high { "high" } else { "low" });
    let arn = world
        .metric_alarm(MetricAlarmSpec {
            name: &alarm,
            namespace: "AWS/EC2",
            metric: "CPUUtilization",
            dimensions: &[("AutoScalingGroupName", &group)],
            operator: if high { "GreaterThanThreshold" } else { "LessThanThreshold" },
            threshold: if high { 70.0 } else { 30.0 },
            tags: &[],
        })
        .await;
    (group, alarm, arn)
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn org_given_one_group_and_alarm_name_in_two_accounts_when_a_members_alarm_fires_then_only_that_account_scales() {
    let home = World::new("orgalarm").await;
    let (a, b) = (unique_account(), unique_account());
    let name = unique("orgcpu");
    let in_a = World::named(name.clone(), in_account(&a, "us-east-1").await).await;
    let in_b = World::named(name, in_account(&b, "us-east-1").await).await;
    let (group, alarm, arn) = cpu_alarm(&in_a, 1, 4, 2, true).await;
    let (twin, twin_alarm, _) = cpu_alarm(&in_b, 1, 4, 2, true).await;
    assert_eq!((&group, &alarm), (&twin, &twin_alarm), "one group and alarm name in both accounts");
    let medic = Members::<AwsResponder>::new(home.sdk.clone(), home.central_config(Policy::default(), &[]));
    let mut event =
        eventbridge("cpu-high.json", &alarm, &arn, json!({"AutoScalingGroupName": group}), &in_a.fire(&alarm).await);
    event["account"] = json!(a);

    let outcome = match medic.reach(&event, now()).await.unwrap() {
        Reach::Ready(responder) => one(&responder, event).await,
        Reach::Refused(skip) => skip,
    };

    assert_eq!((outcome.status, outcome.account.as_deref()), (Status::Acted, Some(a.as_str())), "{outcome:?}");
    assert_eq!(in_a.desired(&group).await, 3);
    assert_eq!(in_b.desired(&twin).await, 2, "account B's group of the same name is untouched");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_group_2_of_4_when_cpu_high_then_desired_3_and_redelivery_in_another_shape_changes_nothing() {
    let (world, group, alarm, arn) = cpu_world("hi", 1, 4, 2, true).await;
    let responder = responder(&world, Policy::default());
    let dims = json!({"AutoScalingGroupName": group});

    let t1 = world.fire(&alarm).await;
    let first = one(&responder, eventbridge("cpu-high.json", &alarm, &arn, dims.clone(), &t1)).await;

    assert_eq!(first.status, Status::Acted, "{first:?}");
    assert_eq!(world.desired(&group).await, 3);
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].0, format!("[WARNING] asg {group}: scaled out 2 -> 3 (alarm {alarm})"));
    assert!(notices[0].2.contains("Threshold Crossed: 2 out of the last 2 datapoints"), "{}", notices[0].2);

    let again = one(&responder, sns("cpu-high.json", &alarm, &arn, dims, &t1)).await;

    assert_eq!(again.status, Status::Duplicate, "{again:?}");
    assert_eq!(world.desired(&group).await, 3);
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_recent_scale_out_when_alarm_fires_again_then_cooldown_holds_capacity() {
    let (world, group, alarm, arn) = cpu_world("cool", 1, 4, 2, true).await;
    let responder = responder(&world, Policy::default());
    let dims = json!({"AutoScalingGroupName": group});
    let t1 = world.fire(&alarm).await;
    assert_eq!(one(&responder, direct("cpu-high.json", &alarm, &arn, dims.clone(), &t1)).await.status, Status::Acted);

    // SNS-shaped: the operator comes from the message, not from DescribeAlarms.
    let t2 = world.fire(&alarm).await;
    let second = one(&responder, sns("cpu-high.json", &alarm, &arn, dims, &t2)).await;

    assert_eq!((second.status, second.label.as_deref()), (Status::Skipped, Some("cooldown")), "{second:?}");
    assert!(second.reason.starts_with("in cooldown until"), "{}", second.reason);
    assert_eq!(world.desired(&group).await, 3);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_group_at_max_when_cpu_high_then_warning_and_no_change() {
    let (world, group, alarm, arn) = cpu_world("max", 1, 4, 4, true).await;

    let outcome = one(
        &responder(&world, Policy::default()),
        eventbridge("cpu-high.json", &alarm, &arn, json!({"AutoScalingGroupName": group}), &world.fire(&alarm).await),
    )
    .await;

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    assert_eq!(world.desired(&group).await, 4);
    let notices = world.notices().await;
    assert_eq!((notices.len(), notices[0].1.as_str()), (1, "warning"));
    assert!(notices[0].0.contains("at max capacity (4)"), "{}", notices[0].0);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_cpu_low_when_alarm_fires_then_scales_in_but_never_below_min() {
    let (world, group, alarm, arn) = cpu_world("lo", 1, 4, 2, false).await;
    let dims = json!({"AutoScalingGroupName": group});
    let t1 = world.fire(&alarm).await;
    let scaled =
        one(&responder(&world, Policy::default()), eventbridge("cpu-low.json", &alarm, &arn, dims.clone(), &t1)).await;
    assert_eq!(scaled.status, Status::Acted, "{scaled:?}");
    assert_eq!(world.desired(&group).await, 1);

    // Now at min; no cooldown in the way, so only the bound stops it.
    let policy = Policy { scale_in_cooldown_seconds: 0, ..Policy::default() };
    let t2 = world.fire(&alarm).await;
    let at_min = one(&responder(&world, policy), eventbridge("cpu-low.json", &alarm, &arn, dims, &t2)).await;

    assert_eq!((at_min.status, at_min.label.as_deref()), (Status::Skipped, Some("at-min-capacity")), "{at_min:?}");
    assert_eq!(world.desired(&group).await, 1);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_ok_transition_when_delivered_then_nothing_changes() {
    let (world, group, alarm, arn) = cpu_world("ok", 1, 4, 2, true).await;
    let t1 = world.set_alarm_state(&alarm, aws_sdk_cloudwatch::types::StateValue::Ok).await;
    let mut event = eventbridge("ok-transition.json", &alarm, &arn, json!({"AutoScalingGroupName": group}), &t1);
    event["detail"]["state"]["value"] = json!("OK");

    let outcome = one(&responder(&world, Policy::default()), event).await;

    assert_eq!(outcome.label.as_deref(), Some("alarm-not-firing"), "{outcome:?}");
    assert_eq!(world.desired(&group).await, 2);
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_unhealthy_targets_when_alarm_fires_then_exactly_those_instances_marked_unhealthy() {
    let world = World::new("tg").await;
    let tg_arn = world.target_group().await;
    let spec =
        GroupSpec { min: 1, max: 5, desired: 3, grace_seconds: 0, tags: &[MANAGED], target_group_arn: Some(&tg_arn) };
    let (_, instances) = world.group_with(spec).await;
    // moto cannot fail a health check; a stopped instance is a target that serves nothing
    // (`unused`, `Target.InvalidState`), which medic replaces too.
    world.stop(&instances[1]).await;
    let target_group = format!("targetgroup/{}", tg_arn.split_once(":targetgroup/").unwrap().1);
    let alarm = format!("{}-unhealthy-hosts", world.name);
    let arn = world
        .metric_alarm(MetricAlarmSpec {
            name: &alarm,
            namespace: "AWS/ApplicationELB",
            metric: "UnHealthyHostCount",
            dimensions: &[("TargetGroup", &target_group)],
            operator: "GreaterThanThreshold",
            threshold: 0.0,
            tags: &[],
        })
        .await;

    let outcome = one(
        &responder(&world, Policy::default()),
        eventbridge(
            "unhealthy-hosts.json",
            &alarm,
            &arn,
            json!({"TargetGroup": target_group}),
            &world.fire(&alarm).await,
        ),
    )
    .await;

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    let mut health = Vec::new();
    for instance in &instances {
        health.push(world.health(instance).await);
    }
    assert_eq!(health, ["HEALTHY", "UNHEALTHY", "HEALTHY"]);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_status_check_failed_on_asg_member_when_alarm_fires_then_replaced() {
    let world = World::new("sc").await;
    let (_, instances) = world.group(2, 0, &[MANAGED]).await;
    let alarm = format!("{}-status", instances[0]);
    let dims = [("InstanceId", instances[0].as_str())];
    let arn = world
        .metric_alarm(MetricAlarmSpec {
            name: &alarm,
            namespace: "AWS/EC2",
            metric: "StatusCheckFailed",
            dimensions: &dims,
            operator: "GreaterThanOrEqualToThreshold",
            threshold: 1.0,
            tags: &[],
        })
        .await;

    let outcome = one(
        &responder(&world, Policy::default()),
        eventbridge(
            "status-check-failed.json",
            &alarm,
            &arn,
            json!({"InstanceId": instances[0]}),
            &world.fire(&alarm).await,
        ),
    )
    .await;

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(world.health(&instances[0]).await, "UNHEALTHY");
    assert_eq!(world.health(&instances[1]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_instance_check_failed_on_standalone_when_alarm_fires_then_rebooted() {
    let world = World::new("rb").await;
    let instance = world.standalone(&[MANAGED]).await;
    let alarm = format!("{instance}-status");
    let dims = [("InstanceId", instance.as_str())];
    let arn = world
        .metric_alarm(MetricAlarmSpec {
            name: &alarm,
            namespace: "AWS/EC2",
            metric: "StatusCheckFailed_Instance",
            dimensions: &dims,
            operator: "GreaterThanOrEqualToThreshold",
            threshold: 1.0,
            tags: &[],
        })
        .await;
    let mut event = eventbridge(
        "status-check-failed.json",
        &alarm,
        &arn,
        json!({"InstanceId": instance}),
        &world.fire(&alarm).await,
    );
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["name"] =
        json!("StatusCheckFailed_Instance");

    let outcome = one(&responder(&world, Policy::default()), event).await;

    // moto keeps no trace of a reboot; the instance must still be running and the notice says so.
    assert_eq!((outcome.status, outcome.action.as_deref()), (Status::Acted, Some("reboot")), "{outcome:?}");
    assert_eq!(world.ec2_state(&instance).await, "running");
    let notices = world.notices().await;
    assert_eq!(notices[0].0, format!("[WARNING] ec2 {instance}: rebooted {instance} (instance status check failed)"));
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_alarm_tagged_notify_when_it_fires_then_warning_and_no_change() {
    let world = World::new("tag").await;
    let spec = GroupSpec { min: 1, max: 4, desired: 2, grace_seconds: 0, tags: &[MANAGED], target_group_arn: None };
    let (group, _) = world.group_with(spec).await;
    let alarm = format!("{group}-cpu-high");
    let arn = world
        .metric_alarm(MetricAlarmSpec {
            name: &alarm,
            namespace: "AWS/EC2",
            metric: "CPUUtilization",
            dimensions: &[("AutoScalingGroupName", &group)],
            operator: "GreaterThanThreshold",
            threshold: 70.0,
            tags: &[("medic:action", "notify")],
        })
        .await;

    let outcome = one(
        &responder(&world, Policy::default()),
        eventbridge("cpu-high.json", &alarm, &arn, json!({"AutoScalingGroupName": group}), &world.fire(&alarm).await),
    )
    .await;

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    assert_eq!(world.desired(&group).await, 2);
    assert_eq!(world.notices().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rule4_given_an_alarm_back_to_ok_when_its_alarm_event_arrives_then_nothing_changes() {
    let (world, group, alarm, arn) = cpu_world("live", 1, 4, 2, true).await;
    let fired = world.fire(&alarm).await;
    world.set_alarm_state(&alarm, aws_sdk_cloudwatch::types::StateValue::Ok).await;

    let outcome = one(
        &responder(&world, Policy::default()),
        eventbridge("cpu-high.json", &alarm, &arn, json!({"AutoScalingGroupName": group}), &fired),
    )
    .await;

    assert_eq!(
        (outcome.status, outcome.label.as_deref()),
        (Status::Skipped, Some("alarm-no-longer-firing")),
        "{outcome:?}"
    );
    assert_eq!(world.desired(&group).await, 2);
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rule4_given_an_alarm_that_fired_again_since_when_the_older_event_arrives_then_only_the_newer_one_acts() {
    let (world, group, alarm, arn) = cpu_world("again", 1, 4, 2, true).await;
    let responder = responder(&world, Policy::default());
    let dims = json!({"AutoScalingGroupName": group});
    let older = world.fire(&alarm).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let newer = world.fire(&alarm).await;

    let stale = one(&responder, eventbridge("cpu-high.json", &alarm, &arn, dims.clone(), &older)).await;
    let live = one(&responder, eventbridge("cpu-high.json", &alarm, &arn, dims, &newer)).await;

    assert_eq!(stale.label.as_deref(), Some("alarm-re-evaluated"), "{stale:?}");
    assert_eq!(live.status, Status::Acted, "{live:?}");
    assert_eq!(world.desired(&group).await, 3, "scaled once");
}
