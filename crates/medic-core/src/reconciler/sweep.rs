//! The level-triggered backstop: what the sweep looks for, the idempotency key of each finding
//! (the resource and the condition observed, so the same failure is one finding however many
//! sweeps see it), and the decision each finding gets: the one of the event it stands for.

use crate::fleet::{replace_member, GroupHealth, InstanceFacts, InstanceObservation, GROUP_NAME_TAG};
use crate::guard::window_start;
use crate::instance_healer::{self, InstanceStateChanged};
use crate::plan::{Alert, Decision, Plan, Severity, SkipReason};
use crate::policy::Policy;
use crate::rds_rerouter::{
    cannot_serve, decide_db, lagging, reader_record_location, DbEvent, DbEventKind, DbInstance, DbObservation,
    DbSourceType, DnsRecord, LagSample, RecordLocation, ReplicaFacts,
};
use crate::scope::{out_of_scope, tag_value, Tags};
use crate::states::Ec2State;
use crate::time::{format_timestamp, EpochSeconds};
use crate::watch::Watch;

use super::converge::escalate;

/// The state reason of an instance medic itself stopped (StopInstances); the recovery mark in the
/// ledger tells it from a person's stop.
pub const USER_STOP: &str = "Client.UserInitiatedShutdown";

/// Something the sweep found that an event should have handled, or a remediation that did not heal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Finding {
    /// A standalone in-scope instance that is stopped, by EC2 (`Server.*`) or by medic's own stop
    /// for recovery: the instance healer starts it.
    Stopped { instance_id: String, state_reason: String, launched_at: Option<EpochSeconds> },
    /// An in-scope Auto Scaling member whose EC2 status checks are impaired: replaced.
    Impaired { instance_id: String, group: String, checks: String },
    /// A remediation past its deadline, not healed: one critical escalation.
    Unhealed { watch: Watch, deadline: EpochSeconds, seen: String },
    /// An in-scope group with fewer members in service than desired for longer than its grace
    /// period plus the launch margin, with no open remediation of medic's on it.
    GroupShort { group: String, desired: i32, in_service: i32, since: EpochSeconds },
    /// A read replica whose place in its weighted reader set is wrong: in it while it cannot
    /// serve (taken out), or out of it while available and caught up (put back).
    Replica { replica: String, take_out: bool, status: String, window: EpochSeconds },
    /// Events medic's functions failed on after every retry, waiting in the dead-letter queue.
    DeadLetters(DeadLetters),
}

/// What the decision of a finding is made on: the instance (stopped, impaired), the replica and
/// its reader set, or nothing more (escalations, short groups, dead letters).
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum FindingFacts {
    Instance(InstanceObservation),
    Replica(ReplicaFacts),
    #[default]
    Nothing,
}

/// A sweep finding about a replica stands for an hour: if it was not acted on (skipped, refused)
/// the next hour's sweep may find it again.
pub const REPLICA_FINDING_WINDOW_SECONDS: i64 = 3_600;

/// In-scope read replicas that a reader record set names, and where that set is: the replica's
/// own `medic:zone-id` and `medic:reader-record` tags, else its source's (found in `dbs`).
pub fn reader_replicas<'a>(dbs: &'a [DbInstance], policy: &Policy) -> Vec<(&'a DbInstance, Tags, RecordLocation)> {
    dbs.iter()
        .filter(|db| db.cluster.is_none())
        .filter_map(|db| {
            let source = db.source.as_deref()?;
            let source_tags = dbs.iter().find(|s| s.id == source).map(|s| s.tags.clone()).unwrap_or_default();
            out_of_scope(policy.scope, &[&db.tags]).is_none().then_some(())?;
            let location = reader_record_location(&db.tags, &source_tags)?;
            Some((db, source_tags, location))
        })
        .collect()
}

/// The replica's weight in its reader set, when the set has a weighted record for it.
pub fn reader_weight(replica: &str, records: &[DnsRecord]) -> Option<i64> {
    records.iter().find(|r| r.set_identifier.as_deref() == Some(replica)).and_then(|r| r.weight)
}

/// A replica in its reader set that cannot serve: a finding to take it out.
pub fn replica_to_take_out(replica: &DbInstance, weight: i64, now: EpochSeconds) -> Option<Finding> {
    (weight > 0 && cannot_serve(&replica.status)).then(|| Finding::Replica {
        replica: replica.id.clone(),
        take_out: true,
        status: replica.status.clone(),
        window: window_start(now, REPLICA_FINDING_WINDOW_SECONDS),
    })
}

/// A replica out of its reader set that is available and caught up: a finding to put it back.
/// `lag` is read only for replicas out and available, the ones this can be true of.
pub fn replica_to_put_back(
    replica: &DbInstance,
    weight: i64,
    lag: Option<LagSample>,
    policy: &Policy,
    now: EpochSeconds,
) -> Option<Finding> {
    (weight == 0 && replica.status == "available" && lagging(lag, policy, now).is_none()).then(|| Finding::Replica {
        replica: replica.id.clone(),
        take_out: false,
        status: replica.status.clone(),
        window: window_start(now, REPLICA_FINDING_WINDOW_SECONDS),
    })
}

/// The ledger set of groups the sweep saw short of desired, each as `group|since`.
pub const SHORT_GROUPS_KEY: &str = "sweep#short-groups";

/// The "since" of a group whose shortage a human was already told of (an escalation of medic's
/// own remediation on it): no group-short notice while that shortage lasts.
pub const SHORT_TOLD: EpochSeconds = EpochSeconds::MAX;

/// A short group as stored in [`SHORT_GROUPS_KEY`].
pub fn short_member(group: &str, since: EpochSeconds) -> String {
    format!("{group}|{since}")
}

/// The group and since-when of a stored member.
pub fn parse_short_member(member: &str) -> Option<(&str, EpochSeconds)> {
    let (group, since) = member.rsplit_once('|')?;
    Some((group, since.parse().ok()?))
}

/// In-scope groups with fewer members in service than desired.
pub fn short_groups<'a>(groups: &'a [GroupHealth], policy: &Policy) -> Vec<&'a GroupHealth> {
    groups.iter().filter(|g| g.in_service() < g.desired && out_of_scope(policy.scope, &[&g.tags]).is_none()).collect()
}

/// A finding once a group has been short since `since` for longer than its grace period plus
/// the launch margin.
pub fn group_short(group: &GroupHealth, since: EpochSeconds, policy: &Policy, now: EpochSeconds) -> Option<Finding> {
    let told = since == SHORT_TOLD;
    (!told && now.saturating_sub(since) > group.grace_seconds.saturating_add(policy.launch_margin_seconds)).then(|| {
        Finding::GroupShort { group: group.name.clone(), desired: group.desired, in_service: group.in_service(), since }
    })
}

/// The dead-letter queue as the sweep saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DeadLetters {
    pub queue: String,
    pub count: i64,
    /// When the oldest of the messages looked at was sent.
    pub oldest_sent_at: Option<EpochSeconds>,
    /// The command that redrives them, as the operator should type it.
    pub redrive: String,
    /// When the sweep looked: the notice goes out once a day while messages wait (the sample a
    /// look takes varies, so no message of it names the backlog for good).
    pub seen_at: EpochSeconds,
}

impl Finding {
    /// Derived from the resource and the condition observed: the same failure seen by every
    /// sweep until it is fixed has one key.
    pub fn idempotency_key(&self) -> String {
        match self {
            Self::Stopped { instance_id, launched_at, .. } => {
                format!("sweep:{instance_id}:stopped:{}", launched_at.unwrap_or_default())
            }
            Self::Impaired { instance_id, checks, .. } => format!("sweep:{instance_id}:impaired:{checks}"),
            Self::Unhealed { watch, .. } => format!("unhealed:{}", watch.id()),
            Self::GroupShort { group, since, .. } => format!("sweep:{group}:short:{since}"),
            Self::Replica { replica, take_out: true, status, window } => {
                format!("sweep:{replica}:reader-out:{status}:{window}")
            }
            Self::Replica { replica, take_out: false, window, .. } => format!("sweep:{replica}:reader-in:{window}"),
            Self::DeadLetters(dlq) => format!("dlq:{}:{}", dlq.queue, dlq.seen_at.div_euclid(86_400)),
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            Self::Stopped { instance_id, .. } | Self::Impaired { instance_id, .. } => instance_id,
            Self::Unhealed { watch, .. } => watch.action.resource(),
            Self::GroupShort { group, .. } => group,
            Self::Replica { replica, .. } => replica,
            Self::DeadLetters(dlq) => &dlq.queue,
        }
    }

    pub fn summary(&self) -> String {
        match self {
            Self::Stopped { instance_id, state_reason, .. } => format!(
                "the reconciler's sweep found standalone instance {instance_id} stopped ({state_reason}) with no event handled"
            ),
            Self::Impaired { instance_id, group, checks } => {
                format!("the reconciler's sweep found {instance_id} in {group} with impaired {checks}")
            }
            Self::Unhealed { watch, .. } => {
                format!("the reconciler found {} of {} not healed", watch.action.name(), watch.action.resource())
            }
            Self::GroupShort { group, desired, in_service, .. } => {
                format!("the reconciler's sweep found {group} with {in_service} of {desired} desired instances in service")
            }
            Self::Replica { replica, take_out: true, status, .. } => {
                format!("the reconciler's sweep found replica {replica} {status} while in its reader set")
            }
            Self::Replica { replica, take_out: false, .. } => format!(
                "the reconciler's sweep found replica {replica} out of its reader set, available and caught up"
            ),
            Self::DeadLetters(dlq) => format!("{} events wait in the dead-letter queue {}", dlq.count, dlq.queue),
        }
    }

    /// The instance the decision needs observed, if any.
    pub fn instance(&self) -> Option<&str> {
        match self {
            Self::Stopped { instance_id, .. } | Self::Impaired { instance_id, .. } => Some(instance_id),
            Self::Unhealed { .. } | Self::GroupShort { .. } | Self::Replica { .. } | Self::DeadLetters(_) => None,
        }
    }
}

/// Stopped standalone instances in scope worth a look: stopped by EC2, or stopped by a
/// StopInstances call that may be medic's own (the caller checks the recovery mark). A person's
/// stop reaches the healer's rule only through that mark, so it is never started.
pub fn stopped_standalone(instances: &[(String, InstanceFacts)], policy: &Policy) -> Vec<Finding> {
    instances
        .iter()
        .filter(|(_, facts)| facts.state == "stopped" && tag_value(&facts.tags, GROUP_NAME_TAG).is_none())
        .filter(|(_, facts)| out_of_scope(policy.scope, &[&facts.tags]).is_none())
        .filter_map(|(id, facts)| {
            let reason = facts.state_reason.as_deref()?;
            (reason.starts_with("Server.") || reason == USER_STOP).then(|| Finding::Stopped {
                instance_id: id.clone(),
                state_reason: reason.to_owned(),
                launched_at: facts.launched_at,
            })
        })
        .collect()
}

/// Members of in-scope groups that EC2 reports impaired (`impaired`: instance id and which checks).
pub fn impaired_members(impaired: &[(String, String)], groups: &[GroupHealth], policy: &Policy) -> Vec<Finding> {
    impaired
        .iter()
        .filter_map(|(id, checks)| {
            let group = groups.iter().find(|g| g.instances.iter().any(|i| i.id == *id))?;
            out_of_scope(policy.scope, &[&group.tags]).is_none().then(|| Finding::Impaired {
                instance_id: id.clone(),
                group: group.name.clone(),
                checks: checks.clone(),
            })
        })
        .collect()
}

/// The decision for a finding, on the instance as observed now: the instance healer's rules for
/// a stopped instance, the shared replacement rules for an impaired member, an escalation for an
/// unhealed remediation.
pub fn decide_finding(
    finding: &Finding,
    facts: &FindingFacts,
    account: &str,
    region: &str,
    policy: &Policy,
    now: EpochSeconds,
) -> Plan {
    let no_instance = InstanceObservation::default();
    let observed = match facts {
        FindingFacts::Instance(observed) => observed,
        _ => &no_instance,
    };
    match finding {
        Finding::Stopped { instance_id, .. } => {
            let change = InstanceStateChanged {
                event_id: finding.idempotency_key(),
                instance_id: instance_id.clone(),
                state: Ec2State::Stopped,
                occurred_at: now,
                account: account.to_owned(),
                region: region.to_owned(),
            };
            instance_healer::decide(&change, observed, policy, now)
        }
        Finding::Impaired { instance_id, checks, .. } => match &observed.member {
            Some(member) => {
                let why = format!("failed its EC2 {checks} (found by the reconciler's sweep)");
                replace_member(instance_id, member, observed.instance.as_ref(), &why, policy, now)
            }
            None => Plan::skip(instance_id, SkipReason::InstanceNotFound),
        },
        Finding::Unhealed { watch, deadline, seen } => escalate(watch, *deadline, seen),
        Finding::GroupShort { group, desired, in_service, since } => Plan {
            resource: group.clone(),
            decision: Decision::Alert(Alert {
                severity: Severity::Critical,
                headline: format!("{group}: {in_service} of {desired} in service for {} min", now.saturating_sub(*since) / 60),
                reason: format!(
                    "Auto Scaling group {group} has had fewer instances in service than desired ({in_service} of {desired}) since {}, longer than its health-check grace period plus {} min to launch: Auto Scaling is not bringing it back, and medic has no remediation of its own open on it",
                    format_timestamp(*since),
                    policy.launch_margin_seconds / 60
                ),
                advice: format!(
                    "Read the group's activity history (aws autoscaling describe-scaling-activities --auto-scaling-group-name {group}) for launch failures: capacity, launch template or AMI, quotas, subnets. medic does not add instances to make up for it."
                ),
                scope_label: format!("asg {group}"),
                held_back: None,
            }),
        },
        Finding::Replica { replica, take_out, status, .. } => {
            let (kind, message) = if *take_out {
                (DbEventKind::ReplicationError, format!("found by the reconciler's sweep: {replica} is {status} while in its reader set"))
            } else {
                (
                    DbEventKind::ReplicationResumed,
                    format!("found by the reconciler's sweep: {replica} is out of its reader set, available and caught up"),
                )
            };
            let event = DbEvent {
                source_arn: format!("arn:aws:rds:{region}:{account}:db:{replica}"),
                identifier: replica.clone(),
                source_type: DbSourceType::Instance,
                event_id: "medic-sweep".into(),
                kind,
                message,
                categories: Vec::new(),
                occurred_at_millis: now.saturating_mul(1000),
                account: account.to_owned(),
                region: region.to_owned(),
            };
            let observation = match facts {
                FindingFacts::Replica(facts) => DbObservation::Replica(Some(facts.clone())),
                _ => DbObservation::Replica(None),
            };
            decide_db(&event, &observation, policy, now)
        }
        Finding::DeadLetters(dlq) => dead_letters_notice(dlq, now),
    }
}

/// The warning that events wait in the dead-letter queue, with how to redrive them.
pub fn dead_letters_notice(dlq: &DeadLetters, now: EpochSeconds) -> Plan {
    let oldest = dlq.oldest_sent_at.map_or_else(String::new, |sent| {
        format!(
            "; the oldest was sent at {} ({} min ago)",
            format_timestamp(sent),
            now.saturating_sub(sent).max(0) / 60
        )
    });
    Plan {
        resource: dlq.queue.clone(),
        decision: Decision::Alert(Alert {
            severity: Severity::Warning,
            headline: format!("{} events in medic's dead-letter queue", dlq.count),
            reason: format!(
                "{} events that medic's functions failed on after every retry wait in {}{oldest}. Nothing handles them until they are redriven; the reconciler's sweep may have healed what they were about meanwhile.",
                dlq.count, dlq.queue
            ),
            advice: format!(
                "Read why they failed (each message's error attributes, the function's log), fix the cause, then see what each would do with `{} --dry-run` and redrive them with `{}`.",
                dlq.redrive, dlq.redrive
            ),
            scope_label: "medic".into(),
            held_back: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{GroupInstance, GroupMember};
    use crate::plan::{Action, Decision};
    use crate::policy::Scope;
    use crate::scope::MANAGED_TAG;

    const NOW: EpochSeconds = 2_000_000;

    fn policy() -> Policy {
        Policy { scope: Scope::Tagged, ..Policy::default() }
    }

    fn stopped(reason: &str, tags: &[(&str, &str)]) -> InstanceFacts {
        InstanceFacts {
            state: "stopped".into(),
            state_reason: Some(reason.into()),
            launched_at: Some(NOW - 3_600),
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..InstanceFacts::default()
        }
    }

    #[test]
    fn given_stopped_instances_when_swept_then_only_standalone_in_scope_ones_ec2_or_a_stop_call_stopped() {
        let managed = [(MANAGED_TAG, "true")];
        let instances = vec![
            ("i-ec2".to_owned(), stopped("Server.InternalError", &managed)),
            ("i-call".to_owned(), stopped(USER_STOP, &managed)),
            ("i-os".to_owned(), stopped("Client.InstanceInitiatedShutdown", &managed)),
            ("i-unmanaged".to_owned(), stopped("Server.InternalError", &[])),
            ("i-member".to_owned(), stopped("Server.InternalError", &[(MANAGED_TAG, "true"), (GROUP_NAME_TAG, "web")])),
            ("i-running".to_owned(), InstanceFacts { state: "running".into(), ..stopped("Server.x", &managed) }),
        ];
        let found: Vec<String> =
            stopped_standalone(&instances, &policy()).iter().map(|f| f.resource().to_owned()).collect();
        assert_eq!(found, ["i-ec2", "i-call"]);
    }

    #[test]
    fn given_the_same_stop_seen_by_two_sweeps_when_keyed_then_one_key_and_a_new_stop_gets_another() {
        let facts = stopped("Server.InternalError", &[(MANAGED_TAG, "true")]);
        let sweep = |facts: &InstanceFacts| stopped_standalone(&[("i-1".to_owned(), facts.clone())], &policy());
        assert_eq!(sweep(&facts)[0].idempotency_key(), sweep(&facts)[0].idempotency_key());
        let restarted_and_stopped_again = InstanceFacts { launched_at: Some(NOW), ..facts.clone() };
        assert_ne!(sweep(&facts)[0].idempotency_key(), sweep(&restarted_and_stopped_again)[0].idempotency_key());
    }

    #[test]
    fn given_impaired_instances_when_swept_then_only_members_of_in_scope_groups() {
        let group = |name: &str, id: &str, tags: &[(&str, &str)]| GroupHealth {
            name: name.into(),
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            instances: vec![GroupInstance {
                id: id.into(),
                lifecycle_state: "InService".into(),
                health_status: "Healthy".into(),
            }],
            ..GroupHealth::default()
        };
        let groups = [group("web", "i-web", &[(MANAGED_TAG, "true")]), group("batch", "i-batch", &[])];
        let impaired: Vec<(String, String)> = ["i-web", "i-batch", "i-standalone"]
            .iter()
            .map(|id| ((*id).to_owned(), "instance status check".to_owned()))
            .collect();
        assert_eq!(
            impaired_members(&impaired, &groups, &policy()),
            [Finding::Impaired {
                instance_id: "i-web".into(),
                group: "web".into(),
                checks: "instance status check".into()
            }]
        );
    }

    #[test]
    fn given_groups_short_of_desired_when_swept_then_a_finding_only_past_grace_plus_launch_margin() {
        let serving =
            GroupInstance { id: "i-1".into(), lifecycle_state: "InService".into(), health_status: "Healthy".into() };
        let group = |name: &str, desired: i32, tags: Vec<(String, String)>| GroupHealth {
            name: name.into(),
            desired,
            grace_seconds: 300,
            tags,
            instances: vec![serving.clone()],
        };
        let managed = vec![(MANAGED_TAG.to_owned(), "true".to_owned())];
        let groups = [group("short", 2, managed.clone()), group("full", 1, managed), group("unmanaged", 2, vec![])];
        let short: Vec<&str> = short_groups(&groups, &policy()).iter().map(|g| g.name.as_str()).collect();
        assert_eq!(short, ["short"]);
        let since = NOW - 300 - policy().launch_margin_seconds;
        assert_eq!(group_short(&groups[0], since, &policy(), NOW), None);
        let finding = group_short(&groups[0], since - 1, &policy(), NOW).unwrap();
        assert_eq!(finding.idempotency_key(), format!("sweep:short:short:{}", since - 1));
        let plan = decide_finding(&finding, &FindingFacts::Nothing, "1", "r", &policy(), NOW);
        let Decision::Alert(alert) = plan.decision else { panic!("{plan:?}") };
        assert_eq!(alert.severity, crate::plan::Severity::Critical);
        assert_eq!(alert.headline, "short: 1 of 2 in service for 15 min");
        assert_eq!(parse_short_member(&short_member("web|prod", 42)), Some(("web|prod", 42)));
        assert_eq!(group_short(&groups[0], SHORT_TOLD, &policy(), NOW), None, "already told");
    }

    #[test]
    fn given_replicas_and_their_reader_set_when_swept_then_out_if_they_cannot_serve_back_if_caught_up() {
        let tags = |pairs: &[(&str, &str)]| -> Tags {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let primary = DbInstance {
            id: "orders".into(),
            status: "available".into(),
            tags: tags(&[("medic:zone-id", "Z1"), ("medic:reader-record", "reader.orders.internal")]),
            ..DbInstance::default()
        };
        let replica = |id: &str, status: &str, managed: bool| DbInstance {
            id: id.into(),
            status: status.into(),
            source: Some("orders".into()),
            tags: if managed { tags(&[(MANAGED_TAG, "true")]) } else { Vec::new() },
            ..DbInstance::default()
        };
        let dbs = vec![
            primary,
            replica("r1", "storage-full", true),
            replica("r2", "available", true),
            replica("r3", "failed", false),
        ];
        let found: Vec<&str> = reader_replicas(&dbs, &policy()).iter().map(|(db, _, _)| db.id.as_str()).collect();
        assert_eq!(found, ["r1", "r2"], "replicas in scope whose source names a reader set");
        assert_eq!(reader_replicas(&dbs, &policy())[0].2.name, "reader.orders.internal.");

        assert!(replica_to_take_out(&dbs[1], 100, NOW).is_some(), "storage-full serves nothing");
        assert!(replica_to_take_out(&dbs[1], 0, NOW).is_none(), "already out");
        assert!(replica_to_take_out(&dbs[2], 100, NOW).is_none(), "available");
        let fresh = LagSample { seconds: 2.0, at: NOW - 60 };
        assert!(replica_to_put_back(&dbs[2], 0, Some(fresh), &policy(), NOW).is_some());
        assert!(replica_to_put_back(&dbs[2], 0, Some(LagSample { seconds: 90.0, ..fresh }), &policy(), NOW).is_none());
        assert!(replica_to_put_back(&dbs[2], 0, None, &policy(), NOW).is_none(), "no datapoint: not caught up");
        assert!(replica_to_put_back(&dbs[2], 100, Some(fresh), &policy(), NOW).is_none(), "already in");

        let back = replica_to_put_back(&dbs[2], 0, Some(fresh), &policy(), NOW).unwrap();
        assert_eq!(back.idempotency_key(), format!("sweep:r2:reader-in:{}", window_start(NOW, 3_600)));
        let records = vec![DnsRecord {
            name: "reader.orders.internal.".into(),
            record_type: "CNAME".into(),
            set_identifier: Some("r2".into()),
            weight: Some(0),
            value: Some("r2.rds".into()),
            ttl: Some(60),
            health_check_id: None,
        }];
        let location = RecordLocation { zone_id: "Z1".into(), name: "reader.orders.internal.".into() };
        let facts = FindingFacts::Replica(ReplicaFacts {
            replica: dbs[2].clone(),
            source_tags: dbs[0].tags.clone(),
            source_status: Some("available".into()),
            readers: Some((location, Ok(records))),
            lag: Some(fresh),
        });
        let plan = decide_finding(&back, &facts, "1", "us-east-1", &policy(), NOW);
        let Decision::Act { actions } = &plan.decision else { panic!("{plan:?}") };
        assert!(matches!(&actions[0].action, Action::SetReaderWeight { to: 100, from: 0, .. }), "{actions:?}");
    }

    #[test]
    fn given_findings_when_decided_then_each_gets_the_rules_of_the_event_it_stands_for() {
        let managed = vec![(MANAGED_TAG.to_owned(), "true".to_owned())];
        let ec2_stop = Finding::Stopped {
            instance_id: "i-1".into(),
            state_reason: "Server.InternalError".into(),
            launched_at: None,
        };
        let observed = InstanceObservation {
            instance: Some(stopped("Server.InternalError", &[(MANAGED_TAG, "true")])),
            ..InstanceObservation::default()
        };
        let plan = decide_finding(
            &ec2_stop,
            &FindingFacts::Instance(observed.clone()),
            "123456789012",
            "us-east-1",
            &policy(),
            NOW,
        );
        assert!(
            matches!(&plan.decision, Decision::Act { actions } if actions[0].action == Action::StartInstance { instance_id: "i-1".into(), completes_recovery: false }),
            "{plan:?}"
        );
        let own_stop =
            Finding::Stopped { instance_id: "i-1".into(), state_reason: USER_STOP.into(), launched_at: None };
        let person =
            InstanceObservation { instance: Some(stopped(USER_STOP, &[(MANAGED_TAG, "true")])), ..observed.clone() };
        let plan = decide_finding(&own_stop, &FindingFacts::Instance(person.clone()), "1", "r", &policy(), NOW);
        assert!(matches!(&plan.decision, Decision::Alert(alert) if alert.headline.contains("left alone")), "{plan:?}");
        let medic = InstanceObservation { stopped_by_medic: true, ..person };
        let plan = decide_finding(&own_stop, &FindingFacts::Instance(medic), "1", "r", &policy(), NOW);
        assert!(matches!(&plan.decision, Decision::Act { .. }), "{plan:?}");

        let impaired =
            Finding::Impaired { instance_id: "i-2".into(), group: "web".into(), checks: "system status check".into() };
        let member = InstanceObservation {
            instance: Some(InstanceFacts {
                state: "running".into(),
                tags: managed.clone(),
                ..InstanceFacts::default()
            }),
            member: Some(GroupMember {
                group: "web".into(),
                lifecycle_state: "InService".into(),
                health_status: "Healthy".into(),
                group_tags: managed,
                desired_capacity: 4,
                ..GroupMember::default()
            }),
            stopped_by_medic: false,
        };
        let plan = decide_finding(&impaired, &FindingFacts::Instance(member), "1", "r", &policy(), NOW);
        let Decision::Act { actions } = &plan.decision else { panic!("{plan:?}") };
        assert_eq!(actions[0].action, Action::ReplaceInstance { group: "web".into(), instance_id: "i-2".into() });
        assert!(actions[0].reason.contains("failed its EC2 system status check"), "{}", actions[0].reason);
    }
}
