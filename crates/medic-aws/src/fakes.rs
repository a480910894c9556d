//! In-memory port implementations for unit tests of handlers: they record every call so a test
//! can prove that no AWS call was made, and they inject failures moto cannot produce
//! (throttling). Behaviour against AWS itself is tested against moto, not here.

use std::collections::HashMap;
use std::sync::Mutex;

use medic_core::alarm_responder::AlarmChanged;
use medic_core::alarm_responder::{AlarmFacts, AlarmNow, GroupCapacity};
use medic_core::fleet::{GroupMember, InstanceFacts, InstanceObservation, GROUP_NAME_TAG};
use medic_core::guard::{self, Claim, Cooldown, InFlight};
use medic_core::notice::Notice;
use medic_core::rds_rerouter::{Cluster, DbInstance, DnsRecord, LagSample, RecordLocation};
use medic_core::scope::Tags;
use medic_core::scope::MANAGED_TAG;
use medic_core::time::EpochSeconds;
use medic_core::Action;

use crate::error::PortError;
use crate::ports::{
    AlarmInspector, DbInspector, DnsInspector, GroupInspector, GuardItems, InstanceInspector, LagInspector, Ledger,
    Notifier, PortResult, Refusal, Remediator, Take, TargetInspector,
};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Instances (and their group) with a fixed observation; records calls; `apply` can be made to
/// fail.
#[derive(Debug, Default)]
pub struct FakeInstances {
    pub observation: InstanceObservation,
    pub group: Option<(GroupCapacity, Tags)>,
    pub apply_error: Option<PortError>,
    pub calls: Mutex<Vec<String>>,
}

impl GroupInspector for FakeInstances {
    async fn observe_group(&self, group: &str) -> PortResult<Option<(GroupCapacity, Tags)>> {
        lock(&self.calls).push(format!("observe group {group}"));
        Ok(self.group.clone())
    }
}

/// Alarm facts by alarm name; records calls.
#[derive(Debug, Default)]
pub struct FakeAlarms {
    pub facts: HashMap<String, AlarmFacts>,
    pub calls: Mutex<Vec<String>>,
}

impl AlarmInspector for FakeAlarms {
    async fn alarm_facts(&self, change: &AlarmChanged) -> PortResult<AlarmFacts> {
        lock(&self.calls).push(format!("describe alarm {}", change.alarm_name));
        let mut facts = self.facts.get(&change.alarm_name).cloned().unwrap_or_default();
        // Unless a test says otherwise, the alarm is still in the event's own state.
        facts.now = facts.now.or(Some(AlarmNow { state: change.state, changed_at_millis: change.changed_at_millis }));
        Ok(facts)
    }
}

/// A target group whose unhealthy targets are fixed.
#[derive(Debug, Default)]
pub struct FakeTargets {
    pub unhealthy: Vec<String>,
}

impl TargetInspector for FakeTargets {
    async fn unhealthy_targets(&self, _target_group_arn: &str) -> PortResult<Option<Vec<String>>> {
        Ok(Some(self.unhealthy.clone()))
    }
}

impl InstanceInspector for FakeInstances {
    async fn observe_instance(&self, instance_id: &str) -> PortResult<InstanceObservation> {
        lock(&self.calls).push(format!("observe {instance_id}"));
        Ok(self.observation.clone())
    }

    async fn observe_instances(&self, instance_ids: &[String]) -> PortResult<Vec<(String, InstanceObservation)>> {
        lock(&self.calls).push(format!("observe many {}", instance_ids.join(",")));
        Ok(instance_ids.iter().map(|id| (id.clone(), self.observation.clone())).collect())
    }
}

impl Remediator for FakeInstances {
    async fn apply(&self, action: &Action) -> PortResult<()> {
        lock(&self.calls).push(format!("{} {}", action.name(), action.resource()));
        self.apply_error.clone().map_or(Ok(()), Err)
    }
}

/// RDS, its replica lag and Route 53 in one: fixed instances, clusters, lag and records by zone;
/// records calls; `apply` updates reader weights and the writer record so a second event sees
/// the first one's effect.
#[derive(Debug, Default)]
pub struct FakeDatabases {
    pub instances: HashMap<String, DbInstance>,
    pub clusters: HashMap<String, Cluster>,
    pub lag: HashMap<String, LagSample>,
    pub records: Mutex<Vec<(String, DnsRecord)>>,
    pub calls: Mutex<Vec<String>>,
}

impl DbInspector for FakeDatabases {
    async fn db_instance(&self, id: &str) -> PortResult<Option<DbInstance>> {
        lock(&self.calls).push(format!("describe {id}"));
        Ok(self.instances.get(id).cloned())
    }

    async fn db_cluster(&self, id: &str) -> PortResult<Option<Cluster>> {
        lock(&self.calls).push(format!("describe cluster {id}"));
        Ok(self.clusters.get(id).cloned())
    }
}

impl LagInspector for FakeDatabases {
    async fn replica_lag(&self, db_id: &str, _aurora: bool, _now: EpochSeconds) -> PortResult<Option<LagSample>> {
        Ok(self.lag.get(db_id).copied())
    }
}

impl DnsInspector for FakeDatabases {
    async fn record_sets(&self, location: &RecordLocation) -> PortResult<Vec<DnsRecord>> {
        Ok(lock(&self.records)
            .iter()
            .filter(|(zone, record)| *zone == location.zone_id && record.name == location.name)
            .map(|(_, record)| record.clone())
            .collect())
    }
}

impl Remediator for FakeDatabases {
    async fn apply(&self, action: &Action) -> PortResult<()> {
        lock(&self.calls).push(format!("{} {}", action.name(), action.resource()));
        let mut records = lock(&self.records);
        match action {
            Action::SetReaderWeight { reader, to, .. } => {
                for (_, record) in records.iter_mut() {
                    if record.name == reader.record_name
                        && record.set_identifier.as_deref() == Some(reader.replica.as_str())
                    {
                        record.weight = Some(*to);
                    }
                }
            }
            Action::PointWriterRecord { zone_id, record_name, endpoint, ttl, health_check_id, .. } => {
                records.retain(|(zone, record)| !(zone == zone_id && record.name == *record_name));
                records.push((
                    zone_id.clone(),
                    DnsRecord {
                        name: record_name.clone(),
                        record_type: "CNAME".into(),
                        value: Some(endpoint.clone()),
                        ttl: Some(*ttl),
                        health_check_id: health_check_id.clone(),
                        ..DnsRecord::default()
                    },
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Record {
    completed: Option<(String, Option<String>, bool)>,
    number: i64,
    started_by: String,
    members: std::collections::BTreeSet<String>,
    done: bool,
    started_at: i64,
    intent: Option<Box<Action>>,
}

impl Record {
    fn cooldown(&self) -> Cooldown {
        Cooldown {
            until: self.number,
            started_by: self.started_by.clone(),
            done: self.done,
            started_at: self.started_at,
            intent: self.intent.clone(),
        }
    }
}

/// A ledger in a map, with the same claim / cooldown / breaker rules as the DynamoDB one.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    items: Mutex<HashMap<String, Record>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    pub calls: Mutex<Vec<String>>,
    /// The error the next `take` fails with (DynamoDB's TransactionConflict, a throttle), once.
    pub take_error: Mutex<Option<PortError>>,
    /// A group's in-flight item (its key) another event writes between the guard's read and
    /// its transaction, once.
    pub race_before_take: Mutex<Option<String>>,
}

impl MemoryLedger {
    fn call(&self, what: &str, key: &str) {
        lock(&self.calls).push(format!("{what} {key}"));
    }

    /// Turns the pause switch on, as `aws dynamodb put-item` does on the real table.
    pub fn pause(&self, reason: &str) {
        lock(&self.items)
            .insert(guard::PAUSE_KEY.to_owned(), Record { started_by: reason.to_owned(), ..Record::default() });
    }

    /// The outcome and notice recorded for an event key, as the ledger item would hold them.
    pub fn recorded(&self, key: &str) -> Option<(String, Option<String>)> {
        lock(&self.items).get(key)?.completed.as_ref().map(|(outcome, notice, _)| (outcome.clone(), notice.clone()))
    }

    /// A group's replacements in flight, as its item holds them.
    pub fn in_flight(&self, key: &str) -> Option<InFlight> {
        lock(&self.in_flight).get(key).cloned()
    }

    fn running(&self, key: &str, now: EpochSeconds) -> Option<Cooldown> {
        lock(&self.items).get(key).filter(|r| r.number > now).map(Record::cooldown)
    }

    /// Keys currently held, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.items).keys().cloned().collect();
        keys.sort();
        keys
    }
}

impl Ledger for MemoryLedger {
    async fn claim(&self, key: &str, _now: EpochSeconds) -> PortResult<Claim> {
        self.call("claim", key);
        let mut items = lock(&self.items);
        match items.get(key) {
            None => {
                items.insert(key.to_owned(), Record::default());
                Ok(Claim::Claimed)
            }
            Some(Record { completed: Some((outcome, notice, notified)), .. }) => Ok(Claim::Completed {
                outcome: outcome.clone(),
                pending_notice: if *notified { None } else { notice.clone() },
            }),
            Some(_) => Ok(Claim::InProgress),
        }
    }

    async fn complete(&self, key: &str, outcome: &str, notice: Option<&str>, _now: EpochSeconds) -> PortResult<()> {
        self.call("complete", key);
        let record = Record {
            completed: Some((outcome.to_owned(), notice.map(str::to_owned), notice.is_none())),
            number: 0,
            started_by: String::new(),
            ..Record::default()
        };
        lock(&self.items).insert(key.to_owned(), record);
        Ok(())
    }

    async fn mark_notified(&self, key: &str) -> PortResult<()> {
        self.call("notified", key);
        if let Some(Record { completed: Some((_, _, notified)), .. }) = lock(&self.items).get_mut(key) {
            *notified = true;
        }
        Ok(())
    }

    async fn release(&self, key: &str) -> PortResult<()> {
        self.call("release", key);
        lock(&self.items).remove(key);
        Ok(())
    }

    async fn cooldown_until(&self, key: &str, now: EpochSeconds) -> PortResult<Option<Cooldown>> {
        self.call("cooldown?", key);
        Ok(self.running(key, now))
    }

    async fn start_cooldown(
        &self,
        key: &str,
        until: EpochSeconds,
        now: EpochSeconds,
        started_by: &str,
        intent: Option<&Action>,
    ) -> PortResult<bool> {
        self.call("cooldown", key);
        let mut items = lock(&self.items);
        if items.get(key).is_some_and(|r| r.number > now) {
            return Ok(false);
        }
        items.insert(
            key.to_owned(),
            Record {
                completed: None,
                number: until,
                started_by: started_by.to_owned(),
                members: std::collections::BTreeSet::new(),
                done: false,
                started_at: now,
                intent: intent.cloned().map(Box::new),
            },
        );
        Ok(true)
    }

    async fn mark_done(&self, key: &str) -> PortResult<()> {
        self.call("done", key);
        if let Some(record) = lock(&self.items).get_mut(key) {
            record.done = true;
        }
        Ok(())
    }

    async fn forget(&self, key: &str) -> PortResult<()> {
        self.call("forget", key);
        lock(&self.items).remove(key);
        Ok(())
    }

    async fn remove_from_set(&self, key: &str, member: &str) -> PortResult<()> {
        self.call("breaker-release", key);
        if let Some(record) = lock(&self.items).get_mut(key) {
            record.members.remove(member);
        }
        Ok(())
    }

    async fn add_to_set(&self, key: &str, member: &str, _expires_at: EpochSeconds) -> PortResult<Vec<String>> {
        self.call("add", key);
        let mut items = lock(&self.items);
        let record = items.entry(key.to_owned()).or_default();
        record.members.insert(member.to_owned());
        Ok(record.members.iter().cloned().collect())
    }

    async fn set_members(&self, key: &str) -> PortResult<Vec<String>> {
        self.call("members", key);
        Ok(lock(&self.items).get(key).map(|r| r.members.iter().cloned().collect()).unwrap_or_default())
    }

    async fn pause_switch(&self) -> PortResult<Option<String>> {
        self.call("pause?", guard::PAUSE_KEY);
        Ok(lock(&self.items).get(guard::PAUSE_KEY).map(|r| r.started_by.clone()))
    }

    async fn read_guard(&self, keys: &[String], now: EpochSeconds) -> PortResult<GuardItems> {
        self.call("read-guard", &keys.join(","));
        let mut read = GuardItems::default();
        for key in keys {
            if let Some(cooldown) = self.running(key, now) {
                read.cooldowns.insert(key.clone(), cooldown);
            }
            if let Some(record) = lock(&self.items).get(key).filter(|r| !r.members.is_empty()) {
                read.sets.insert(key.clone(), record.members.iter().cloned().collect());
            }
            if let Some(in_flight) = lock(&self.in_flight).get(key) {
                read.in_flight.insert(key.clone(), in_flight.clone());
            }
        }
        Ok(read)
    }

    async fn take(&self, writes: &[Take<'_>], now: EpochSeconds) -> PortResult<Result<(), Refusal>> {
        self.call("take", &writes.len().to_string());
        if let Some(error) = lock(&self.take_error).take() {
            return Err(error);
        }
        if let Some(key) = lock(&self.race_before_take).take() {
            lock(&self.in_flight).entry(key).or_default().version += 1;
        }
        let mut items = lock(&self.items);
        let mut in_flight = lock(&self.in_flight);
        for (index, write) in writes.iter().enumerate() {
            let refused = match write {
                Take::Cooldown { key, .. } => items.get(*key).is_some_and(|r| r.number > now),
                Take::Slot { key, member, max, .. } => {
                    items.get(*key).is_some_and(|r| !r.members.contains(*member) && r.members.len() >= *max as usize)
                }
                Take::InFlight { key, read, .. } => in_flight.get(*key).map(|f| f.version) != *read,
            };
            if refused {
                let running = match write {
                    Take::Cooldown { key, .. } => items.get(*key).map(Record::cooldown),
                    _ => None,
                };
                return Ok(Err(Refusal { index, running }));
            }
        }
        for write in writes {
            match write {
                Take::Cooldown { key, until, started_by, intent } => {
                    let record = Record {
                        number: *until,
                        started_by: (*started_by).to_owned(),
                        started_at: now,
                        intent: intent.cloned().map(Box::new),
                        ..Record::default()
                    };
                    items.insert((*key).to_owned(), record);
                }
                Take::Slot { key, member, .. } => {
                    items.entry((*key).to_owned()).or_default().members.insert((*member).to_owned());
                }
                Take::InFlight { key, entry, prune, .. } => {
                    let group = in_flight.entry((*key).to_owned()).or_default();
                    group.version += 1;
                    group.entries.retain(|e| !prune.contains(&e.name()) && e.name() != entry.name());
                    group.entries.push((*entry).clone());
                }
            }
        }
        Ok(Ok(()))
    }

    async fn mark_applied(&self, key: &str, entry: &str, at_ms: i64) -> PortResult<()> {
        self.call("applied", key);
        if let Some(group) = lock(&self.in_flight).get_mut(key) {
            group.entries.iter_mut().filter(|e| e.name() == entry).for_each(|e| e.applied_at_ms = Some(at_ms));
        }
        Ok(())
    }

    async fn drop_in_flight(&self, key: &str, entry: &str) -> PortResult<()> {
        self.call("drop-in-flight", key);
        if let Some(group) = lock(&self.in_flight).get_mut(key) {
            group.entries.retain(|e| e.name() != entry);
        }
        Ok(())
    }
}

/// Collects notices; can be made to fail.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    pub sent: Mutex<Vec<Notice>>,
    pub error: Mutex<Option<PortError>>,
}

impl MemoryNotifier {
    pub fn subjects(&self) -> Vec<String> {
        lock(&self.sent).iter().map(|n| n.subject.clone()).collect()
    }

    pub fn fail_with(&self, error: Option<PortError>) {
        *lock(&self.error) = error;
    }
}

impl Notifier for MemoryNotifier {
    async fn publish(&self, notice: &Notice) -> PortResult<()> {
        if let Some(error) = lock(&self.error).clone() {
            return Err(error);
        }
        lock(&self.sent).push(notice.clone());
        Ok(())
    }
}

/// An instance as handler tests usually see it: `state` in EC2, InService and healthy in the
/// opted-in group `web-prod` (grace period 300 s), launched two hours before `now`.
pub fn asg_member(state: &str, now: EpochSeconds) -> InstanceObservation {
    let managed = vec![(MANAGED_TAG.to_owned(), "true".to_owned())];
    let mut instance_tags = managed.clone();
    instance_tags.push((GROUP_NAME_TAG.to_owned(), "web-prod".to_owned()));
    InstanceObservation {
        instance: Some(InstanceFacts {
            state: state.into(),
            tags: instance_tags,
            launched_at: Some(now - 7200),
            ..InstanceFacts::default()
        }),
        member: Some(GroupMember {
            group: "web-prod".into(),
            lifecycle_state: "InService".into(),
            health_status: "HEALTHY".into(),
            health_check_grace_period_seconds: 300,
            suspended_processes: vec![],
            group_tags: managed,
            desired_capacity: 3,
            out_of_service: 0,
        }),
        stopped_by_medic: false,
    }
}
