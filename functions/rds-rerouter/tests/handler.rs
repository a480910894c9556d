//! The handler with in-memory ports over every `events/rds-rerouter` file. AWS behaviour itself
//! is in `emulated_aws.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::collections::HashMap;
use std::path::PathBuf;

use lambda_runtime::Diagnostic;
use medic_aws::fakes::{FakeDatabases, MemoryLedger, MemoryNotifier};
use medic_core::rds_rerouter::{Cluster, ClusterMember, DbInstance, DnsRecord, LagSample};
use medic_core::scope::MANAGED_TAG;
use medic_core::{Policy, Status};
use rds_rerouter::Rerouter;
use serde_json::Value;

const NOW: i64 = 1_795_252_000;
const ZONE: &str = "Z0DB";

type Fake<'a> = Rerouter<&'a FakeDatabases, &'a FakeDatabases, &'a FakeDatabases, MemoryLedger, MemoryNotifier>;

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn db(id: &str, status: &str, az: &str, source: Option<&str>) -> DbInstance {
    DbInstance {
        id: id.into(),
        status: status.into(),
        az: Some(az.into()),
        endpoint: Some(format!("{id}.c0abc.us-east-1.rds.amazonaws.com")),
        source: source.map(str::to_owned),
        tags: tags(&[(MANAGED_TAG, "true")]),
        ..DbInstance::default()
    }
}

fn cname(name: &str, set_identifier: Option<&str>, value: &str) -> (String, DnsRecord) {
    let record = DnsRecord {
        name: name.into(),
        record_type: "CNAME".into(),
        set_identifier: set_identifier.map(str::to_owned),
        weight: set_identifier.map(|_| 100),
        value: Some(value.into()),
        ttl: Some(60),
        health_check_id: None,
    };
    (ZONE.into(), record)
}

/// `orders-db` is failed with two replicas (replica-1 lag 2 s, replica-2 lag 40 s) behind a
/// writer record and a weighted reader set; `orders-aurora` has a writer and two readers.
fn world() -> FakeDatabases {
    let mut primary = db("orders-db", "failed", "us-east-1a", None);
    primary.tags = tags(&[
        (MANAGED_TAG, "true"),
        ("medic:zone-id", ZONE),
        ("medic:writer-record", "writer.db.internal"),
        ("medic:reader-record", "reader.db.internal"),
    ]);
    primary.replicas = vec!["orders-db-replica-1".into(), "orders-db-replica-2".into()];
    let instances: HashMap<String, DbInstance> = [
        primary,
        db("orders-db-replica-1", "available", "us-east-1b", Some("orders-db")),
        db("orders-db-replica-2", "available", "us-east-1c", Some("orders-db")),
    ]
    .into_iter()
    .map(|db| (db.id.clone(), db))
    .collect();
    let member = |id: &str, writer: bool, az: &str| ClusterMember {
        id: id.into(),
        writer,
        status: "available".into(),
        az: Some(az.into()),
        promotion_tier: 1,
        tags: vec![],
        lag: None,
    };
    let aurora = Cluster {
        id: "orders-aurora".into(),
        status: "available".into(),
        tags: tags(&[(MANAGED_TAG, "true")]),
        members: vec![
            member("orders-aurora-1", true, "us-east-1a"),
            member("orders-aurora-2", false, "us-east-1b"),
            member("orders-aurora-3", false, "us-east-1c"),
        ],
    };
    let lag = [("orders-db-replica-1", 2.0), ("orders-db-replica-2", 40.0), ("orders-aurora-2", 0.02)]
        .into_iter()
        .map(|(id, seconds)| (id.to_owned(), LagSample { seconds, at: NOW - 60 }))
        .collect();
    FakeDatabases {
        instances,
        clusters: [("orders-aurora".to_owned(), aurora)].into_iter().collect(),
        lag,
        records: std::sync::Mutex::new(vec![
            cname("writer.db.internal.", None, "orders-db.c0abc.us-east-1.rds.amazonaws.com"),
            cname(
                "reader.db.internal.",
                Some("orders-db-replica-1"),
                "orders-db-replica-1.c0abc.us-east-1.rds.amazonaws.com",
            ),
            cname(
                "reader.db.internal.",
                Some("orders-db-replica-2"),
                "orders-db-replica-2.c0abc.us-east-1.rds.amazonaws.com",
            ),
        ]),
        calls: std::sync::Mutex::default(),
    }
}

/// `world()` with `orders-db` available: replica housekeeping (rule 8 reboots no replica of a
/// primary that is not available).
fn serving_world() -> FakeDatabases {
    let mut world = world();
    world.instances.get_mut("orders-db").unwrap().status = "available".into();
    world
}

fn rerouter(world: &FakeDatabases) -> Fake<'_> {
    Rerouter {
        databases: world,
        dns: world,
        metrics: world,
        ledger: MemoryLedger::default(),
        notifier: MemoryNotifier::default(),
        // The confirming second read follows the first at once; the wait has its own tests.
        policy: Policy { promote_confirm_seconds: 0, ..Policy::default() },
    }
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/rds-rerouter").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Mutating calls, in order (observation calls left out).
fn actions(world: &FakeDatabases) -> Vec<String> {
    world.calls.lock().unwrap().iter().filter(|c| !c.starts_with("describe")).cloned().collect()
}

fn weights(world: &FakeDatabases) -> Vec<(String, i64)> {
    world.records.lock().unwrap().iter().filter_map(|(_, r)| Some((r.set_identifier.clone()?, r.weight?))).collect()
}

#[tokio::test]
async fn given_each_rds_file_when_handled_then_decision_actions_and_notice_severity() {
    let rows: [(&str, Status, &[&str], Option<&str>); 21] = [
        (
            "instance-failed.json",
            Status::Acted,
            &["promote orders-db", "reroute-writer writer.db.internal."],
            Some("critical"),
        ),
        (
            "instance-failover-not-attempted.json",
            Status::Acted,
            &["promote orders-db", "reroute-writer writer.db.internal."],
            Some("critical"),
        ),
        ("instance-failover-started.json", Status::Alerted, &[], Some("warning")),
        ("instance-failover-standby-complete.json", Status::Alerted, &[], Some("warning")),
        ("instance-failover-completed.json", Status::Alerted, &[], Some("warning")),
        ("instance-multi-az-activation-started.json", Status::Alerted, &[], Some("info")),
        ("instance-multi-az-activation-complete.json", Status::Alerted, &[], Some("info")),
        ("instance-shutdown.json", Status::Alerted, &[], Some("warning")),
        ("instance-restarted.json", Status::Alerted, &[], Some("info")),
        ("instance-unknown-event-id.json", Status::Skipped, &[], None),
        (
            "replica-replication-error.json",
            Status::Acted,
            &["reader-out orders-db-replica-1", "reboot-replica orders-db-replica-1"],
            Some("warning"),
        ),
        ("replica-replication-terminated.json", Status::Acted, &["reader-out orders-db-replica-1"], Some("warning")),
        ("replica-creation-failed.json", Status::Acted, &["reader-out orders-db-replica-2"], Some("warning")),
        ("replica-replication-resumed.json", Status::Skipped, &[], None),
        ("replica-replication-stopped.json", Status::Alerted, &[], Some("warning")),
        ("replica-replication-reset.json", Status::Alerted, &[], Some("info")),
        ("cluster-failover-failed.json", Status::Acted, &["failover orders-aurora"], Some("warning")),
        ("cluster-failover-restarted.json", Status::Alerted, &[], Some("warning")),
        ("cluster-failover-finished.json", Status::Alerted, &[], Some("info")),
        ("cluster-failover-started-within-az.json", Status::Alerted, &[], Some("warning")),
        ("cluster-failover-started-across-az.json", Status::Alerted, &[], Some("warning")),
    ];
    for (file, status, expected_actions, severity) in rows {
        let world = if file.starts_with("replica-") { serving_world() } else { world() };
        let rerouter = rerouter(&world);
        let outcome = rerouter.handle(fixture(file), NOW).await.unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert_eq!(outcome.status, status, "{file}: {outcome:?}");
        assert_eq!(actions(&world), expected_actions, "{file}");
        assert_eq!(outcome.severity.map(|s| s.as_str()), severity, "{file}: {outcome:?}");
        assert_eq!(rerouter.notifier.sent.lock().unwrap().len(), usize::from(severity.is_some()), "{file}");
    }
}

#[tokio::test]
async fn given_malformed_or_foreign_events_when_handled_then_non_retryable_error_naming_the_problem() {
    let rows = [
        ("malformed-missing-source-arn.json", "missing field `SourceArn`"),
        ("snapshot-event.json", "detail-type `RDS DB Snapshot Event`"),
    ];
    for (file, expected) in rows {
        let world = world();
        let error = rerouter(&world).handle(fixture(file), NOW).await.expect_err(file);
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "NonRetryable", "{file}");
        assert!(diagnostic.error_message.contains(expected), "{file}: {}", diagnostic.error_message);
        assert!(world.calls.lock().unwrap().is_empty(), "{file}: no AWS call for a bad event");
    }
}

#[tokio::test]
async fn given_unknown_event_id_when_handled_then_ignored_without_any_aws_call() {
    let world = world();
    let rerouter = rerouter(&world);
    let outcome = rerouter.handle(fixture("instance-unknown-event-id.json"), NOW).await.unwrap();
    assert_eq!(outcome.label.as_deref(), Some("unknown-db-event"));
    assert!(world.calls.lock().unwrap().is_empty());
    assert!(rerouter.ledger.keys().is_empty(), "nothing claimed for an ignored event");
}

#[tokio::test]
async fn given_primary_failure_twice_when_handled_then_one_promotion_and_the_writer_record_moves() {
    let world = world();
    let rerouter = rerouter(&world);
    rerouter.handle(fixture("instance-failed.json"), NOW).await.unwrap();
    let duplicate = rerouter.handle(fixture("instance-failed.json"), NOW + 5).await.unwrap();
    let mut later = fixture("instance-failed.json");
    later["detail"]["Date"] = Value::from("2026-11-21T10:15:02.118Z");
    let second_failure = rerouter.handle(later, NOW + 3600).await.unwrap();

    assert_eq!(actions(&world), ["promote orders-db", "reroute-writer writer.db.internal."]);
    assert_eq!(duplicate.status, Status::Duplicate);
    assert_eq!(second_failure.label.as_deref(), Some("already-promoted"), "{second_failure:?}");
    let writer = world.records.lock().unwrap().iter().find(|(_, r)| r.name == "writer.db.internal.").cloned().unwrap();
    assert_eq!(writer.1.value.as_deref(), Some("orders-db-replica-1.c0abc.us-east-1.rds.amazonaws.com"));
    let notice = &rerouter.notifier.sent.lock().unwrap()[0];
    assert!(
        notice.subject.starts_with("[CRITICAL] rds orders-db: promoted orders-db-replica-1 to writer"),
        "{}",
        notice.subject
    );
    assert!(
        notice.body.contains("writes from about the last 2 s before the failure may be missing"),
        "{}",
        notice.body
    );
    assert!(notice.body.contains("orders-db-replica-2: ReplicaLag 40 s is above the 30 s limit"), "{}", notice.body);
}

#[tokio::test]
async fn given_replication_error_then_resumed_when_handled_then_reader_leaves_and_returns() {
    let world = serving_world();
    let rerouter = rerouter(&world);
    rerouter.handle(fixture("replica-replication-error.json"), NOW).await.unwrap();
    assert_eq!(weights(&world), [("orders-db-replica-1".to_owned(), 0), ("orders-db-replica-2".to_owned(), 100)]);
    let resumed = rerouter.handle(fixture("replica-replication-resumed.json"), NOW + 120).await.unwrap();
    assert_eq!(resumed.status, Status::Acted, "{resumed:?}");
    assert_eq!(weights(&world), [("orders-db-replica-1".to_owned(), 100), ("orders-db-replica-2".to_owned(), 100)]);
    let subjects = rerouter.notifier.subjects();
    assert!(
        subjects[0].starts_with("[WARNING] rds orders-db: took orders-db-replica-1 out of the reader set"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].starts_with("[INFO] rds orders-db: put orders-db-replica-1 back in the reader set (weight 100)"),
        "{subjects:?}"
    );
    let body = &rerouter.notifier.sent.lock().unwrap()[0].body;
    assert!(body.contains("rebooted replica orders-db-replica-1"), "{body}");
}

#[tokio::test]
async fn rule13_given_a_hostile_db_identifier_when_handled_then_non_retryable_naming_it_and_no_aws_call() {
    let world = world();
    let mut event = fixture("instance-failed.json");
    event["detail"]["SourceArn"] = Value::from("arn:aws:rds:us-east-1:123456789012:db:orders/../../x\"; DROP");
    event["detail"]["SourceIdentifier"] = Value::from("orders/../../x\"; DROP");

    let error = rerouter(&world).handle(event, NOW).await.expect_err("a hostile identifier");

    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "NonRetryable");
    assert!(diagnostic.error_message.contains("orders/../../x"), "{}", diagnostic.error_message);
    assert!(world.calls.lock().unwrap().is_empty(), "{:?}", world.calls.lock().unwrap());
}

#[tokio::test]
async fn rule3_given_a_failed_primary_when_first_seen_then_retried_and_promoted_only_on_a_read_60_s_later() {
    let world = world();
    let mut rerouter = rerouter(&world);
    rerouter.policy.promote_confirm_seconds = 60;

    let first = rerouter.handle(fixture("instance-failed.json"), NOW).await.unwrap_err();
    let early = rerouter.handle(fixture("instance-failed.json"), NOW + 30).await.unwrap_err();
    assert!(first.is_retryable() && early.is_retryable(), "{first} / {early}");
    assert!(first.to_string().contains("orders-db is failed"), "{first}");
    assert!(actions(&world).is_empty(), "nothing promoted on a single read: {:?}", actions(&world));

    let confirmed = rerouter.handle(fixture("instance-failed.json"), NOW + 61).await.unwrap();

    assert_eq!(confirmed.status, Status::Acted, "{confirmed:?}");
    assert_eq!(actions(&world), ["promote orders-db", "reroute-writer writer.db.internal."]);
}

#[tokio::test]
async fn rule3_given_a_primary_available_again_on_the_confirming_read_when_handled_then_nothing_is_promoted() {
    let failed = world();
    let first = rerouter(&failed);
    let mut first = Rerouter { policy: Policy { promote_confirm_seconds: 60, ..first.policy.clone() }, ..first };
    assert!(first.handle(fixture("instance-failed.json"), NOW).await.unwrap_err().is_retryable());
    let mut recovered = world();
    recovered.instances.get_mut("orders-db").unwrap().status = "available".into();
    first.databases = &recovered;
    first.dns = &recovered;
    first.metrics = &recovered;

    let outcome = first.handle(fixture("instance-failed.json"), NOW + 90).await.unwrap();

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    assert!(actions(&recovered).is_empty() && actions(&failed).is_empty());
}

#[tokio::test]
async fn rule3_given_a_primary_that_recovered_in_between_when_it_fails_again_then_the_wait_starts_over() {
    let failed = world();
    let recovered = serving_world();
    let mut rerouter = rerouter(&failed);
    rerouter.policy.promote_confirm_seconds = 60;
    assert!(rerouter.handle(fixture("instance-failed.json"), NOW).await.unwrap_err().is_retryable());
    rerouter.databases = &recovered;
    let mut healthy = fixture("instance-failed.json");
    healthy["detail"]["Date"] = Value::from("2026-11-21T09:16:02.118Z");
    assert_eq!(rerouter.handle(healthy, NOW + 30).await.unwrap().status, Status::Alerted);

    rerouter.databases = &failed;
    let mut again = fixture("instance-failed.json");
    again["detail"]["Date"] = Value::from("2026-11-21T09:17:02.118Z");
    let second_failure = rerouter.handle(again, NOW + 90).await;

    assert!(second_failure.is_err_and(|e| e.is_retryable()), "a new failure waits for its own second read");
    assert!(actions(&failed).is_empty(), "{:?}", actions(&failed));
}
