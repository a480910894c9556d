//! The instance healer against moto server over HTTP, through the real SDK clients. Every test
//! builds its own uniquely named world, runs the handler, and reads the result back from the
//! emulated AWS: the instance's health in Auto Scaling, its EC2 state, the SQS queue subscribed to
//! the notice topic, and the ledger table.
//!
//! Run with `make test` (it starts moto and sets `AWS_ENDPOINT_URL`); plain `cargo test` skips
//! these because they are `#[ignore]`d.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use instance_healer::{handle, AwsHealer};
use medic_aws::{Members, Reach};
use medic_core::{Outcome, Policy, Status};
use medic_testbench::{
    assume_role_count, in_account, member_role_arn, now, post_fault, unique, unique_account, World, HOME_ACCOUNT,
    MANAGED,
};
use serde_json::{json, Value};

fn healer(world: &World, policy: Policy) -> AwsHealer {
    AwsHealer::from_sdk_config(&world.sdk, world.config(policy))
}

/// Stops the instance, then delivers its state-change event to a fresh healer.
async fn stop_and_deliver(world: &World, instance_id: &str, policy: Policy) -> Outcome {
    world.stop(instance_id).await;
    handle(&healer(world, policy), state_change(instance_id, "stopped"), now()).await.unwrap()
}

fn state_change(instance_id: &str, state: &str) -> Value {
    json!({
        "version": "0",
        "id": unique("event"),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-11-21T09:15:02Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}")],
        "detail": {"instance-id": instance_id, "state": state}
    })
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_tagged_asg_when_instance_stopped_then_marked_unhealthy_and_warning_notice() {
    let world = World::new("stopped").await;
    let (group, instances) = world.group(3, 0, &[MANAGED]).await;

    let outcome = stop_and_deliver(&world, &instances[1], Policy::default()).await;

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(world.health(&instances[1]).await, "UNHEALTHY");
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    assert_eq!(world.health(&instances[2]).await, "HEALTHY");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let (subject, severity, body) = &notices[0];
    assert_eq!(subject, &format!("[WARNING] asg {group}: replaced {} (stopped unexpectedly)", instances[1]));
    assert_eq!(severity, "warning");
    assert!(body.contains("autoscaling:SetInstanceHealth"), "{body}");
    assert_eq!(world.ledger_status(&outcome).await.as_deref(), Some("COMPLETED"));
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_handled_event_when_delivered_again_then_first_outcome_and_no_mutation() {
    let world = World::new("duplicate").await;
    let (_, instances) = world.group(3, 0, &[MANAGED]).await;
    world.stop(&instances[0]).await;
    let healer = healer(&world, Policy::default());
    let event = state_change(&instances[0], "stopped");
    let first = handle(&healer, event.clone(), now()).await.unwrap();
    assert_eq!(first.status, Status::Acted);
    assert_eq!(world.notices().await.len(), 1);
    // Put the instance back so any second SetInstanceHealth would show.
    world.set_healthy(&instances[0]).await;

    let second = handle(&healer, event, now()).await.unwrap();

    assert_eq!(second.status, Status::Duplicate, "{second:?}");
    assert!(second.reason.contains("already handled: acted (replaced"), "{}", second.reason);
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_same_event_delivered_twice_at_once_when_handled_then_exactly_one_acts() {
    let world = World::new("race").await;
    let (_, instances) = world.group(2, 0, &[MANAGED]).await;
    world.stop(&instances[0]).await;
    let (first, second) = (healer(&world, Policy::default()), healer(&world, Policy::default()));
    let event = state_change(&instances[0], "stopped");

    let (a, b) = tokio::join!(handle(&first, event.clone(), now()), handle(&second, event.clone(), now()));

    let results = [a, b];
    let acted = results.iter().filter(|r| matches!(r, Ok(o) if o.status == Status::Acted)).count();
    let held_back = results
        .iter()
        .filter(|r| match r {
            Ok(o) => o.status == Status::Duplicate,
            Err(e) => e.is_retryable() && e.to_string().contains("another invocation"),
        })
        .count();
    assert_eq!((acted, held_back), (1, 1), "{results:?}");
    assert_eq!(world.notices().await.len(), 1);
    // Lambda's retry of the held-back delivery finds the first outcome.
    let retry = handle(&first, event, now()).await.unwrap();
    assert_eq!(retry.status, Status::Duplicate);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_dry_run_when_instance_stopped_then_nothing_mutated_and_notice_says_would() {
    let world = World::new("dry").await;
    let (group, instances) = world.group(3, 0, &[MANAGED]).await;

    let outcome = stop_and_deliver(&world, &instances[2], Policy { dry_run: true, ..Policy::default() }).await;

    assert_eq!(outcome.status, Status::WouldAct, "{outcome:?}");
    assert_eq!(world.health(&instances[2]).await, "HEALTHY");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].0,
        format!("[INFO] [DRY-RUN] asg {group}: would replace {} (stopped unexpectedly)", instances[2])
    );
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_breaker_of_two_when_four_instances_stop_then_two_replaced_and_one_critical_notice() {
    let world = World::new("brk").await;
    let (group, instances) = world.group(5, 0, &[MANAGED]).await;
    // The percentage floor (rule 10) off, so that only the breaker holds.
    let healer = healer(&world, Policy { breaker_max_actions: 2, max_unhealthy_percent: 100, ..Policy::default() });
    // A fixed clock inside one breaker window, so the wall clock cannot cross a window boundary.
    let at = now() - now().rem_euclid(900) + 900 + 10;
    let mut statuses = Vec::new();
    for instance in &instances[..3] {
        world.stop(instance).await;
        statuses.push(handle(&healer, state_change(instance, "stopped"), at).await.unwrap().status);
    }
    // The fourth is held back until the digest is due (rule 6), and Lambda retries it.
    world.stop(&instances[3]).await;
    let fourth = state_change(&instances[3], "stopped");
    assert!(handle(&healer, fourth.clone(), at).await.unwrap_err().is_retryable());
    statuses.push(handle(&healer, fourth, at + 61).await.unwrap().status);

    assert_eq!(statuses, [Status::Acted, Status::Acted, Status::Blocked, Status::Blocked]);
    let mut health = Vec::new();
    for instance in &instances {
        health.push(world.health(instance).await);
    }
    assert_eq!(health, ["UNHEALTHY", "UNHEALTHY", "HEALTHY", "HEALTHY", "HEALTHY"]);
    let notices = world.notices().await;
    let critical: Vec<_> = notices.iter().filter(|(_, severity, _)| severity == "critical").collect();
    assert_eq!(critical.len(), 2, "the breaker notice and its digest: {notices:?}");
    assert_eq!(
        critical[0].0,
        format!("[CRITICAL] asg {group}: breaker open (limit 2 per 15 min), left {} alone", instances[2])
    );
    assert_eq!(notices.len(), 4, "two replacements, one breaker notice, one digest: {notices:?}");
    let digest = notices.iter().find(|(subject, _, _)| subject.contains("more alone")).unwrap();
    assert_eq!(digest.0, format!("[CRITICAL] asg {group}: left 1 more alone since the critical notice"));
    assert!(digest.2.contains(&format!("- {0}: would replace {0}", instances[3])), "{}", digest.2);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_replaced_instance_when_it_stops_again_within_cooldown_then_skipped() {
    let world = World::new("cooldown").await;
    let (_, instances) = world.group(3, 0, &[MANAGED]).await;
    world.stop(&instances[0]).await;
    let healer = healer(&world, Policy::default());
    assert_eq!(handle(&healer, state_change(&instances[0], "stopped"), now()).await.unwrap().status, Status::Acted);
    world.set_healthy(&instances[0]).await;

    let again = handle(&healer, state_change(&instances[0], "stopped"), now()).await.unwrap();

    assert_eq!((again.status, again.label.as_deref()), (Status::Skipped, Some("cooldown")), "{again:?}");
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_group_not_opted_in_when_instance_stopped_then_nothing_happens() {
    let world = World::new("untagged").await;
    let (_, instances) = world.group(2, 0, &[("team", "web")]).await;

    let outcome = stop_and_deliver(&world, &instances[0], Policy::default()).await;

    assert_eq!((outcome.status, outcome.label.as_deref()), (Status::Skipped, Some("out-of-scope")));
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_instance_in_standby_when_stopped_then_skipped_for_lifecycle_state() {
    let world = World::new("standby").await;
    let (group, instances) = world.group(3, 0, &[MANAGED]).await;
    world
        .autoscaling()
        .enter_standby()
        .auto_scaling_group_name(&group)
        .instance_ids(&instances[0])
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();

    let outcome = stop_and_deliver(&world, &instances[0], Policy::default()).await;

    assert_eq!((outcome.status, outcome.label.as_deref()), (Status::Skipped, Some("lifecycle-state")), "{outcome:?}");
    assert!(outcome.reason.contains("Standby"), "{}", outcome.reason);
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_fresh_group_when_instance_stopped_inside_grace_period_then_skipped() {
    let world = World::new("grace").await;
    let (_, instances) = world.group(2, 3600, &[MANAGED]).await;

    let outcome = stop_and_deliver(&world, &instances[1], Policy::default()).await;

    assert_eq!((outcome.status, outcome.label.as_deref()), (Status::Skipped, Some("grace-period")), "{outcome:?}");
    assert_eq!(world.health(&instances[1]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_replace_unhealthy_suspended_when_instance_stopped_then_warning_and_no_mutation() {
    let world = World::new("susp").await;
    let (group, instances) = world.group(2, 0, &[MANAGED]).await;
    world
        .autoscaling()
        .suspend_processes()
        .auto_scaling_group_name(&group)
        .scaling_processes("ReplaceUnhealthy")
        .send()
        .await
        .unwrap();

    let outcome = stop_and_deliver(&world, &instances[0], Policy::default()).await;

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].1, "warning");
    assert!(notices[0].0.contains("ReplaceUnhealthy suspended"), "{}", notices[0].0);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rule1_given_a_standalone_instance_a_person_stopped_when_its_event_arrives_then_left_stopped_with_an_info_notice(
) {
    let world = World::new("person-stop").await;
    let instance = world.standalone(&[MANAGED]).await;
    // moto records a StopInstances call as EC2 does: StateReason Client.UserInitiatedShutdown.
    world.stop(&instance).await;

    let outcome = handle(&healer(&world, Policy::default()), state_change(&instance, "stopped"), now()).await.unwrap();

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    assert_eq!(world.ec2_state(&instance).await, "stopped");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let (subject, severity, body) = &notices[0];
    assert_eq!(subject, &format!("[INFO] ec2 {instance}: stopped by a user: left alone"));
    assert_eq!(severity, "info");
    assert!(body.contains("StateReason Client.UserInitiatedShutdown"), "{body}");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rule2_given_medic_stopped_a_standalone_instance_for_recovery_when_its_event_arrives_then_started_under_a_full_breaker(
) {
    use medic_aws::ports::Ledger;
    use medic_core::{guard, Action};
    let world = World::new("recovery").await;
    let instance = world.standalone(&[MANAGED]).await;
    let policy = Policy { breaker_max_actions: 1, ..Policy::default() };
    let at = now();
    // What the alarm responder's stop for recovery leaves in the shared ledger: the mark (its
    // cooldown) and its breaker slot, which fills a breaker of one.
    let ledger = medic_aws::adapters::dynamodb::DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(&world.sdk),
        world.config(policy.clone()).ledger_table,
        &policy,
    );
    let stop = Action::StopForRecovery { instance_id: instance.clone() };
    assert!(ledger
        .start_cooldown(
            &guard::recovery_mark_key(&instance),
            at + guard::RECOVERY_MARK_SECONDS,
            at,
            "event#alarm",
            None
        )
        .await
        .unwrap());
    let window = guard::breaker_key(&stop.breaker_scope(), at, policy.breaker_window_seconds);
    let member = guard::breaker_member("event#alarm", &stop);
    let slot = medic_aws::ports::Take::Slot { key: &window, member: &member, max: 1, expires_at: at + 1800 };
    ledger.take(&[slot], at).await.unwrap().unwrap();
    world.stop(&instance).await;

    let outcome = handle(&healer(&world, policy), state_change(&instance, "stopped"), at).await.unwrap();

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(world.ec2_state(&instance).await, "running");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].1 == "warning" && notices[0].2.contains("completes that recovery"), "{notices:?}");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_standalone_instance_when_terminated_then_critical_notice_only() {
    let world = World::new("terminated").await;
    let instance = world.standalone(&[MANAGED]).await;
    world.ec2().terminate_instances().instance_ids(&instance).send().await.unwrap();

    let outcome =
        handle(&healer(&world, Policy::default()), state_change(&instance, "terminated"), now()).await.unwrap();

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    assert_eq!(world.ec2_state(&instance).await, "terminated");
    let notices = world.notices().await;
    assert_eq!((notices.len(), notices[0].1.as_str()), (1, "critical"));
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_instance_unknown_to_aws_when_stopped_then_skipped_not_found() {
    let world = World::new("unknown").await;
    let outcome = handle(&healer(&world, Policy::default()), state_change("i-0123456789abcdef0", "stopped"), now())
        .await
        .unwrap();
    assert_eq!(
        (outcome.status, outcome.label.as_deref()),
        (Status::Skipped, Some("instance-not-found")),
        "{outcome:?}"
    );
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rule10_given_a_group_of_three_when_a_second_instance_stops_then_the_floor_holds_with_a_critical_notice() {
    let world = World::new("floor").await;
    let (group, instances) = world.group(3, 0, &[MANAGED]).await;
    let first = stop_and_deliver(&world, &instances[0], Policy::default()).await;
    assert_eq!(first.status, Status::Acted, "{first:?}");
    assert_eq!(world.notices().await.len(), 1);

    let second = stop_and_deliver(&world, &instances[1], Policy::default()).await;

    assert_eq!(second.status, Status::Alerted, "{second:?}");
    assert_eq!(world.health(&instances[1]).await, "HEALTHY", "left in service");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].1, "critical");
    assert!(notices[0].0.starts_with(&format!("[CRITICAL] asg {group}: ")), "{}", notices[0].0);
    assert!(notices[0].2.contains("likely an AZ or deployment problem"), "{}", notices[0].2);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rule6_and_rule10_given_an_az_style_burst_when_the_floor_holds_then_one_critical_notice_and_one_digest_name_every_instance_left_alone(
) {
    let world = World::new("burst").await;
    let (group, instances) = world.group(6, 0, &[MANAGED]).await;
    let healer = healer(&world, Policy::default());
    let at = now() - now().rem_euclid(900) + 900 + 10;
    let mut outcomes = Vec::new();
    let mut held = Vec::new();
    for instance in &instances[..5] {
        world.stop(instance).await;
        match handle(&healer, state_change(instance, "stopped"), at).await {
            Ok(outcome) => outcomes.push(outcome.status),
            Err(error) if error.is_retryable() => held.push(instance.clone()),
            Err(error) => panic!("{error}"),
        }
    }
    // 34 % of 6 is 2: two replaced, the third gets the critical notice, the rest wait for the
    // digest and are delivered again by Lambda's retry a minute later.
    assert_eq!(outcomes, [Status::Acted, Status::Acted, Status::Alerted]);
    assert_eq!(held, instances[3..5]);
    let mut healths = Vec::new();
    for instance in &instances {
        healths.push(world.health(instance).await);
    }
    assert_eq!(healths, ["UNHEALTHY", "UNHEALTHY", "HEALTHY", "HEALTHY", "HEALTHY", "HEALTHY"]);
    let before = world.notices().await;
    assert_eq!(before.iter().map(|n| n.1.as_str()).collect::<Vec<_>>(), ["warning", "warning", "critical"]);
    assert!(before[2].2.contains("likely an AZ or deployment problem"), "{}", before[2].2);

    for instance in &held {
        let retried = handle(&healer, state_change(instance, "stopped"), at + 61).await;
        assert!(retried.is_ok(), "{retried:?}");
    }

    let digest = world.notices().await;
    assert_eq!(digest.len(), 1, "one digest for the burst: {digest:?}");
    assert_eq!(digest[0].0, format!("[CRITICAL] asg {group}: left 2 more alone since the critical notice"));
    for instance in &held {
        assert!(digest[0].2.contains(&format!("- {instance}: would replace {instance}")), "{}", digest[0].2);
    }
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rule7_given_an_action_that_succeeded_when_its_cooldown_is_read_back_then_it_records_done_not_just_intent() {
    use medic_aws::ports::Ledger;
    let world = World::new("done").await;
    let (_, instances) = world.group(3, 0, &[MANAGED]).await;
    let outcome = stop_and_deliver(&world, &instances[0], Policy::default()).await;
    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    let ledger = medic_aws::adapters::dynamodb::DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(&world.sdk),
        world.config(Policy::default()).ledger_table,
        &Policy::default(),
    );

    let cooldown = ledger.cooldown_until(&format!("cooldown#{}#replace", instances[0]), now()).await.unwrap().unwrap();

    assert!(cooldown.done, "{cooldown:?}");
    assert_eq!(cooldown.started_by, format!("event#{}", outcome.event));
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rule6_given_an_az_outage_that_stops_15_instances_when_the_breaker_holds_then_every_instance_left_alone_is_named(
) {
    let world = World::new("az15").await;
    let (group, instances) = world.group(15, 0, &[MANAGED]).await;
    let healer = healer(&world, Policy::default());
    let at = now() - now().rem_euclid(900) + 900 + 10;
    let mut held = Vec::new();
    for instance in &instances {
        world.stop(instance).await;
        if let Err(error) = handle(&healer, state_change(instance, "stopped"), at).await {
            assert!(error.is_retryable(), "{error}");
            held.push(instance.clone());
        }
    }
    for instance in &held {
        handle(&healer, state_change(instance, "stopped"), at + 61).await.unwrap();
    }

    let notices = world.notices().await;
    let replaced = notices.iter().filter(|(_, severity, _)| severity == "warning").count();
    let critical: Vec<_> = notices.iter().filter(|(_, severity, _)| severity == "critical").collect();
    assert_eq!((replaced, critical.len()), (3, 2), "3 replaced (the breaker's limit), its notice and one digest");
    assert_eq!(critical[1].0, format!("[CRITICAL] asg {group}: left 11 more alone since the critical notice"));
    let named: Vec<&String> = instances
        .iter()
        .filter(|i| {
            critical
                .iter()
                .any(|(_, _, body)| body.contains(&format!("{i} alone")) || body.contains(&format!("- {i}:")))
        })
        .collect();
    assert_eq!(named.len(), 12, "every one of the 12 left alone is named: {named:?}");
}

fn dynamo_ledger(world: &World, policy: &Policy) -> medic_aws::adapters::dynamodb::DynamoLedger {
    medic_aws::adapters::dynamodb::DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(&world.sdk),
        world.config(policy.clone()).ledger_table,
        policy,
    )
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_running_cooldown_when_the_guard_takes_it_with_a_slot_then_refused_by_it_and_nothing_is_written() {
    use medic_aws::ports::{Ledger, Take};
    let world = World::new("take").await;
    let policy = Policy::default();
    let ledger = dynamo_ledger(&world, &policy);
    let at = now();
    assert!(ledger.start_cooldown("cooldown#i-1#replace", at + 600, at, "event#first", None).await.unwrap());

    let writes = [
        Take::Slot { key: "breaker#asg/web#0", member: "event#second|replace|i-1", max: 5, expires_at: at + 1800 },
        Take::Cooldown { key: "cooldown#i-1#replace", until: at + 600, started_by: "event#second", intent: None },
    ];
    let refusal = ledger.take(&writes, at).await.unwrap().unwrap_err();

    assert_eq!(refusal.index, 1);
    assert_eq!(refusal.running.map(|c| c.started_by), Some("event#first".to_owned()));
    let read =
        ledger.read_guard(&["breaker#asg/web#0".to_owned(), "cooldown#i-1#replace".to_owned()], at).await.unwrap();
    assert!(read.sets.is_empty(), "the slot was not taken: {read:?}");
    assert_eq!(read.cooldowns["cooldown#i-1#replace"].started_by, "event#first");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_groups_in_flight_item_written_after_it_was_read_when_taken_on_the_old_version_then_refused() {
    use medic_aws::ports::{Ledger, Take};
    use medic_core::guard::InFlightEntry;
    let world = World::new("inflight").await;
    let policy = Policy::default();
    let ledger = dynamo_ledger(&world, &policy);
    let (at, key) = (now(), "inflight#web#out-of-service");
    let entry = |event: &str, id: &str| InFlightEntry {
        event: event.into(),
        instance_id: id.into(),
        taken_at_ms: at * 1000,
        applied_at_ms: None,
    };
    let (first, second, third) = (entry("event#a", "i-1"), entry("event#b", "i-2"), entry("event#c", "i-3"));
    ledger.take(&[Take::InFlight { key, entry: &first, read: None, prune: &[] }], at).await.unwrap().unwrap();
    let read = ledger.read_guard(&[key.to_owned()], at).await.unwrap().in_flight[key].clone();
    ledger
        .take(&[Take::InFlight { key, entry: &second, read: Some(read.version), prune: &[] }], at)
        .await
        .unwrap()
        .unwrap();

    let stale = ledger.take(&[Take::InFlight { key, entry: &third, read: Some(read.version), prune: &[] }], at).await;
    let from_nothing = ledger.take(&[Take::InFlight { key, entry: &third, read: None, prune: &[] }], at).await;

    assert_eq!(stale.unwrap().unwrap_err().index, 0);
    assert_eq!(from_nothing.unwrap().unwrap_err().index, 0);
    ledger.mark_applied(key, &first.name(), at * 1000 + 5).await.unwrap();
    let now_read = ledger.read_guard(&[key.to_owned()], at).await.unwrap().in_flight[key].clone();
    let mut entries: Vec<(String, Option<i64>)> =
        now_read.entries.iter().map(|e| (e.instance_id.clone(), e.applied_at_ms)).collect();
    entries.sort();
    assert_eq!(entries, [("i-1".to_owned(), Some(at * 1000 + 5)), ("i-2".to_owned(), None)]);
    assert_eq!(now_read.version, read.version + 1);
    let pruned = [first.name()];
    let fourth = entry("event#d", "i-4");
    let take = Take::InFlight { key, entry: &fourth, read: Some(now_read.version), prune: &pruned };
    ledger.take(&[take], at).await.unwrap().unwrap();
    ledger.drop_in_flight(key, &second.name()).await.unwrap();
    let last = ledger.read_guard(&[key.to_owned()], at).await.unwrap().in_flight[key].clone();
    assert_eq!(last.entries.iter().map(|e| e.instance_id.as_str()).collect::<Vec<_>>(), ["i-4"]);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_three_members_of_a_group_of_six_stop_at_once_when_their_events_are_handled_side_by_side_then_the_floor_holds(
) {
    let world = World::new("floor").await;
    let (_, instances) = world.group(6, 0, &[MANAGED]).await;
    // 34 % of 6: two may be out of service at once.
    let healer = std::sync::Arc::new(healer(&world, Policy { max_unhealthy_percent: 34, ..Policy::default() }));
    for instance in &instances[..3] {
        world.stop(instance).await;
    }
    let at = now();
    let mut pending: Vec<Value> = instances[..3].iter().map(|i| state_change(i, "stopped")).collect();
    // Lambda's retries, as many rounds as it takes (a minute apart in Lambda).
    for _ in 0..5 {
        let mut side_by_side = tokio::task::JoinSet::new();
        for event in pending.drain(..) {
            let healer = healer.clone();
            side_by_side.spawn(async move { (handle(&healer, event.clone(), at).await, event) });
        }
        while let Some(joined) = side_by_side.join_next().await {
            let (answer, event) = joined.unwrap();
            if answer.is_err_and(|e| e.is_retryable()) {
                pending.push(event);
            }
        }
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let mut unhealthy = 0;
    for instance in &instances {
        unhealthy += usize::from(world.health(instance).await == "UNHEALTHY");
    }
    assert_eq!(unhealthy, 2, "never more than the floor's two out of service");
    assert!(pending.is_empty(), "the third is held back by the floor with a critical notice: {pending:?}");
}

/// A state change from `account` in `region`, as the central bus delivers a member's event.
fn state_change_in(account: &str, region: &str, instance_id: &str, state: &str) -> Value {
    let mut event = state_change(instance_id, state);
    event["account"] = json!(account);
    event["region"] = json!(region);
    event["resources"] = json!([format!("arn:aws:ec2:{region}:{account}:instance/{instance_id}")]);
    event
}

/// Delivers `event` as a central-mode bootstrap does: the event's account and region select the
/// healer.
async fn deliver(members: &Members<AwsHealer>, event: Value) -> Outcome {
    match members.reach(&event, now()).await.unwrap() {
        Reach::Ready(healer) => handle(&healer, event, now()).await.unwrap(),
        Reach::Refused(skip) => skip,
    }
}

fn central(home: &World, policy: Policy, allowed: &[&str]) -> Members<AwsHealer> {
    Members::new(home.sdk.clone(), home.central_config(policy, allowed))
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn org1_given_one_group_name_in_two_accounts_and_two_regions_when_a_member_stops_then_only_that_account_and_region_is_acted_in(
) {
    let home = World::new("central").await;
    let (a, b) = (unique_account(), unique_account());
    let name = unique("org");
    let a_east = World::named(name.clone(), in_account(&a, "us-east-1").await).await;
    let a_west = World::named(name.clone(), in_account(&a, "eu-west-1").await).await;
    let b_east = World::named(name, in_account(&b, "us-east-1").await).await;
    let (group, a_east_members) = a_east.group(3, 0, &[MANAGED]).await;
    let (_, a_west_members) = a_west.group(3, 0, &[MANAGED]).await;
    let (_, b_east_members) = b_east.group(3, 0, &[MANAGED]).await;
    let medic = central(&home, Policy::default(), &[]);

    a_west.stop(&a_west_members[0]).await;
    let outcome = deliver(&medic, state_change_in(&a, "eu-west-1", &a_west_members[0], "stopped")).await;

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!((outcome.account.as_deref(), outcome.region.as_deref()), (Some(a.as_str()), Some("eu-west-1")));
    assert_eq!(a_west.health(&a_west_members[0]).await, "UNHEALTHY");
    for (world, members) in [(&a_east, &a_east_members), (&b_east, &b_east_members)] {
        for instance in members.iter() {
            assert_eq!(world.health(instance).await, "HEALTHY", "{group} elsewhere is untouched");
        }
    }
    let notices = home.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].2.contains(&format!("\"account\": \"{a}\"")), "{}", notices[0].2);

    // The same group name's twin in another account is healed there, under its own in-flight
    // item and cooldowns: nothing of account A's stands in its way.
    b_east.stop(&b_east_members[1]).await;
    let outcome = deliver(&medic, state_change_in(&b, "us-east-1", &b_east_members[1], "stopped")).await;
    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(b_east.health(&b_east_members[1]).await, "UNHEALTHY");
    assert_eq!(a_east.health(&a_east_members[1]).await, "HEALTHY");

    // An event that names account A for an instance of account B's finds nothing in A.
    let misrouted = deliver(&medic, state_change_in(&a, "us-east-1", &b_east_members[2], "stopped")).await;
    assert_ne!(misrouted.status, Status::Acted, "{misrouted:?}");
    assert_eq!(b_east.health(&b_east_members[2]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn org2_given_a_storm_in_one_account_when_its_breaker_opens_then_another_account_is_still_healed() {
    let home = World::new("storm").await;
    let (a, b) = (unique_account(), unique_account());
    let in_a = World::with_sdk("storm", in_account(&a, "us-east-1").await).await;
    let in_b = World::with_sdk("storm", in_account(&b, "us-east-1").await).await;
    let storm = [in_a.standalone(&[MANAGED]).await, in_a.standalone(&[MANAGED]).await];
    let calm = in_b.standalone(&[MANAGED]).await;
    let medic = central(&home, Policy { breaker_max_actions: 1, ..Policy::default() }, &[]);

    let mut outcomes = Vec::new();
    for instance in &storm {
        in_a.stop_by_ec2(instance).await;
        outcomes.push(deliver(&medic, state_change_in(&a, "us-east-1", instance, "stopped")).await);
    }
    in_b.stop_by_ec2(&calm).await;
    let other = deliver(&medic, state_change_in(&b, "us-east-1", &calm, "stopped")).await;

    assert_eq!(outcomes.iter().map(|o| o.status).collect::<Vec<_>>(), [Status::Acted, Status::Blocked], "{outcomes:?}");
    assert_eq!(in_a.ec2_state(&storm[1]).await, "stopped");
    assert_eq!(other.status, Status::Acted, "account B's standalone breaker is its own: {other:?}");
    assert_eq!(in_b.ec2_state(&calm).await, "running");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn org5_given_three_accounts_when_one_reaches_its_account_cap_then_only_that_account_is_refused_and_the_others_are_healed(
) {
    let home = World::new("cap").await;
    let (a, b, c) = (unique_account(), unique_account(), unique_account());
    let mut in_a = Vec::new();
    for _ in 0..3 {
        let world = World::with_sdk("cap", in_account(&a, "us-east-1").await).await;
        let (_, members) = world.group(3, 0, &[MANAGED]).await;
        in_a.push((world, members[0].clone()));
    }
    let mut elsewhere = Vec::new();
    for (account, region) in [(&b, "us-east-1"), (&c, "eu-west-1")] {
        let world = World::with_sdk("cap", in_account(account, region).await).await;
        let (_, members) = world.group(3, 0, &[MANAGED]).await;
        elsewhere.push((account, region, world, members[0].clone()));
    }
    let medic = central(&home, Policy { account_breaker_max_actions: Some(2), ..Policy::default() }, &[]);

    let mut storm = Vec::new();
    for (world, instance) in &in_a {
        world.stop(instance).await;
        storm.push(deliver(&medic, state_change_in(&a, "us-east-1", instance, "stopped")).await);
    }
    let mut calm = Vec::new();
    for (account, region, world, instance) in &elsewhere {
        world.stop(instance).await;
        calm.push(deliver(&medic, state_change_in(account, region, instance, "stopped")).await);
    }

    let statuses: Vec<Status> = storm.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        [Status::Acted, Status::Acted, Status::Blocked],
        "each group's own breaker holds 3: {storm:?}"
    );
    assert!(storm[2].reason.contains("whole account"), "{}", storm[2].reason);
    let health = [in_a[0].0.health(&in_a[0].1).await, in_a[2].0.health(&in_a[2].1).await];
    assert_eq!(health, ["UNHEALTHY", "HEALTHY"]);
    for (outcome, (account, region, world, instance)) in calm.iter().zip(&elsewhere) {
        assert_eq!(outcome.status, Status::Acted, "{account} in {region} has its own account cap: {outcome:?}");
        assert_eq!(world.health(instance).await, "UNHEALTHY");
    }
    let notices = home.notices().await;
    let critical: Vec<&(String, String, String)> =
        notices.iter().filter(|(_, severity, _)| severity == "critical").collect();
    assert_eq!(critical.len(), 1, "{notices:?}");
    assert!(critical[0].0.contains("account breaker open (limit 2 per 15 min)"), "{}", critical[0].0);
    assert!(critical[0].2.contains(&format!("\"account\": \"{a}\"")), "{}", critical[0].2);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn org3_given_accounts_medic_may_not_act_in_when_their_events_arrive_then_skipped_with_one_notice_per_account_and_one_assume_role(
) {
    let home = World::new("refused").await;
    let (listed, unlisted, roleless) = (unique_account(), unique_account(), unique_account());
    post_fault("no-role", &json!({"arn": member_role_arn(&roleless)})).await;
    let in_unlisted = World::with_sdk("refused", in_account(&unlisted, "us-east-1").await).await;
    let stranger = in_unlisted.standalone(&[MANAGED]).await;
    in_unlisted.stop_by_ec2(&stranger).await;
    let allow_list = central(&home, Policy::default(), &[&listed]);
    let open = central(&home, Policy::default(), &[]);

    let mut skips = Vec::new();
    for _ in 0..2 {
        skips.push(deliver(&allow_list, state_change_in(&unlisted, "us-east-1", &stranger, "stopped")).await);
        skips.push(deliver(&open, state_change_in(&roleless, "us-east-1", "i-0123456789abcdef0", "stopped")).await);
    }

    for skip in &skips {
        assert_eq!((skip.status, skip.label.as_deref()), (Status::Skipped, Some("account-refused")), "{skip:?}");
    }
    assert!(skips[0].reason.contains("not in MEDIC_ACCOUNTS"), "{}", skips[0].reason);
    assert!(skips[1].reason.contains("AccessDenied"), "{}", skips[1].reason);
    assert_eq!(in_unlisted.ec2_state(&stranger).await, "stopped", "nothing is done in an unlisted account");
    let notices = home.notices().await;
    let mut subjects: Vec<&str> = notices.iter().map(|(subject, _, _)| subject.as_str()).collect();
    subjects.sort_unstable();
    let mut expected = [
        format!("[WARNING] account {roleless}: cannot act in account {roleless} (us-east-1)"),
        format!("[WARNING] account {unlisted}: cannot act in account {unlisted} (us-east-1)"),
    ];
    expected.sort();
    assert_eq!(subjects, expected, "one notice per account, not per event");
    assert_eq!(assume_role_count(&member_role_arn(&unlisted)).await, 0, "an unlisted account is never assumed");
    assert_eq!(assume_role_count(&member_role_arn(&roleless)).await, 1, "a refused role is not asked again at once");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn org4_given_events_from_one_account_in_two_regions_when_handled_by_one_container_then_one_assume_role_per_region(
) {
    let home = World::new("assume").await;
    let account = unique_account();
    let medic = central(&home, Policy::default(), &[]);
    let mut regions = Vec::new();
    for region in ["us-east-1", "eu-west-1"] {
        let world = World::with_sdk("assume", in_account(&account, region).await).await;
        // Six members: two out of service at once stay within the 34 % floor.
        let (_, members) = world.group(6, 0, &[MANAGED]).await;
        regions.push((region, world, members));
    }
    let before = assume_role_count(&member_role_arn(&account)).await;

    for (region, world, members) in &regions {
        for instance in members.iter().take(2) {
            world.stop(instance).await;
            let outcome = deliver(&medic, state_change_in(&account, region, instance, "stopped")).await;
            assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
        }
    }

    assert_eq!(assume_role_count(&member_role_arn(&account)).await - before, 2, "one AssumeRole per region");
    // medic's own account needs none: its events use the function's own credentials.
    let own = home.standalone(&[MANAGED]).await;
    home.stop_by_ec2(&own).await;
    let outcome = deliver(&medic, state_change_in(HOME_ACCOUNT, "us-east-1", &own, "stopped")).await;
    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(assume_role_count(&member_role_arn(HOME_ACCOUNT)).await, 0);
}
