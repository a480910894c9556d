//! Decision-only latency: parse + decide for every file in `events/`, per function, with the
//! observation a real invocation would bring (no I/O, no AWS). `cargo bench -p medic-core`.
//! Besides criterion's batch figures, each call is timed alone for p50 / p99, written as JSON to
//! `$MEDIC_DECIDE_PERCENTILES` (`make bench` sets it) or printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench setup fails loudly by design
#![allow(missing_debug_implementations)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::Criterion;
use medic_core::alarm_responder::{self, parse_alarm_event, AlarmFacts, AlarmNow, GroupCapacity, Target};
use medic_core::fleet::{GroupMember, InstanceFacts, InstanceObservation};
use medic_core::notifier::{self, LaunchFailures, NoticeEvent};
use medic_core::rds_rerouter::{self, parse_db_event, DbInstance, DbObservation, LagSample, PromotionFacts, Replica};
use medic_core::{instance_healer, parse_event, Policy, Trigger};
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
        instance: Some(InstanceFacts {
            state: "stopped".into(),
            tags: managed(),
            launched_at: Some(NOW - 7200),
            ..InstanceFacts::default()
        }),
        member: Some(GroupMember {
            group: "web-prod".into(),
            lifecycle_state: "InService".into(),
            health_status: "HEALTHY".into(),
            health_check_grace_period_seconds: 300,
            suspended_processes: vec![],
            group_tags: managed(),
            desired_capacity: 3,
            out_of_service: 0,
        }),
        stopped_by_medic: false,
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

/// One function's decision over one parsed-at-call-time event file.
type DecideOne = Box<dyn Fn(&Value, &Policy)>;

fn deciders() -> Vec<(&'static str, Vec<Value>, DecideOne)> {
    let capacity = GroupCapacity { min: 1, max: 4, desired: 2, ..GroupCapacity::default() };
    vec![
        (
            "instance-healer",
            events("instance-healer"),
            Box::new(|raw, policy| {
                if let Ok(Trigger::InstanceStateChanged(change)) = parse_event(black_box(raw)) {
                    black_box(instance_healer::decide(&change, &asg_member(), policy, NOW));
                }
            }),
        ),
        (
            "alarm-responder",
            events("alarm-responder"),
            Box::new(move |raw, policy| {
                for change in parse_alarm_event(black_box(raw)).unwrap_or_default() {
                    let remediation = alarm_responder::remediation(&change, &[], change.comparison_operator.as_deref());
                    let target =
                        Target::Group { group: "web-prod".into(), capacity: capacity.clone(), group_tags: managed() };
                    let facts = AlarmFacts {
                        now: Some(AlarmNow { state: change.state, changed_at_millis: change.changed_at_millis }),
                        ..AlarmFacts::default()
                    };
                    black_box(alarm_responder::decide_alarm(&change, &facts, &remediation, &target, policy, NOW));
                }
            }),
        ),
        (
            "rds-rerouter",
            events("rds-rerouter"),
            Box::new(|raw, policy| {
                if let Ok(event) = parse_db_event(black_box(raw)) {
                    black_box(rds_rerouter::decide_db(&event, &promotion(), policy, NOW));
                }
            }),
        ),
        (
            "notifier",
            events("notifier"),
            Box::new(|raw, policy| match notifier::parse_notice_event(black_box(raw)) {
                Ok(NoticeEvent::AsgActivity(activity)) => {
                    let failures = Some(LaunchFailures { count: 1, escalate: false });
                    black_box(notifier::decide_activity(&activity, failures, policy));
                }
                Ok(NoticeEvent::Health(event)) => {
                    black_box(notifier::decide_health(&event));
                }
                _ => {}
            }),
        ),
    ]
}

/// Criterion times a batch (every file of a function) and reports its mean; the targets are
/// about single calls, so each call is also timed on its own for p50 / p99.
const TIMED_ROUNDS: usize = 2_000;

fn per_call_percentiles(deciders: &[(&'static str, Vec<Value>, DecideOne)], policy: &Policy) -> Value {
    let mut report = serde_json::Map::new();
    for (function, files, decide) in deciders {
        let mut nanos: Vec<u128> = Vec::with_capacity(TIMED_ROUNDS * files.len());
        for _ in 0..TIMED_ROUNDS {
            for raw in files {
                let started = Instant::now();
                decide(raw, policy);
                nanos.push(started.elapsed().as_nanos());
            }
        }
        nanos.sort_unstable();
        let rank = |q: f64| nanos[((q * nanos.len() as f64).ceil() as usize).clamp(1, nanos.len()) - 1];
        report.insert(
            (*function).to_owned(),
            serde_json::json!({
                "files": files.len(),
                "calls": nanos.len(),
                "p50_ns": rank(0.50),
                "p99_ns": rank(0.99),
                "max_ns": nanos.last(),
            }),
        );
    }
    Value::Object(report)
}

fn main() {
    let policy = Policy::default();
    let deciders = deciders();
    let mut criterion = Criterion::default().configure_from_args();
    for (function, files, decide) in &deciders {
        criterion.bench_function(&format!("{function}: parse + decide, every file"), |b| {
            b.iter(|| files.iter().for_each(|raw| decide(raw, &policy)));
        });
    }
    criterion.final_summary();
    // `cargo test --benches` runs each benchmark once; only a real run times single calls.
    if std::env::args().any(|arg| arg == "--bench") {
        let report = serde_json::to_string_pretty(&per_call_percentiles(&deciders, &policy)).unwrap();
        match std::env::var_os("MEDIC_DECIDE_PERCENTILES") {
            Some(path) => std::fs::write(path, report).unwrap(),
            None => println!("per call: {report}"),
        }
    }
}
