//! The RDS rerouter against moto server over HTTP, through the real SDK clients: each test builds
//! its own primary, replicas, hosted zone and records (or Aurora cluster), delivers an RDS event
//! rebound from an `events/rds-rerouter` file, and reads the result back from the emulated AWS.
//!
//! Run with `make test`; plain `cargo test` skips these because they are `#[ignore]`d.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::path::PathBuf;

use medic_aws::{Members, Reach};
use medic_core::{Outcome, Policy, Status};
use medic_testbench::{in_account, now, unique, unique_account, World};
use rds_rerouter::AwsRerouter;
use serde_json::{json, Value};

/// The confirming second read of a terminal status follows the first at once, except in the
/// test of that wait.
fn rerouter(world: &World) -> AwsRerouter {
    AwsRerouter::from_sdk_config(&world.sdk, world.config(Policy { promote_confirm_seconds: 0, ..Policy::default() }))
}

/// An RDS event from a fixture, rebound to DB instance (or cluster) `id`, dated `date`.
fn event(file: &str, id: &str, date: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/rds-rerouter").join(file);
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let kind = if event["detail"]["SourceType"] == "CLUSTER" { "cluster" } else { "db" };
    let arn = format!("arn:aws:rds:us-east-1:123456789012:{kind}:{id}");
    event["id"] = json!(medic_testbench::unique("event"));
    event["resources"] = json!([arn]);
    event["detail"]["SourceArn"] = json!(arn);
    event["detail"]["SourceIdentifier"] = json!(format!("rds:{id}"));
    event["detail"]["Date"] = json!(date);
    event
}

const T1: &str = "2026-11-21T09:15:02.118Z";
const T2: &str = "2026-11-21T10:40:00.000Z";

async fn handle(rerouter: &AwsRerouter, event: Value) -> Outcome {
    rerouter.handle(event, now()).await.unwrap()
}

#[tokio::test]
#[ignore = "needs moto: run with `make test`"]
async fn given_lost_primary_when_instance_failed_then_lowest_lag_replica_promoted_and_writer_record_moved_once() {
    let world = World::new("rds-promote").await;
    let stack = world.db_stack(&[("us-east-1b", Some(12.0)), ("us-east-1c", Some(3.0))]).await;
    let (lagging, best) = (&stack.replicas[0], &stack.replicas[1]);
    world.fail_db(&stack.primary).await;
    let rerouter = AwsRerouter::from_sdk_config(&world.sdk, world.config(Policy::default()));
    let failed = event("instance-failed.json", &stack.primary, T1);
    let at = now();
    // Rule 3: one read of a terminal status is not enough for an irreversible promotion.
    let first = rerouter.handle(failed.clone(), at).await.unwrap_err();
    assert!(first.is_retryable(), "{first}");
    assert_eq!(world.db(best).await.backup_retention_days, 0, "nothing promoted on the first read");

    let outcome = rerouter.handle(failed.clone(), at + 61).await.unwrap();

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(world.db(best).await.backup_retention_days, 7, "promoted with the primary's backup retention");
    assert_eq!(world.db(lagging).await.backup_retention_days, 0, "the other replica is left alone");
    let best_endpoint = world.db(best).await.endpoint;
    assert_eq!(
        world.record(&stack.zone_id, &stack.writer_record, None).await.0.as_deref(),
        Some(best_endpoint.as_str())
    );
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let (subject, severity, body) = &notices[0];
    assert_eq!(severity, "critical");
    assert!(subject.starts_with(&format!("[CRITICAL] rds {}: promoted {best} to writer", stack.primary)), "{subject}");
    assert!(body.contains("writes from about the last 3 s before the failure may be missing"), "{body}");

    // The same event again, then a later failure report of the same primary: no second promotion.
    world.upsert_cname(&stack.zone_id, &stack.writer_record, "moved-by-hand.example", None).await;
    let duplicate = rerouter.handle(failed, at + 62).await.unwrap();
    let later = handle(&rerouter, event("instance-failed.json", &stack.primary, T2)).await;
    assert_eq!(duplicate.status, Status::Duplicate);
    assert_eq!(later.label.as_deref(), Some("already-promoted"), "{later:?}");
    assert_eq!(world.db(lagging).await.backup_retention_days, 0);
    let writer = world.record(&stack.zone_id, &stack.writer_record, None).await;
    assert_eq!(writer.0.as_deref(), Some("moved-by-hand.example"), "medic did not touch the writer record again");
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run with `make test`"]
async fn org_given_one_db_stack_name_in_two_accounts_when_a_members_primary_is_lost_then_only_that_account_is_promoted_and_rerouted(
) {
    let home = World::new("orgrds").await;
    let (a, b) = (unique_account(), unique_account());
    let name = unique("orgrds");
    let in_a = World::named(name.clone(), in_account(&a, "us-east-1").await).await;
    let in_b = World::named(name, in_account(&b, "us-east-1").await).await;
    let replicas = [("us-east-1b", Some(12.0)), ("us-east-1c", Some(3.0))];
    let (stack_a, stack_b) = (in_a.db_stack(&replicas).await, in_b.db_stack(&replicas).await);
    assert_eq!(stack_a.primary, stack_b.primary, "one primary name in both accounts");
    in_a.fail_db(&stack_a.primary).await;
    let policy = Policy { promote_confirm_seconds: 0, ..Policy::default() };
    let medic = Members::<AwsRerouter>::new(home.sdk.clone(), home.central_config(policy, &[]));
    let failed = event("instance-failed.json", &stack_a.primary, T1);
    let mut failed: Value = serde_json::from_str(&failed.to_string().replace("123456789012", &a)).unwrap();
    failed["account"] = json!(a);

    let outcome = match medic.reach(&failed, now()).await.unwrap() {
        Reach::Ready(rerouter) => handle(&rerouter, failed).await,
        Reach::Refused(skip) => skip,
    };

    assert_eq!((outcome.status, outcome.account.as_deref()), (Status::Acted, Some(a.as_str())), "{outcome:?}");
    let best = &stack_a.replicas[1];
    assert_eq!(in_a.db(best).await.backup_retention_days, 7, "account A's best replica is promoted");
    let writer_a = in_a.record(&stack_a.zone_id, &stack_a.writer_record, None).await.0;
    assert_eq!(writer_a, Some(in_a.db(best).await.endpoint), "account A's writer record follows it");
    for replica in &stack_b.replicas {
        assert_eq!(in_b.db(replica).await.backup_retention_days, 0, "account B's replicas are left alone");
    }
    let writer_b = in_b.record(&stack_b.zone_id, &stack_b.writer_record, None).await.0;
    assert_eq!(writer_b, Some(in_b.db(&stack_b.primary).await.endpoint), "account B's writer record is untouched");
    let notices = home.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].2.contains(&format!("\"account\": \"{a}\"")), "{}", notices[0].2);
}

#[tokio::test]
#[ignore = "needs moto: run with `make test`"]
async fn given_only_lagging_replicas_when_primary_lost_then_no_promotion_and_critical_notice() {
    let world = World::new("rds-lag").await;
    let stack = world.db_stack(&[("us-east-1b", Some(45.0)), ("us-east-1c", None)]).await;
    world.fail_db(&stack.primary).await;
    let primary_endpoint = world.db(&stack.primary).await.endpoint;

    let outcome = handle(&rerouter(&world), event("instance-failover-not-attempted.json", &stack.primary, T1)).await;

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    for replica in &stack.replicas {
        assert_eq!(world.db(replica).await.backup_retention_days, 0, "{replica} not promoted");
    }
    let writer = world.record(&stack.zone_id, &stack.writer_record, None).await;
    assert_eq!(writer.0.as_deref(), Some(primary_endpoint.as_str()));
    let notices = world.notices().await;
    let (subject, severity, body) = &notices[0];
    assert_eq!(severity, "critical");
    assert!(subject.contains("no replica is safe to promote"), "{subject}");
    assert!(body.contains("ReplicaLag 45 s is above the 30 s limit"), "{body}");
    assert!(body.contains("no ReplicaLag datapoint"), "{body}");
}

#[tokio::test]
#[ignore = "needs moto: run with `make test`"]
async fn given_replication_error_when_handled_then_reader_weight_zero_and_reboot_and_resumed_restores_it() {
    let world = World::new("rds-reader").await;
    let stack = world.db_stack(&[("us-east-1b", Some(1.0)), ("us-east-1c", Some(1.0))]).await;
    let (broken, healthy) = (&stack.replicas[0], &stack.replicas[1]);
    let rerouter = rerouter(&world);

    let outcome = handle(&rerouter, event("replica-replication-error.json", broken, T1)).await;

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(world.record(&stack.zone_id, &stack.reader_record, Some(broken)).await.1, Some(0));
    assert_eq!(world.record(&stack.zone_id, &stack.reader_record, Some(healthy)).await.1, Some(100));
    let notices = world.notices().await;
    let (subject, severity, body) = &notices[0];
    assert_eq!(severity, "warning");
    assert!(subject.contains(&format!("took {broken} out of the reader set")), "{subject}");
    assert!(body.contains(&format!("rebooted replica {broken}")), "{body}");
    assert_eq!(world.db(broken).await.status, "available");

    let resumed = handle(&rerouter, event("replica-replication-resumed.json", broken, T2)).await;

    assert_eq!(resumed.status, Status::Acted, "{resumed:?}");
    assert_eq!(world.record(&stack.zone_id, &stack.reader_record, Some(broken)).await.1, Some(100));
    let notices = world.notices().await;
    assert_eq!(notices[0].1, "info", "{notices:?}");
}

#[tokio::test]
#[ignore = "needs moto: run with `make test`"]
async fn given_aurora_failover_failed_when_handled_then_one_retry_moves_the_writer_to_the_healthiest_reader() {
    let world = World::new("rds-aurora").await;
    let (cluster, members) = world.aurora(&["us-east-1b", "us-east-1c"]).await;
    world.put_lag(&members[1], "AuroraReplicaLag", 900.0).await;
    world.put_lag(&members[2], "AuroraReplicaLag", 20.0).await;
    let rerouter = rerouter(&world);
    assert_eq!(world.cluster_writer(&cluster).await, members[0]);

    let outcome = handle(&rerouter, event("cluster-failover-failed.json", &cluster, T1)).await;

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(world.cluster_writer(&cluster).await, members[2], "the reader with the lowest lag");
    assert_eq!(world.notices().await[0].1, "warning");

    let again = handle(&rerouter, event("cluster-failover-failed.json", &cluster, T2)).await;

    assert_eq!(again.status, Status::Alerted, "{again:?}");
    assert_eq!(world.cluster_writer(&cluster).await, members[2], "no second retry");
    let notices = world.notices().await;
    assert_eq!(notices[0].1, "critical");
    assert!(notices[0].0.contains("failover failed again after medic's retry"), "{:?}", notices[0]);
}

#[tokio::test]
#[ignore = "needs moto: run with `make test`"]
async fn rule3_given_a_stopped_primary_when_its_failure_event_arrives_then_a_critical_notice_and_no_promotion() {
    let world = World::new("rds-stopped").await;
    let stack = world.db_stack(&[("us-east-1b", Some(1.0)), ("us-east-1c", Some(2.0))]).await;
    world.stop_db(&stack.primary).await;
    let primary_endpoint = world.db(&stack.primary).await.endpoint;

    let outcome = handle(&rerouter(&world), event("instance-failover-not-attempted.json", &stack.primary, T1)).await;

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    for replica in &stack.replicas {
        assert_eq!(world.db(replica).await.backup_retention_days, 0, "{replica} not promoted");
    }
    let writer = world.record(&stack.zone_id, &stack.writer_record, None).await;
    assert_eq!(writer.0.as_deref(), Some(primary_endpoint.as_str()), "writer record untouched");
    let notices = world.notices().await;
    let (subject, severity, body) = &notices[0];
    assert_eq!(severity, "critical");
    assert!(
        subject.starts_with(&format!("[CRITICAL] rds {0}: {0} is stopped, which an operator", stack.primary)),
        "{subject}"
    );
    assert!(body.contains("a state AWS documents as recoverable"), "{body}");
    assert!(body.contains("aws rds start-db-instance"), "{body}");
}
