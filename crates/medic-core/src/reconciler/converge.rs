//! Did it heal? What "healed" means for each action, by when, and the one escalation when a
//! remediation missed its deadline. An irreversible action is never attempted again here: the
//! escalation only tells a human what medic did and what it sees now.

use crate::fleet::{GroupHealth, InstanceFacts};
use crate::plan::{Action, Alert, Decision, Plan, Severity};
use crate::rds_rerouter::{fqdn, Cluster, DbInstance, DnsRecord, RecordLocation};
use crate::time::{format_timestamp, EpochSeconds};
use crate::watch::Watch;

/// For an instance to reach `running` after a start or reboot.
pub const INSTANCE_SECONDS: i64 = 600;
/// For a stopped-for-recovery instance to be running again: the stop, its event, the start.
pub const RECOVERY_SECONDS: i64 = 1_200;
/// For a promoted replica to become a writable standalone instance, or a rebooted replica to be
/// available again.
pub const DB_SECONDS: i64 = 1_800;
/// For a Route 53 change or an Aurora failover to read back.
pub const ROUTE_SECONDS: i64 = 600;

/// What to read to judge one watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToObserve {
    pub instance: Option<String>,
    pub group: Option<String>,
    pub db: Option<String>,
    pub cluster: Option<String>,
    pub record: Option<RecordLocation>,
}

/// What was read; `None` where the resource does not exist (or was not asked for).
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct HealFacts {
    pub instance: Option<InstanceFacts>,
    pub group: Option<GroupHealth>,
    pub db: Option<DbInstance>,
    pub cluster: Option<Cluster>,
    pub records: Vec<DnsRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Convergence {
    Healed { seconds: i64 },
    Waiting { deadline: EpochSeconds },
    Overdue { deadline: EpochSeconds, seen: String },
}

pub fn to_observe(action: &Action) -> ToObserve {
    let none = ToObserve::default();
    match action {
        Action::ReplaceInstance { group, .. } | Action::ScaleGroup { group, .. } => {
            ToObserve { group: Some(group.clone()), ..none }
        }
        Action::StartInstance { instance_id, .. }
        | Action::RebootInstance { instance_id }
        | Action::StopForRecovery { instance_id } => ToObserve { instance: Some(instance_id.clone()), ..none },
        Action::PromoteReplica { replica, .. } | Action::RebootReplica { replica, .. } => {
            ToObserve { db: Some(replica.clone()), ..none }
        }
        Action::PointWriterRecord { zone_id, record_name, .. } => {
            ToObserve { record: Some(RecordLocation { zone_id: zone_id.clone(), name: fqdn(record_name) }), ..none }
        }
        Action::SetReaderWeight { reader, .. } => ToObserve {
            record: Some(RecordLocation { zone_id: reader.zone_id.clone(), name: fqdn(&reader.record_name) }),
            ..none
        },
        Action::FailoverCluster { cluster, .. } => ToObserve { cluster: Some(cluster.clone()), ..none },
    }
}

/// Healed, still within its time, or overdue with what is seen instead. A replacement or
/// scaling has the group's grace period plus `launch_margin` seconds.
pub fn converge(watch: &Watch, facts: &HealFacts, launch_margin: i64, now: EpochSeconds) -> Convergence {
    let (healed, seen, allowed) = judge(&watch.action, facts, launch_margin);
    // Saturating: a watch or a group read back with an absurd time or period must not wrap the
    // deadline (into an escalation at once) or panic.
    let deadline = watch.started_at.saturating_add(allowed);
    if healed {
        Convergence::Healed { seconds: now.saturating_sub(watch.started_at).max(0) }
    } else if now > deadline {
        Convergence::Overdue { deadline, seen }
    } else {
        Convergence::Waiting { deadline }
    }
}

/// Whether the action's effect holds, what is seen, and how long it may take.
fn judge(action: &Action, facts: &HealFacts, launch_margin: i64) -> (bool, String, i64) {
    let instance_state = |id: &str| match &facts.instance {
        Some(instance) => (instance.state == "running", format!("{id} is {}", instance.state)),
        None => (false, format!("{id} no longer exists")),
    };
    match action {
        Action::ReplaceInstance { group, instance_id } => match &facts.group {
            Some(found) => {
                let still_serving = found.instances.iter().any(|i| i.id == *instance_id && i.serving());
                let (in_service, desired) = (found.in_service(), found.desired);
                let member = if found.instances.iter().any(|i| i.id == *instance_id) {
                    format!("{instance_id} is still a member")
                } else {
                    format!("{instance_id} is gone")
                };
                (
                    !still_serving && in_service >= desired,
                    format!("{group} has {in_service} of {desired} desired instances in service; {member}"),
                    found.grace_seconds.saturating_add(launch_margin),
                )
            }
            None => (false, format!("group {group} no longer exists"), launch_margin),
        },
        Action::ScaleGroup { group, from, to } => match &facts.group {
            Some(found) => {
                let in_service = found.in_service();
                let reached = if to >= from { in_service >= *to } else { in_service <= *to };
                (
                    reached,
                    format!("{group} has {in_service} in service (desired now {}, medic set {to})", found.desired),
                    found.grace_seconds.saturating_add(launch_margin),
                )
            }
            None => (false, format!("group {group} no longer exists"), launch_margin),
        },
        Action::StartInstance { instance_id, .. } | Action::RebootInstance { instance_id } => {
            let (healed, seen) = instance_state(instance_id);
            (healed, seen, INSTANCE_SECONDS)
        }
        Action::StopForRecovery { instance_id } => {
            let (healed, seen) = instance_state(instance_id);
            (healed, seen, RECOVERY_SECONDS)
        }
        Action::PromoteReplica { replica, .. } => match &facts.db {
            Some(db) => {
                let source = db.source.as_deref().map_or(String::new(), |s| format!(", still a replica of {s}"));
                (
                    db.status == "available" && db.source.is_none(),
                    format!("{replica} is {}{source}", db.status),
                    DB_SECONDS,
                )
            }
            None => (false, format!("{replica} no longer exists"), DB_SECONDS),
        },
        Action::RebootReplica { replica, .. } => match &facts.db {
            Some(db) => (db.status == "available", format!("{replica} is {}", db.status), DB_SECONDS),
            None => (false, format!("{replica} no longer exists"), DB_SECONDS),
        },
        Action::PointWriterRecord { record_name, endpoint, .. } => {
            let value = facts.records.iter().find(|r| r.set_identifier.is_none()).and_then(|r| r.value.clone());
            let healed = value.as_deref().is_some_and(|v| same_name(v, endpoint));
            let seen =
                value.map_or_else(|| format!("{record_name} does not exist"), |v| format!("{record_name} → {v}"));
            (healed, seen, ROUTE_SECONDS)
        }
        Action::SetReaderWeight { reader, to, .. } => {
            let weight = facts
                .records
                .iter()
                .find(|r| r.set_identifier.as_deref() == Some(reader.replica.as_str()))
                .and_then(|r| r.weight);
            let seen = weight.map_or_else(
                || format!("{} has no record for {}", reader.record_name, reader.replica),
                |w| format!("{}'s weight for {} is {w}", reader.record_name, reader.replica),
            );
            (weight == Some(*to), seen, ROUTE_SECONDS)
        }
        Action::FailoverCluster { cluster, target } => match &facts.cluster {
            Some(found) => {
                let writer = found.members.iter().find(|m| m.writer).map_or("none", |m| m.id.as_str());
                (writer == target, format!("{cluster}'s writer is {writer}"), ROUTE_SECONDS)
            }
            None => (false, format!("cluster {cluster} no longer exists"), ROUTE_SECONDS),
        },
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The one critical notice for a remediation past its deadline.
pub fn escalate(watch: &Watch, deadline: EpochSeconds, seen: &str) -> Plan {
    let action = &watch.action;
    let resource = action.resource();
    let name = action.name();
    Plan {
        resource: resource.to_owned(),
        decision: Decision::Alert(Alert {
            severity: Severity::Critical,
            headline: format!("{name} of {resource} did not heal"),
            reason: format!(
                "{} made {} at {} (event {}); it should have healed by {}, but now {seen}",
                watch.function,
                action.api_call(),
                format_timestamp(watch.started_at),
                watch.event,
                format_timestamp(deadline)
            ),
            advice: advice(action),
            scope_label: action.scope_label(),
            held_back: None,
        }),
    }
}

fn advice(action: &Action) -> String {
    let not_again = "medic does not try again on its own.";
    match action {
        Action::ReplaceInstance { group, .. } | Action::ScaleGroup { group, .. } => format!(
            "Auto Scaling did not bring {group} to its capacity: read its activity history (aws autoscaling describe-scaling-activities --auto-scaling-group-name {group}) for launch failures (capacity, launch template or AMI, quotas, subnets). {not_again}"
        ),
        Action::StartInstance { instance_id, .. }
        | Action::RebootInstance { instance_id }
        | Action::StopForRecovery { instance_id } => format!(
            "Look at {instance_id}'s status checks and console output (aws ec2 get-console-output --instance-id {instance_id}); start it or replace it by hand. {not_again}"
        ),
        Action::PromoteReplica { replica, .. } => format!(
            "Read {replica}'s RDS events (aws rds describe-events --source-identifier {replica} --source-type db-instance) and check the application can write to it; the promotion is never repeated automatically."
        ),
        Action::RebootReplica { replica, .. } => format!(
            "Read {replica}'s RDS events (aws rds describe-events --source-identifier {replica} --source-type db-instance); it stays out of the reader set until its replication is healthy. {not_again}"
        ),
        Action::PointWriterRecord { zone_id, record_name, endpoint, .. } => format!(
            "Set {record_name} in hosted zone {zone_id} to {endpoint} by hand, and check nothing else (a deploy, another tool) writes it. {not_again}"
        ),
        Action::SetReaderWeight { reader, to, .. } => format!(
            "Set the weight of {} (set identifier {}) in hosted zone {} to {to} by hand. {not_again}",
            reader.record_name, reader.replica, reader.zone_id
        ),
        Action::FailoverCluster { cluster, target } => format!(
            "Read {cluster}'s events (aws rds describe-events --source-identifier {cluster} --source-type db-cluster); fail over by hand (aws rds failover-db-cluster --db-cluster-identifier {cluster} --target-db-instance-identifier {target}) once the cause is known. {not_again}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::GroupInstance;
    use crate::plan::ReaderRecord;
    use crate::rds_rerouter::ClusterMember;

    const START: EpochSeconds = 1_000_000;
    const LAUNCH_MARGIN_SECONDS: i64 = 600;

    fn watch(action: Action) -> Watch {
        Watch { function: "instance-healer".into(), event: "event#eventbridge:e1".into(), action, started_at: START }
    }

    fn member(id: &str, lifecycle_state: &str, health_status: &str) -> GroupInstance {
        GroupInstance { id: id.into(), lifecycle_state: lifecycle_state.into(), health_status: health_status.into() }
    }

    fn group(desired: i32, instances: Vec<GroupInstance>) -> HealFacts {
        HealFacts {
            group: Some(GroupHealth {
                name: "web-prod".into(),
                desired,
                grace_seconds: 300,
                instances,
                ..GroupHealth::default()
            }),
            ..HealFacts::default()
        }
    }

    fn instance(state: &str) -> HealFacts {
        HealFacts {
            instance: Some(InstanceFacts { state: state.into(), ..InstanceFacts::default() }),
            ..HealFacts::default()
        }
    }

    fn db(status: &str, source: Option<&str>) -> HealFacts {
        HealFacts {
            db: Some(DbInstance {
                id: "orders-replica-1".into(),
                status: status.into(),
                az: None,
                multi_az: false,
                backup_retention_days: 1,
                endpoint: None,
                tags: vec![],
                source: source.map(str::to_owned),
                replicas: vec![],
                cluster: None,
            }),
            ..HealFacts::default()
        }
    }

    fn record(set_identifier: Option<&str>, value: &str, weight: Option<i64>) -> HealFacts {
        HealFacts {
            records: vec![DnsRecord {
                name: "db.example.internal.".into(),
                record_type: "CNAME".into(),
                set_identifier: set_identifier.map(str::to_owned),
                weight,
                value: Some(value.into()),
                ..DnsRecord::default()
            }],
            ..HealFacts::default()
        }
    }

    fn cluster(writer: &str) -> HealFacts {
        let member = |id: &str| ClusterMember {
            id: id.into(),
            writer: id == writer,
            status: "available".into(),
            az: None,
            promotion_tier: 1,
            tags: vec![],
            lag: None,
        };
        HealFacts {
            cluster: Some(Cluster {
                id: "orders".into(),
                status: "available".into(),
                tags: vec![],
                members: vec![member("orders-1"), member("orders-2")],
            }),
            ..HealFacts::default()
        }
    }

    fn replace() -> Action {
        Action::ReplaceInstance { group: "web-prod".into(), instance_id: "i-0old".into() }
    }

    fn reader(to: i64) -> Action {
        Action::SetReaderWeight {
            reader: ReaderRecord {
                primary: "orders".into(),
                replica: "orders-replica-1".into(),
                zone_id: "Z1".into(),
                record_name: "db-read.example.internal".into(),
                endpoint: "orders-replica-1.rds".into(),
                ttl: 60,
                health_check_id: None,
            },
            from: 100,
            to,
        }
    }

    #[test]
    fn given_each_action_kind_when_its_effect_holds_or_not_then_healed_or_overdue_with_what_is_seen() {
        let start = |id: &str| Action::StartInstance { instance_id: id.into(), completes_recovery: false };
        let promote = Action::PromoteReplica {
            primary: "orders".into(),
            replica: "orders-replica-1".into(),
            backup_retention_days: 1,
        };
        let writer = Action::PointWriterRecord {
            primary: "orders".into(),
            zone_id: "Z1".into(),
            record_name: "db.example.internal".into(),
            endpoint: "orders-replica-1.rds".into(),
            ttl: 60,
            health_check_id: None,
        };
        let failover = Action::FailoverCluster { cluster: "orders".into(), target: "orders-2".into() };
        let scale = Action::ScaleGroup { group: "web-prod".into(), from: 2, to: 3 };
        let serving = |id: &str| member(id, "InService", "Healthy");
        let late = START + 10_000;
        let cases: Vec<(&str, Action, HealFacts, Result<(), &str>)> = vec![
            ("replace: old gone, back to desired", replace(), group(2, vec![serving("i-1"), serving("i-new")]), Ok(())),
            (
                "replace: group cannot launch",
                replace(),
                group(2, vec![serving("i-1")]),
                Err("web-prod has 1 of 2 desired instances in service; i-0old is gone"),
            ),
            (
                "replace: still serving",
                replace(),
                group(2, vec![serving("i-1"), serving("i-0old")]),
                Err("2 of 2 desired instances in service; i-0old is still a member"),
            ),
            ("replace: group deleted", replace(), HealFacts::default(), Err("group web-prod no longer exists")),
            ("start: running", start("i-0abc"), instance("running"), Ok(())),
            ("start: fell back to stopped", start("i-0abc"), instance("stopped"), Err("i-0abc is stopped")),
            ("start: terminated meanwhile", start("i-0abc"), HealFacts::default(), Err("i-0abc no longer exists")),
            (
                "scale-out: reached",
                scale.clone(),
                group(3, (1..=3).map(|n| serving(&format!("i-{n}"))).collect()),
                Ok(()),
            ),
            (
                "scale-out: short",
                scale,
                group(3, vec![serving("i-1"), serving("i-2"), member("i-3", "Pending", "Healthy")]),
                Err("web-prod has 2 in service (desired now 3, medic set 3)"),
            ),
            ("promote: standalone writer", promote.clone(), db("available", None), Ok(())),
            (
                "promote: still a replica",
                promote,
                db("available", Some("orders")),
                Err("orders-replica-1 is available, still a replica of orders"),
            ),
            ("writer record: points at it", writer.clone(), record(None, "ORDERS-replica-1.rds.", None), Ok(())),
            (
                "writer record: elsewhere",
                writer,
                record(None, "orders.rds", None),
                Err("db.example.internal → orders.rds"),
            ),
            ("reader weight: set", reader(0), record(Some("orders-replica-1"), "x", Some(0)), Ok(())),
            (
                "reader weight: overwritten",
                reader(0),
                record(Some("orders-replica-1"), "x", Some(100)),
                Err("db-read.example.internal's weight for orders-replica-1 is 100"),
            ),
            ("failover: target writes", failover.clone(), cluster("orders-2"), Ok(())),
            ("failover: writer unchanged", failover, cluster("orders-1"), Err("orders's writer is orders-1")),
        ];
        for (name, action, facts, expected) in cases {
            let got = converge(&watch(action), &facts, LAUNCH_MARGIN_SECONDS, late);
            match expected {
                Ok(()) => assert_eq!(got, Convergence::Healed { seconds: 10_000 }, "{name}"),
                Err(seen) => {
                    let Convergence::Overdue { seen: got, .. } = got else {
                        panic!("{name}: expected overdue, got {got:?}")
                    };
                    assert!(got.contains(seen), "{name}: `{got}` should contain `{seen}`");
                }
            }
        }
    }

    #[test]
    fn given_a_replacement_not_yet_healed_when_within_grace_plus_launch_margin_then_waiting_until_then() {
        let facts = group(2, vec![member("i-1", "InService", "Healthy")]);
        let deadline = START + 300 + LAUNCH_MARGIN_SECONDS;
        assert_eq!(
            converge(&watch(replace()), &facts, LAUNCH_MARGIN_SECONDS, deadline),
            Convergence::Waiting { deadline }
        );
        assert!(matches!(
            converge(&watch(replace()), &facts, LAUNCH_MARGIN_SECONDS, deadline + 1),
            Convergence::Overdue { .. }
        ));
    }

    #[test]
    fn given_an_overdue_promotion_when_escalated_then_one_critical_alert_that_never_acts_again() {
        let promote = Action::PromoteReplica {
            primary: "orders".into(),
            replica: "orders-replica-1".into(),
            backup_retention_days: 1,
        };
        let plan = escalate(&watch(promote), START + DB_SECONDS, "orders-replica-1 is modifying");
        let Decision::Alert(alert) = plan.decision else { panic!("expected an alert") };
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(alert.headline, "promote of orders did not heal");
        assert!(alert.reason.contains("orders-replica-1"), "{}", alert.reason);
        assert!(alert.reason.contains("now orders-replica-1 is modifying"), "{}", alert.reason);
        assert!(alert.advice.contains("never repeated automatically"), "{}", alert.advice);
        assert!(alert.held_back.is_none());
    }
}
