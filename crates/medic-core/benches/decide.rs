//! Decision-only latency: parse + decide for every file in `events/`, per function, with the
//! observation a real invocation would bring (no I/O, no AWS). `cargo bench -p medic-core`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench setup fails loudly by design
#![allow(missing_debug_implementations)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use medic_core::alarm::parse_alarm_event;
use medic_core::instance::{self, GroupMember, InstanceFacts, InstanceObservation};
use medic_core::notifier::{self, LaunchFailures};
use medic_core::rds::parse_db_event;
use medic_core::rerouter::{self, DbInstance, DbObservation, LagSample, PromotionFacts, Replica};
use medic_core::responder::{self, GroupCapacity, Target};
use medic_core::{parse_event, Policy, Trigger};
use serde_json::Value;

const NOW: i64 = 1_795_252_600;

fn events(function: &str) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events").join(function);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .filter(|p| !is_malformed(p))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn is_malformed(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains("malformed") || n.contains("snapshot"))
}

fn managed() -> Vec<(String, String)> {
    vec![("medic:managed".to_owned(), "true".to_owned())]
}

fn asg_member() -> InstanceObservation {
    InstanceObservation {
        instance: Some(InstanceFacts { state: "stopped".into(), tags: managed(), launched_at: Some(NOW - 7200) }),
        member: Some(GroupMember {
            group: "web-prod".into(),
            lifecycle_state: "InService".into(),
            health_status: "HEALTHY".into(),
            health_check_grace_period_seconds: 300,
            suspended_processes: vec![],
            group_tags: managed(),
        }),
    }
}

fn promotion() -> DbObservation {
    let db = |id: &str, status: &str| DbInstance {
        id: id.into(),
        status: status.into(),
        az: Some("us-east-1b".into()),
        endpoint: Some(format!("{id}.example")),
        tags: managed(),
        ..DbInstance::default()
    };
    let replicas = (1..=3)
        .map(|n| Replica {
            db: db(&format!("orders-db-replica-{n}"), "available"),
            lag: Some(LagSample { seconds: f64::from(n), at: NOW - 30 }),
        })
        .collect();
    DbObservation::Promotion(Some(PromotionFacts {
        primary: db("orders-db", "failed"),
        replicas,
        writer: None,
        promotion_guard: None,
    }))
}

fn decide(c: &mut Criterion) {
    let policy = Policy::default();
    let healer = events("instance-healer");
    c.bench_function("instance-healer: parse + decide, every file", |b| {
        b.iter(|| {
            for raw in &healer {
                if let Ok(Trigger::InstanceStateChanged(change)) = parse_event(black_box(raw)) {
                    black_box(instance::decide(&change, &asg_member(), &policy, NOW));
                }
            }
        });
    });
    let alarms = events("alarm-responder");
    let capacity = GroupCapacity { min: 1, max: 4, desired: 2, ..GroupCapacity::default() };
    c.bench_function("alarm-responder: parse + decide, every file", |b| {
        b.iter(|| {
            for raw in &alarms {
                for change in parse_alarm_event(black_box(raw)).unwrap_or_default() {
                    let remediation = responder::remediation(&change, &[], change.comparison_operator.as_deref());
                    let target =
                        Target::Group { group: "web-prod".into(), capacity: capacity.clone(), group_tags: managed() };
                    black_box(responder::decide_alarm(&change, &[], &remediation, &target, &policy, NOW));
                }
            }
        });
    });
    let rds = events("rds-rerouter");
    c.bench_function("rds-rerouter: parse + decide, every file", |b| {
        b.iter(|| {
            for raw in &rds {
                if let Ok(event) = parse_db_event(black_box(raw)) {
                    black_box(rerouter::decide_db(&event, &promotion(), &policy, NOW));
                }
            }
        });
    });
    let notices = events("notifier");
    c.bench_function("notifier: parse + decide, every file", |b| {
        b.iter(|| {
            for raw in &notices {
                match notifier::parse_notice_event(black_box(raw)) {
                    Ok(Trigger::AsgActivity(activity)) => {
                        let failures = Some(LaunchFailures { count: 1, escalate: false });
                        black_box(notifier::decide_activity(&activity, failures, &policy));
                    }
                    Ok(Trigger::Health(event)) => {
                        black_box(notifier::decide_health(&event));
                    }
                    _ => {}
                }
            }
        });
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
