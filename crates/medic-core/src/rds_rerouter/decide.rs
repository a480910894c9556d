//! RDS rerouter decisions: what to observe for an RDS event, and what to do about it. A lost
//! primary gets its best replica promoted and the writer record repointed; a broken replica
//! leaves the weighted reader record set (and comes back when replication resumes); a failed
//! Aurora failover is retried once; everything else is a notice.

use super::event::{DbEvent, DbEventKind, DbSourceType};
use crate::guard::{self, Cooldown};
use crate::plan::{alert, Action, Decision, Plan, PlannedAction, ReaderRecord, Severity, SkipReason};
use crate::policy::{Policy, Scope};
use crate::scope::{out_of_scope, tag_value, Tags};
use crate::time::{format_timestamp, EpochSeconds};

/// Tags on a primary (or a replica, for its reader record) that tell medic where its DNS is.
pub const ZONE_TAG: &str = "medic:zone-id";
pub const WRITER_RECORD_TAG: &str = "medic:writer-record";
pub const READER_RECORD_TAG: &str = "medic:reader-record";
/// The weight a replica gets back when it returns to the reader set (default 100).
pub const READER_WEIGHT_TAG: &str = "medic:reader-weight";
pub const DEFAULT_READER_WEIGHT: i64 = 100;
pub const DEFAULT_RECORD_TTL: i64 = 60;
/// A ReplicaLag datapoint older than this says nothing about the replica now.
pub const LAG_MAX_AGE_SECONDS: i64 = 300;

/// Statuses in which a primary is lost for good: nobody can bring it back, so promoting a
/// replica (irreversible) cannot leave two writers. Anything else that is not `available`
/// (rebooting, modifying, backing-up…) can pass, and promoting then would leave two writers.
const TERMINAL_STATUSES: [&str; 4] =
    ["failed", "restore-error", "incompatible-restore", "inaccessible-encryption-credentials"];

/// Statuses an operator can fix, with what to fix: a fixed old primary would come back as a
/// second writer next to a promoted replica, so medic never promotes past them.
const RECOVERABLE_STATUSES: [(&str, &str); 6] = [
    ("incompatible-parameters", "fix its DB parameter group (memory settings too large for the instance class, an invalid value) and reboot it"),
    ("incompatible-network", "fix its subnet group and VPC (a subnet with no free IP addresses, a deleted subnet), then start or modify it"),
    ("incompatible-option-group", "fix its option group (a required option missing or incompatible) and modify it"),
    ("inaccessible-encryption-credentials-recoverable", "restore access to its KMS key (re-enable the key, restore the key policy or grant) within the recovery window; RDS then brings it back"),
    ("storage-full", "add storage (modify-db-instance --allocated-storage, or turn on storage autoscaling) and free space"),
    ("stopped", "start it (aws rds start-db-instance), after checking in CloudTrail who stopped it and why"),
];

/// A DB instance as DescribeDBInstances shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DbInstance {
    pub id: String,
    pub status: String,
    pub az: Option<String>,
    pub multi_az: bool,
    pub backup_retention_days: i32,
    pub endpoint: Option<String>,
    pub tags: Tags,
    /// For a read replica: its source instance.
    pub source: Option<String>,
    pub replicas: Vec<String>,
    pub cluster: Option<String>,
}

/// The latest CloudWatch replica-lag datapoint.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LagSample {
    pub seconds: f64,
    pub at: EpochSeconds,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Replica {
    pub db: DbInstance,
    pub lag: Option<LagSample>,
}

/// Where a record lives, from the DB's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RecordLocation {
    pub zone_id: String,
    /// Fully qualified, lower case, with the trailing dot Route 53 uses.
    pub name: String,
}

/// One Route 53 record set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DnsRecord {
    pub name: String,
    pub record_type: String,
    pub set_identifier: Option<String>,
    pub weight: Option<i64>,
    pub value: Option<String>,
    pub ttl: Option<i64>,
    pub health_check_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClusterMember {
    pub id: String,
    pub writer: bool,
    pub status: String,
    pub az: Option<String>,
    pub promotion_tier: i32,
    pub tags: Tags,
    pub lag: Option<LagSample>,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Cluster {
    pub id: String,
    pub status: String,
    pub tags: Tags,
    pub members: Vec<ClusterMember>,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PromotionFacts {
    pub primary: DbInstance,
    pub replicas: Vec<Replica>,
    /// The writer record's location (from the primary's tags) and the record as it is now, or
    /// why it could not be read.
    pub writer: Option<(RecordLocation, Result<Option<DnsRecord>, String>)>,
    /// The once-per-day promotion guard of this primary, if medic promoted recently.
    pub promotion_guard: Option<Cooldown>,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ReplicaFacts {
    pub replica: DbInstance,
    pub source_tags: Tags,
    /// The source (primary) instance's status, when it could be read.
    pub source_status: Option<String>,
    /// The reader record set's location and its records (all set identifiers), or why they could
    /// not be read.
    pub readers: Option<(RecordLocation, Result<Vec<DnsRecord>, String>)>,
    /// The replica's latest lag, read for a resumed replica only.
    pub lag: Option<LagSample>,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClusterFacts {
    pub cluster: Cluster,
    /// The once-per-day failover retry guard of this cluster, if medic retried recently.
    pub failover_guard: Option<Cooldown>,
}

/// What medic learned about the event's DB; `None` inside when it does not exist.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum DbObservation {
    /// The instance, and for a read replica its source's tags (its opt-in covers the replica).
    Instance {
        db: Option<DbInstance>,
        source_tags: Tags,
    },
    Promotion(Option<PromotionFacts>),
    Replica(Option<ReplicaFacts>),
    Cluster(Option<ClusterFacts>),
}

/// Which observation an event needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The instance alone, for a notice.
    Instance,
    /// The primary, its replicas with their lag, the writer record and the promotion guard.
    Promotion,
    /// The replica, its source's tags and its reader record set.
    Replica,
    /// The Aurora cluster, its members and the failover retry guard.
    Cluster,
    /// Nothing: medic ignores this event, for this reason.
    Ignore(SkipReason),
}

pub fn need(event: &DbEvent) -> Need {
    use DbEventKind as K;
    let need = match &event.kind {
        K::FailoverStarted
        | K::FailoverToStandbyComplete
        | K::FailoverCompleted
        | K::MultiAzActivationStarted
        | K::MultiAzActivationComplete
        | K::Shutdown
        | K::Restarted
        | K::ReplicationStopped
        | K::ReplicationReset => Need::Instance,
        K::InstanceFailed | K::FailoverNotAttempted => Need::Promotion,
        K::ReplicationError | K::ReplicationResumed | K::ReplicationTerminated | K::ReplicaCreationFailed => {
            Need::Replica
        }
        K::AuroraFailoverFailed
        | K::AuroraFailoverRestarted
        | K::AuroraFailoverFinished
        | K::AuroraFailoverStartedWithinAz
        | K::AuroraFailoverStartedAcrossAz => Need::Cluster,
        K::Unknown(event_id) => return Need::Ignore(SkipReason::UnknownDbEvent { event_id: event_id.clone() }),
    };
    let fits = match event.source_type {
        DbSourceType::Cluster => need == Need::Cluster,
        DbSourceType::Instance => need != Need::Cluster,
    };
    if fits {
        need
    } else {
        Need::Ignore(SkipReason::UnknownDbEvent {
            event_id: format!("{} from a {:?} source", event.event_id, event.source_type),
        })
    }
}

/// Whether `primary` is a case for promotion at all: a standalone instance, lost for good, with
/// no Multi-AZ standby. Anything else is decided on the primary alone, so the replicas, their lag
/// and the writer record need not be read.
pub fn may_need_promotion(primary: &DbInstance) -> bool {
    primary.source.is_none()
        && primary.cluster.is_none()
        && !primary.multi_az
        && TERMINAL_STATUSES.contains(&primary.status.as_str())
}

/// The ledger key of the times medic saw `primary` in a terminal status (a set, so a retry of the
/// same read adds nothing).
pub fn terminal_seen_key(primary: &str) -> String {
    format!("terminal-seen#{primary}")
}

/// How long a sighting of a terminal status counts: an older one belongs to another incident.
pub const TERMINAL_SEEN_SECONDS: i64 = 3600;

/// Whether the terminal status seen at `seen` (epoch seconds as ledger members, now's included)
/// has been seen long enough ago that a read now confirms it: `Err(due)` with the time from
/// which a second read counts.
pub fn confirm_terminal(seen: &[String], now: EpochSeconds, policy: &Policy) -> Result<(), EpochSeconds> {
    let first = seen
        .iter()
        .filter_map(|member| member.parse::<EpochSeconds>().ok())
        .filter(|at| *at > now - TERMINAL_SEEN_SECONDS && *at <= now)
        .min()
        .unwrap_or(now);
    let due = first + policy.promote_confirm_seconds;
    if now >= due {
        Ok(())
    } else {
        Err(due)
    }
}

/// A DB instance in `status` serves nothing: lost for good, or waiting for an operator's fix.
pub fn cannot_serve(status: &str) -> bool {
    TERMINAL_STATUSES.contains(&status) || recoverable(status).is_some()
}

/// Why a replica's latest lag says it could serve stale reads; `None` once it has caught up
/// (a fresh datapoint at most `MEDIC_MAX_PROMOTE_LAG_SECONDS`).
pub fn lagging(lag: Option<LagSample>, policy: &Policy, now: EpochSeconds) -> Option<String> {
    let max = policy.max_promote_lag_seconds;
    match lag {
        None => Some("there is no ReplicaLag datapoint yet".to_owned()),
        Some(lag) if now - lag.at > LAG_MAX_AGE_SECONDS => {
            Some(format!("its latest ReplicaLag datapoint is {} s old", now - lag.at))
        }
        Some(lag) if lag.seconds < 0.0 => Some("ReplicaLag says replication is not running".to_owned()),
        #[allow(clippy::cast_precision_loss)]
        Some(lag) if lag.seconds > max as f64 => Some(format!("ReplicaLag is {} s, above {max} s", lag.seconds)),
        Some(_) => None,
    }
}

/// What an operator must fix when `status` is one they can recover from.
fn recoverable(status: &str) -> Option<&'static str> {
    RECOVERABLE_STATUSES.iter().find(|(s, _)| *s == status).map(|(_, fix)| *fix)
}

/// The ledger key of the once-per-day promotion guard of `primary`.
pub fn promotion_guard_key(primary: &str) -> String {
    guard::cooldown_key(&Action::PromoteReplica {
        primary: primary.to_owned(),
        replica: String::new(),
        backup_retention_days: 0,
    })
}

/// The ledger key of the once-per-day failover retry guard of `cluster`.
pub fn failover_guard_key(cluster: &str) -> String {
    guard::cooldown_key(&Action::FailoverCluster { cluster: cluster.to_owned(), target: String::new() })
}

/// An endpoint or CNAME value compared by name: lower case, no trailing dot.
fn endpoint_name(value: &str) -> String {
    value.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A record name as Route 53 lists it: lower case with a trailing dot.
pub fn fqdn(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

fn location(tags: &[(String, String)], record_tag: &str) -> Option<RecordLocation> {
    let zone = tag_value(tags, ZONE_TAG)?.trim();
    let zone = zone.strip_prefix("/hostedzone/").unwrap_or(zone);
    let name = tag_value(tags, record_tag)?;
    (!zone.is_empty() && !name.trim().is_empty()).then(|| RecordLocation { zone_id: zone.to_owned(), name: fqdn(name) })
}

/// The writer record of a primary, from its `medic:zone-id` and `medic:writer-record` tags.
pub fn writer_record_location(primary_tags: &[(String, String)]) -> Option<RecordLocation> {
    location(primary_tags, WRITER_RECORD_TAG)
}

/// The reader record set of a replica: its own `medic:zone-id` + `medic:reader-record` tags,
/// else its source's.
pub fn reader_record_location(
    replica_tags: &[(String, String)],
    source_tags: &[(String, String)],
) -> Option<RecordLocation> {
    location(replica_tags, READER_RECORD_TAG).or_else(|| location(source_tags, READER_RECORD_TAG))
}

pub fn decide_db(event: &DbEvent, observation: &DbObservation, policy: &Policy, now: EpochSeconds) -> Plan {
    match observation {
        DbObservation::Instance { db, source_tags } => decide_notice(event, db.as_ref(), source_tags, policy),
        DbObservation::Promotion(facts) => decide_promotion(event, facts.as_ref(), policy, now),
        DbObservation::Replica(facts) => decide_replica(event, facts.as_ref(), policy, now),
        DbObservation::Cluster(facts) => decide_cluster(event, facts.as_ref(), policy, now),
    }
}

fn not_found(event: &DbEvent, what: &str) -> Plan {
    Plan::skip(&event.identifier, SkipReason::TargetNotFound { what: format!("{what} {}", event.identifier) })
}

fn scope_skip(event: &DbEvent, policy: &Policy, tag_sets: &[&[(String, String)]]) -> Option<Plan> {
    out_of_scope(policy.scope, tag_sets).map(|why| Plan::skip(&event.identifier, SkipReason::OutOfScope { why }))
}

/// Why an Aurora reader may not be chosen, or `None` when it may. Only `medic:managed=false`
/// excludes one: FailoverDBCluster acts on the cluster, whose opt-in covers its readers.
fn opted_out(tags: &[(String, String)]) -> Option<String> {
    out_of_scope(Scope::All, &[tags])
}

fn in_preferred_az(az: Option<&str>, policy: &Policy) -> bool {
    policy.preferred_az.is_some() && az == policy.preferred_az.as_deref()
}

fn decide_notice(event: &DbEvent, db: Option<&DbInstance>, source_tags: &[(String, String)], policy: &Policy) -> Plan {
    use DbEventKind as K;
    let Some(db) = db else { return not_found(event, "DB instance") };
    if let Some(plan) = scope_skip(event, policy, &[&db.tags, source_tags]) {
        return plan;
    }
    let (id, status) = (&db.id, &db.status);
    let az = db.az.as_deref().unwrap_or("an unknown AZ");
    let (severity, headline, reason, advice) = match &event.kind {
        K::FailoverStarted => (
            Severity::Warning,
            "Multi-AZ failover started".to_owned(),
            format!("RDS is failing {id} over to its standby"),
            "Writes fail for one to two minutes while the endpoint moves to the standby; medic reports again when RDS says the failover completed. Check the application reconnects.".to_owned(),
        ),
        K::FailoverToStandbyComplete | K::FailoverCompleted if status == "available" => (
            Severity::Info,
            format!("failover complete, available in {az}"),
            format!("RDS finished the Multi-AZ failover and {id} is available in {az}"),
            "Nothing to fix. Read the RDS event log for why RDS failed over; the old primary's host is now the standby.".to_owned(),
        ),
        K::FailoverToStandbyComplete | K::FailoverCompleted => (
            Severity::Warning,
            format!("failover complete but {id} is {status}"),
            format!("RDS reported the Multi-AZ failover complete, yet {id} is {status}, not available"),
            format!("Watch {id} until it is available; if it stays {status}, read the RDS events and consider a point-in-time restore."),
        ),
        K::MultiAzActivationStarted | K::MultiAzActivationComplete => (
            Severity::Info,
            format!("Multi-AZ conversion: {}", event.message.trim_end_matches('.')),
            format!("{id} is being converted to Multi-AZ (now {status})"),
            "Nothing to fix; expect higher write latency while the standby syncs.".to_owned(),
        ),
        K::Shutdown => (
            Severity::Warning,
            format!("shut down (now {status})"),
            format!("{id} was shut down"),
            format!("If nobody stopped {id} on purpose (CloudTrail StopDBInstance), start it; clients cannot reach it meanwhile."),
        ),
        K::Restarted => (
            Severity::Info,
            format!("restarted (now {status})"),
            format!("{id} restarted"),
            "Nothing to fix if the restart was expected; otherwise read the RDS event log.".to_owned(),
        ),
        K::ReplicationStopped => (
            Severity::Warning,
            "replication stopped by hand".to_owned(),
            format!("replication to read replica {id} was stopped manually, so it serves data that gets older"),
            format!("medic does not undo an operator's stop. Resume replication on {id}, or take it out of the reader set; RDS terminates replication stopped for 30 days."),
        ),
        _ => (
            Severity::Info,
            event.message.trim_end_matches('.').to_owned(),
            format!("RDS reported {} for {id} (now {status})", event.event_id),
            "Nothing to fix unless this was unexpected.".to_owned(),
        ),
    };
    alert(&event.identifier, severity, format!("rds {id}"), headline, reason, advice)
}

/// Why `replica` may not be promoted, or `None` when it may.
fn promotion_refusal(replica: &Replica, policy: &Policy, now: EpochSeconds) -> Option<String> {
    let db = &replica.db;
    if let Some(why) = out_of_scope(policy.scope, &[&db.tags]) {
        return Some(why);
    }
    if db.status != "available" {
        return Some(format!("status {}", db.status));
    }
    if db.endpoint.is_none() {
        return Some("no endpoint".into());
    }
    let max = policy.max_promote_lag_seconds;
    match replica.lag {
        None => Some("no ReplicaLag datapoint, so the data-loss window is unknown".into()),
        Some(lag) if now - lag.at > LAG_MAX_AGE_SECONDS => {
            Some(format!("latest ReplicaLag datapoint is {} s old, so the data-loss window is unknown", now - lag.at))
        }
        Some(lag) if lag.seconds < 0.0 => Some(format!("ReplicaLag {} means replication is not running", lag.seconds)),
        #[allow(clippy::cast_precision_loss)]
        Some(lag) if lag.seconds > max as f64 => {
            Some(format!("ReplicaLag {} s is above the {max} s limit", lag.seconds))
        }
        Some(_) => None,
    }
}

fn decide_promotion(event: &DbEvent, facts: Option<&PromotionFacts>, policy: &Policy, now: EpochSeconds) -> Plan {
    let Some(facts) = facts else { return not_found(event, "DB instance") };
    let primary = &facts.primary;
    if let Some(plan) = scope_skip(event, policy, &[&primary.tags]) {
        return plan;
    }
    let (id, status) = (&primary.id, &primary.status);
    let label = format!("rds {id}");
    let alert = |severity, headline: String, reason: String, advice: String| {
        alert(&event.identifier, severity, label.clone(), headline, reason, advice)
    };
    if let Some(guard) = facts.promotion_guard.as_ref().filter(|guard| guard.until > now) {
        if guard.started_by == guard::event_key(&event.idempotency_key()) {
            // An earlier attempt of this very event promoted and then stopped (a crash or a
            // timeout). The replica list has changed since, so deciding again could pick and
            // route to another replica: a human finishes it.
            return alert(
                Severity::Critical,
                format!("promotion of a replica of {id} may be unfinished"),
                format!("an earlier attempt to handle this event promoted a replica of {id} and stopped before it finished; medic never promotes twice"),
                "Find the promoted replica (CloudTrail PromoteReadReplica), check that the writer record points at it, and fix it by hand if not.".to_owned(),
            );
        }
        return Plan::skip(&event.identifier, SkipReason::AlreadyPromoted { primary: id.clone(), until: guard.until });
    }
    let what = format!("RDS reported {} ({})", event.event_id, event.message.trim_end_matches('.'));
    if let Some(source) = &primary.source {
        return alert(
            Severity::Warning,
            format!("read replica {id} failed"),
            format!(
                "{what}; {id} is a read replica of {source}, and medic promotes replicas only when a primary is lost"
            ),
            format!("Take {id} out of the reader set if it still takes reads, and rebuild it from {source}."),
        );
    }
    if let Some(cluster) = &primary.cluster {
        return alert(
            Severity::Warning,
            format!("{id} of Aurora cluster {cluster} failed"),
            format!("{what}; Aurora fails its cluster over by itself"),
            format!(
                "Watch {cluster} for RDS-EVENT-0071 (failover finished); medic retries a failed Aurora failover once."
            ),
        );
    }
    if status == "available" {
        let severity = if event.kind == DbEventKind::FailoverNotAttempted { Severity::Info } else { Severity::Warning };
        return alert(
            severity,
            format!("{} but {id} is available: not promoting", event.event_id),
            format!("{what}, yet {id} is available now; medic promotes a replica only when the primary is lost"),
            format!("Nothing was changed. Read the RDS event log of {id} for the cause."),
        );
    }
    if let Some(fix) = recoverable(status) {
        return alert(
            Severity::Critical,
            format!("{id} is {status}, which an operator can fix: not promoting"),
            format!(
                "{what}; {id} is {status}, a state AWS documents as recoverable: once fixed it comes back as a writer, so a promoted replica would be a second one (medic promotes only from: {})",
                TERMINAL_STATUSES.join(", ")
            ),
            format!("To restore writes, {fix}. Promote a replica by hand only if {id} cannot be fixed (README: RDS runbook)."),
        );
    }
    if !TERMINAL_STATUSES.contains(&status.as_str()) {
        return alert(
            Severity::Warning,
            format!("{id} is {status}: not promoting yet"),
            format!(
                "{what}; {id} is {status}, which can pass on its own, and promoting now could leave two writers (medic promotes only from: {})",
                TERMINAL_STATUSES.join(", ")
            ),
            format!("If {id} does not come back, promote a replica by hand (README: RDS runbook)."),
        );
    }
    if primary.multi_az {
        return alert(
            Severity::Critical,
            format!("{id} is {status} with a Multi-AZ standby: not promoting"),
            format!("{what}; RDS owns the failover to {id}'s standby, and a promoted replica next to it would be a second writer"),
            format!("If RDS does not fail over, reboot {id} with failover, or promote a replica by hand (README: RDS runbook)."),
        );
    }
    if facts.replicas.is_empty() {
        return alert(
            Severity::Critical,
            format!("{id} is {status} and has no replica to promote"),
            format!("{what}; {id} is lost, has no Multi-AZ standby and no read replica"),
            format!("Restore {id} to its latest restorable time (point-in-time restore) and point the writer record at the new instance."),
        );
    }
    if let Some((location, Ok(Some(record)))) = &facts.writer {
        let points_at = record.value.as_deref().map(endpoint_name);
        if points_at.is_some() && points_at != primary.endpoint.as_deref().map(endpoint_name) {
            return alert(
                Severity::Critical,
                format!("{id} is {status} but its writer record points elsewhere: not promoting"),
                format!(
                    "{what}; writer record {} points at {}, not at {id}: someone (or an earlier promotion) already moved writes, and promoting another replica would make a second writer",
                    location.name,
                    record.value.as_deref().unwrap_or_default()
                ),
                format!("Check which database takes writes now and whether {id}'s remaining replicas should follow it."),
            );
        }
    }
    let max = policy.max_promote_lag_seconds;
    let mut refused = Vec::new();
    let mut eligible = Vec::new();
    for replica in &facts.replicas {
        match promotion_refusal(replica, policy, now) {
            Some(why) => refused.push(format!("{}: {why}", replica.db.id)),
            None => eligible.push(replica),
        }
    }
    eligible.sort_by(|a, b| {
        let key = |r: &Replica| !in_preferred_az(r.db.az.as_deref(), policy);
        key(a)
            .cmp(&key(b))
            .then_with(|| {
                let lag = |r: &Replica| r.lag.map_or(f64::INFINITY, |l| l.seconds);
                lag(a).total_cmp(&lag(b))
            })
            .then_with(|| a.db.id.cmp(&b.db.id))
    });
    let (Some(best), Some(endpoint)) = (eligible.first(), eligible.first().and_then(|r| r.db.endpoint.clone())) else {
        return alert(
            Severity::Critical,
            format!("{id} is {status}: no replica is safe to promote"),
            format!("{what}; {id} is lost with no Multi-AZ standby, and no read replica qualifies: {}", refused.join("; ")),
            format!(
                "medic never promotes above MEDIC_MAX_PROMOTE_LAG_SECONDS ({max} s): a lagging replica lacks the writes it has not applied. Wait for the lag to fall, or accept the loss and promote by hand (README: RDS runbook)."
            ),
        );
    };
    let replica = &best.db;
    let lag = best.lag.map_or(0.0, |l| l.seconds);
    let az = replica.az.as_deref().unwrap_or("an unknown AZ");
    let preferred = if in_preferred_az(replica.az.as_deref(), policy) { " (the preferred AZ)" } else { "" };
    let mut reason = format!(
        "up to {loss} s of writes lost; {id} is {status} with no Multi-AZ standby; {} is available in {az}{preferred} with ReplicaLag {lag} s (limit {max} s): writes from about the last {loss} s before the failure may be missing on it",
        replica.id,
        loss = lag.ceil()
    );
    if !refused.is_empty() {
        reason.push_str(&format!("; passed over: {}", refused.join("; ")));
    }
    let mut reroute = None;
    match &facts.writer {
        None => reason.push_str(&format!(
            "; {id} has no {ZONE_TAG} and {WRITER_RECORD_TAG} tags, so clients must be repointed at {endpoint} by hand"
        )),
        Some((location, Err(error))) => reason.push_str(&format!(
            "; writer record {} could not be read ({error}), so medic leaves it: repoint it at {endpoint} by hand",
            location.name
        )),
        Some((_, Ok(Some(record)))) if record.record_type != "CNAME" || record.set_identifier.is_some() => {
            reason.push_str(&format!(
                "; writer record {} is not a simple CNAME, so medic leaves it: repoint it at {endpoint} by hand",
                record.name
            ));
        }
        Some((location, Ok(record))) => {
            reroute = Some(PlannedAction {
                action: Action::PointWriterRecord {
                    primary: id.clone(),
                    zone_id: location.zone_id.clone(),
                    record_name: location.name.clone(),
                    endpoint: endpoint.clone(),
                    ttl: record.as_ref().and_then(|r| r.ttl).unwrap_or(DEFAULT_RECORD_TTL),
                    health_check_id: record.as_ref().and_then(|r| r.health_check_id.clone()),
                },
                reason: format!("so that writers resolving {} reach {} once it is promoted", location.name, replica.id),
            });
        }
    }
    let promote = PlannedAction {
        action: Action::PromoteReplica {
            primary: id.clone(),
            replica: replica.id.clone(),
            backup_retention_days: primary.backup_retention_days.max(1),
        },
        reason,
    };
    Plan {
        resource: event.identifier.clone(),
        decision: Decision::Act { actions: [Some(promote), reroute].into_iter().flatten().collect() },
    }
}

fn decide_replica(event: &DbEvent, facts: Option<&ReplicaFacts>, policy: &Policy, now: EpochSeconds) -> Plan {
    let Some(facts) = facts else { return not_found(event, "DB instance") };
    let replica = &facts.replica;
    // The replica itself must opt in: it is what medic reboots, and IAM checks its own tags.
    if let Some(plan) = scope_skip(event, policy, &[&replica.tags]) {
        return plan;
    }
    let id = &replica.id;
    let primary = replica.source.clone().unwrap_or_else(|| id.clone());
    let label = format!("rds {primary}");
    let resumed = event.kind == DbEventKind::ReplicationResumed;
    let what = format!("{} on {id} ({})", event.event_id, event.message.trim_end_matches('.'));
    let broke = match event.kind {
        DbEventKind::ReplicationError => "replication error",
        DbEventKind::ReplicationTerminated => "replication terminated",
        DbEventKind::ReplicaCreationFailed => "replica creation failed",
        _ => "replication resumed",
    };
    let warn = |headline: String, reason: String, advice: String| {
        alert(&event.identifier, Severity::Warning, label.clone(), headline, reason, advice)
    };
    let Some((location, records)) = &facts.readers else {
        if resumed {
            return alert(
                &event.identifier,
                Severity::Info,
                label.clone(),
                format!("replication to {id} resumed"),
                format!("{what}; {id} is not in a reader set medic manages (no {READER_RECORD_TAG} tag)"),
                "Nothing to fix.",
            );
        }
        return warn(
            format!("replica {id} broke; no reader set to take it out of"),
            format!("{what}; neither {id} nor its source has {ZONE_TAG} and {READER_RECORD_TAG} tags, so medic cannot take it out of rotation"),
            format!("Stop sending reads to {id} by hand; rebuild it from {primary} if replication does not resume."),
        );
    };
    let records = match records {
        Ok(records) => records,
        Err(error) => {
            return warn(
                format!("cannot read the reader set of {id}"),
                format!("{what}; reader records {} could not be read: {error}", location.name),
                format!("Check that the function may read and change {} (DbHostedZoneId), and take {id} out of rotation by hand if it broke.", location.zone_id),
            )
        }
    };
    let Some(own) = records.iter().find(|r| r.set_identifier.as_deref() == Some(id.as_str())) else {
        let not_in_set = SkipReason::NotInReaderSet { replica: id.clone(), record_name: location.name.clone() };
        if resumed {
            return Plan::skip(&event.identifier, not_in_set);
        }
        return warn(
            format!("replica {id} broke; it has no reader record"),
            format!("{what}; {not_in_set}"),
            format!("If {id} takes reads some other way, stop that by hand."),
        );
    };
    let (Some(weight), Some(endpoint), "CNAME") = (own.weight, own.value.clone(), own.record_type.as_str()) else {
        return warn(
            format!("reader record of {id} is not a weighted CNAME"),
            format!(
                "{what}; the record with SetIdentifier {id} in {} is a {} record without a weight, which medic does not change",
                location.name, own.record_type
            ),
            format!("Take {id} out of rotation by hand."),
        );
    };
    let reader = ReaderRecord {
        primary: primary.clone(),
        replica: id.clone(),
        zone_id: location.zone_id.clone(),
        record_name: own.name.clone(),
        endpoint,
        ttl: own.ttl.unwrap_or(DEFAULT_RECORD_TTL),
        health_check_id: own.health_check_id.clone(),
    };
    if resumed {
        if replica.status != "available" {
            return Plan::skip(
                &event.identifier,
                SkipReason::ReplicaNotAvailable { replica: id.clone(), status: replica.status.clone() },
            );
        }
        if weight > 0 {
            return Plan::skip(&event.identifier, SkipReason::ReaderAlreadyIn { replica: id.clone(), weight });
        }
        let lagging = lagging(facts.lag, policy, now);
        if let Some(why) = lagging {
            return warn(
                format!("replication to {id} resumed; it stays out of the reader set"),
                format!("{what}; {why}, so it could serve stale reads"),
                format!(
                    "Put {id} back (weight {}) by hand once it has caught up.",
                    tag_value(&replica.tags, READER_WEIGHT_TAG).unwrap_or("100")
                ),
            );
        }
        let to = tag_value(&replica.tags, READER_WEIGHT_TAG)
            .and_then(|w| w.trim().parse::<i64>().ok())
            .filter(|w| (1..=255).contains(w))
            .unwrap_or(DEFAULT_READER_WEIGHT);
        let action = Action::SetReaderWeight { reader, from: weight, to };
        let reason = format!("replication to {id} resumed and it is available");
        return Plan {
            resource: event.identifier.clone(),
            decision: Decision::Act { actions: vec![PlannedAction { action, reason }] },
        };
    }
    let mut actions = Vec::new();
    if weight > 0 {
        let others_in = records
            .iter()
            .filter(|r| r.set_identifier.as_deref() != Some(id.as_str()) && r.weight.unwrap_or(0) > 0)
            .count();
        if others_in == 0 {
            return alert(
                &event.identifier,
                Severity::Critical,
                label,
                format!("replica {id} broke and is the only reader in rotation"),
                format!("{what}; taking it out would leave every weighted record of {} at 0, and Route 53 then answers with all of them alike", location.name),
                format!("Put a healthy replica in rotation (or point readers at the writer), then take {id} out."),
            );
        }
        actions.push(PlannedAction {
            action: Action::SetReaderWeight { reader, from: weight, to: 0 },
            reason: format!(
                "{broke}, {}: it serves stale or no data; {others_in} other reader(s) stay in rotation",
                event.event_id
            ),
        });
    }
    // Never reboot a replica while its primary is not available: it may be the one to promote.
    let source_down = facts.source_status.as_deref().is_some_and(|status| status != "available");
    if event.kind == DbEventKind::ReplicationError && replica.status == "available" && !source_down {
        actions.push(PlannedAction {
            action: Action::RebootReplica { primary, replica: id.clone() },
            reason: "a reboot restarts replication, which often clears a replication error".into(),
        });
    }
    if actions.is_empty() {
        return Plan::skip(&event.identifier, SkipReason::ReaderAlreadyOut { replica: id.clone() });
    }
    Plan { resource: event.identifier.clone(), decision: Decision::Act { actions } }
}

fn decide_cluster(event: &DbEvent, facts: Option<&ClusterFacts>, policy: &Policy, now: EpochSeconds) -> Plan {
    use DbEventKind as K;
    let Some(facts) = facts else { return not_found(event, "DB cluster") };
    let cluster = &facts.cluster;
    if let Some(plan) = scope_skip(event, policy, &[&cluster.tags]) {
        return plan;
    }
    let id = &cluster.id;
    let label = format!("rds-cluster {id}");
    let alert = |severity, headline: String, reason: String, advice: String| {
        alert(&event.identifier, severity, label.clone(), headline, reason, advice)
    };
    let writer = cluster.members.iter().find(|m| m.writer);
    match &event.kind {
        K::AuroraFailoverFailed => {
            // A guard this very event started belongs to an earlier attempt of it: the engine
            // recognises that attempt's call rather than calling again.
            let this_event = guard::event_key(&event.idempotency_key());
            let retried = facts.failover_guard.as_ref().filter(|g| g.until > now && g.started_by != this_event);
            if let Some(until) = retried.map(|g| g.until) {
                return alert(
                    Severity::Critical,
                    "failover failed again after medic's retry".into(),
                    format!("Aurora could not fail {id} over, and medic already retried once (one retry per cluster per 24 h, next {})", format_timestamp(until)),
                    format!("Read the events of {id} and its readers; fail over by hand to a healthy reader (aws rds failover-db-cluster) or contact AWS Support."),
                );
            }
            let mut readers: Vec<&ClusterMember> = cluster
                .members
                .iter()
                .filter(|m| !m.writer && m.status == "available" && opted_out(&m.tags).is_none())
                .collect();
            readers.sort_by(|a, b| {
                let preferred = |m: &ClusterMember| !in_preferred_az(m.az.as_deref(), policy);
                let lag = |m: &ClusterMember| m.lag.map_or(f64::INFINITY, |l| l.seconds);
                preferred(a)
                    .cmp(&preferred(b))
                    .then_with(|| lag(a).total_cmp(&lag(b)))
                    .then_with(|| a.promotion_tier.cmp(&b.promotion_tier))
                    .then_with(|| a.id.cmp(&b.id))
            });
            let Some(target) = readers.first() else {
                return alert(
                    Severity::Critical,
                    "failover failed and no reader is available".into(),
                    format!("Aurora could not fail {id} over, and no reader is available to fail over to"),
                    format!("Add a reader to {id} or restore the cluster; read its events for the cause."),
                );
            };
            let az = target.az.as_deref().unwrap_or("an unknown AZ");
            let preferred = if in_preferred_az(target.az.as_deref(), policy) { " (the preferred AZ)" } else { "" };
            let lag = target.lag.map_or_else(|| "lag unknown".to_owned(), |l| format!("lag {} s", l.seconds));
            let reason = format!(
                "Aurora's failover of {id} failed; {} is an available reader in {az}{preferred} ({lag}, promotion tier {})",
                target.id, target.promotion_tier
            );
            Plan {
                resource: event.identifier.clone(),
                decision: Decision::Act {
                    actions: vec![PlannedAction {
                        action: Action::FailoverCluster { cluster: id.clone(), target: target.id.clone() },
                        reason,
                    }],
                },
            }
        }
        K::AuroraFailoverFinished => match writer {
            Some(w) if w.status == "available" => {
                let az = w.az.as_deref().unwrap_or("an unknown AZ");
                alert(
                    Severity::Info,
                    format!("failover finished, writer {} in {az}", w.id),
                    format!("Aurora finished failing {id} over; {} is the writer and available in {az}", w.id),
                    "Nothing to fix. Read the cluster's events for why it failed over.".into(),
                )
            }
            Some(w) => alert(
                Severity::Warning,
                format!("failover finished but writer {} is {}", w.id, w.status),
                format!("Aurora reported the failover of {id} finished, yet its writer {} is {}", w.id, w.status),
                format!("Watch {} until it is available; if it is not, fail over by hand.", w.id),
            ),
            None => alert(
                Severity::Critical,
                "failover finished but the cluster has no writer".into(),
                format!("Aurora reported the failover of {id} finished, yet no member is the writer"),
                format!("Read the events of {id} and fail over by hand to a healthy reader."),
            ),
        },
        K::AuroraFailoverStartedWithinAz | K::AuroraFailoverStartedAcrossAz | K::AuroraFailoverRestarted => alert(
            Severity::Warning,
            event.message.trim_end_matches('.').to_owned(),
            format!("Aurora is failing {id} over: writes fail for up to a minute"),
            "medic reports again when the failover finishes (RDS-EVENT-0071), and retries once if it fails (RDS-EVENT-0069).".into(),
        ),
        _ => alert(
            Severity::Info,
            event.message.trim_end_matches('.').to_owned(),
            format!("RDS reported {} for cluster {id}", event.event_id),
            "Nothing to fix unless this was unexpected.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::parse_db_event;
    use super::*;
    use std::path::PathBuf;

    const NOW: EpochSeconds = 1_795_252_000;
    const PRIMARY: &str = "orders-db";
    const REPLICA: &str = "orders-db-replica-1";

    fn event(file: &str) -> DbEvent {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/rds-rerouter").join(file);
        parse_db_event(&serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()).unwrap()
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn db(id: &str, status: &str, az: &str) -> DbInstance {
        DbInstance {
            id: id.into(),
            status: status.into(),
            az: Some(az.into()),
            endpoint: Some(format!("{id}.c0abc.us-east-1.rds.amazonaws.com")),
            ..DbInstance::default()
        }
    }

    fn replica(id: &str, status: &str, az: &str, lag: Option<f64>) -> Replica {
        let mut db = db(id, status, az);
        db.source = Some(PRIMARY.into());
        db.tags = tags(&[("medic:managed", "true")]);
        Replica { db, lag: lag.map(|seconds| LagSample { seconds, at: NOW - 60 }) }
    }

    fn primary(status: &str) -> DbInstance {
        let mut primary = db(PRIMARY, status, "us-east-1a");
        primary.tags = tags(&[
            ("medic:managed", "true"),
            (ZONE_TAG, "/hostedzone/Z0DB"),
            (WRITER_RECORD_TAG, "Writer.DB.internal"),
        ]);
        primary
    }

    fn writer_record() -> DnsRecord {
        DnsRecord {
            name: "writer.db.internal.".into(),
            record_type: "CNAME".into(),
            value: Some("orders-db.c0abc.us-east-1.rds.amazonaws.com".into()),
            ttl: Some(30),
            ..DnsRecord::default()
        }
    }

    fn promotion(primary: DbInstance, replicas: Vec<Replica>) -> DbObservation {
        let writer = writer_record_location(&primary.tags).map(|location| (location, Ok(Some(writer_record()))));
        DbObservation::Promotion(Some(PromotionFacts { primary, replicas, writer, promotion_guard: None }))
    }

    /// One line per plan: `act promote orders-db-replica-1, reroute-writer writer.db.internal.`,
    /// `alert critical: <headline>` or `skip <label>`.
    fn summary(plan: &Plan) -> String {
        match &plan.decision {
            Decision::Act { actions } => format!(
                "act {}",
                actions
                    .iter()
                    .map(|p| match &p.action {
                        Action::PromoteReplica { replica, .. } => format!("promote {replica}"),
                        Action::SetReaderWeight { reader, to, .. } => format!("weight {} {to}", reader.replica),
                        other => format!("{} {}", other.name(), other.resource()),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Decision::Alert(alert) => format!("alert {}: {}", alert.severity.as_str(), alert.headline),
            Decision::Skip { reason } => format!("skip {}", reason.label()),
        }
    }

    #[test]
    fn given_lost_primary_when_deciding_then_best_replica_promoted_or_a_human_told_why_not() {
        let failed = event("instance-failed.json");
        let not_attempted = event("instance-failover-not-attempted.json");
        let preferred_b = Policy { preferred_az: Some("us-east-1b".into()), ..Policy::default() };
        let default = Policy::default();
        let multi_az = DbInstance { multi_az: true, ..primary("failed") };
        let opted_out = {
            let mut r = replica("orders-db-replica-2", "available", "us-east-1b", Some(1.0));
            r.db.tags = tags(&[("medic:managed", "false")]);
            r
        };
        let stale = Replica {
            lag: Some(LagSample { seconds: 1.0, at: NOW - 900 }),
            ..replica(REPLICA, "available", "us-east-1c", None)
        };
        let two_replicas = || {
            promotion(
                primary("failed"),
                vec![
                    replica("orders-db-replica-1", "available", "us-east-1b", Some(12.0)),
                    replica("orders-db-replica-2", "available", "us-east-1c", Some(3.5)),
                ],
            )
        };
        let with_writer = |writer: Result<Option<DnsRecord>, String>| {
            let DbObservation::Promotion(Some(facts)) =
                promotion(primary("failed"), vec![replica(REPLICA, "available", "us-east-1b", Some(1.0))])
            else {
                unreachable!()
            };
            let location = facts.writer.clone().map(|(location, _)| location).unwrap();
            DbObservation::Promotion(Some(PromotionFacts { writer: Some((location, writer)), ..facts }))
        };
        let moved_writer = with_writer(Ok(Some(DnsRecord {
            value: Some("orders-db-replica-9.c0abc.us-east-1.rds.amazonaws.com.".into()),
            ..writer_record()
        })));
        let unreadable_writer = with_writer(Err("AccessDenied (HTTP 403)".into()));
        let rows: Vec<(&str, &DbEvent, DbObservation, &Policy, &str)> = vec![
            (
                "two replicas: the lowest lag wins",
                &failed,
                two_replicas(),
                &default,
                "act promote orders-db-replica-2, reroute-writer writer.db.internal.",
            ),
            (
                "preferred AZ wins over lower lag",
                &failed,
                two_replicas(),
                &preferred_b,
                "act promote orders-db-replica-1, reroute-writer writer.db.internal.",
            ),
            (
                "lag too high",
                &failed,
                promotion(primary("failed"), vec![replica(REPLICA, "available", "us-east-1b", Some(31.0))]),
                &default,
                "alert critical: orders-db is failed: no replica is safe to promote",
            ),
            (
                "no lag datapoint",
                &failed,
                promotion(primary("failed"), vec![replica(REPLICA, "available", "us-east-1b", None)]),
                &default,
                "alert critical: orders-db is failed: no replica is safe to promote",
            ),
            (
                "stale lag datapoint",
                &failed,
                promotion(primary("failed"), vec![stale]),
                &default,
                "alert critical: orders-db is failed: no replica is safe to promote",
            ),
            (
                "replica not available",
                &failed,
                promotion(primary("failed"), vec![replica(REPLICA, "rebooting", "us-east-1b", Some(0.0))]),
                &default,
                "alert critical: orders-db is failed: no replica is safe to promote",
            ),
            (
                "opted-out replica passed over",
                &failed,
                promotion(primary("failed"), vec![opted_out, replica(REPLICA, "available", "us-east-1c", Some(9.0))]),
                &default,
                "act promote orders-db-replica-1, reroute-writer writer.db.internal.",
            ),
            (
                "untagged replica cannot be promoted under MEDIC_SCOPE=tagged",
                &failed,
                promotion(
                    primary("failed"),
                    vec![Replica {
                        db: DbInstance { tags: Tags::new(), ..replica(REPLICA, "available", "us-east-1b", None).db },
                        lag: Some(LagSample { seconds: 0.0, at: NOW - 60 }),
                    }],
                ),
                &default,
                "alert critical: orders-db is failed: no replica is safe to promote",
            ),
            (
                "no replicas",
                &failed,
                promotion(primary("failed"), vec![]),
                &default,
                "alert critical: orders-db is failed and has no replica to promote",
            ),
            (
                "primary available again",
                &failed,
                promotion(primary("available"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "alert warning: RDS-EVENT-0031 but orders-db is available: not promoting",
            ),
            (
                "failover not attempted, primary available",
                &not_attempted,
                promotion(primary("available"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "alert info: RDS-EVENT-0034 but orders-db is available: not promoting",
            ),
            (
                "rule 3: failover not attempted, primary failed",
                &not_attempted,
                promotion(primary("failed"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "act promote orders-db-replica-1, reroute-writer writer.db.internal.",
            ),
            (
                "rule 3: primary stopped (someone can start it)",
                &not_attempted,
                promotion(primary("stopped"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "alert critical: orders-db is stopped, which an operator can fix: not promoting",
            ),
            (
                "rule 3: storage full",
                &failed,
                promotion(primary("storage-full"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "alert critical: orders-db is storage-full, which an operator can fix: not promoting",
            ),
            (
                "rule 3: incompatible parameters",
                &failed,
                promotion(primary("incompatible-parameters"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "alert critical: orders-db is incompatible-parameters, which an operator can fix: not promoting",
            ),
            (
                "rule 3: KMS key access lost, recoverable",
                &failed,
                promotion(
                    primary("inaccessible-encryption-credentials-recoverable"),
                    vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))],
                ),
                &default,
                "alert critical: orders-db is inaccessible-encryption-credentials-recoverable, which an operator can fix: not promoting",
            ),
            (
                "rule 3: restore error is terminal",
                &failed,
                promotion(primary("restore-error"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "act promote orders-db-replica-1, reroute-writer writer.db.internal.",
            ),
            (
                "rule 3: KMS key gone for good is terminal",
                &failed,
                promotion(
                    primary("inaccessible-encryption-credentials"),
                    vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))],
                ),
                &default,
                "act promote orders-db-replica-1, reroute-writer writer.db.internal.",
            ),
            (
                "primary rebooting can come back",
                &failed,
                promotion(primary("rebooting"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "alert warning: orders-db is rebooting: not promoting yet",
            ),
            (
                "Multi-AZ standby owns failover",
                &failed,
                promotion(multi_az, vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))]),
                &default,
                "alert critical: orders-db is failed with a Multi-AZ standby: not promoting",
            ),
            ("primary gone", &failed, DbObservation::Promotion(None), &default, "skip target-not-found"),
            (
                "writer record already moved away from the primary",
                &failed,
                moved_writer,
                &default,
                "alert critical: orders-db is failed but its writer record points elsewhere: not promoting",
            ),
            (
                "writer record unreadable: promote, leave DNS to a human",
                &failed,
                unreadable_writer,
                &default,
                "act promote orders-db-replica-1",
            ),
        ];
        for (name, event, observation, policy, expected) in rows {
            let plan = decide_db(event, &observation, policy, NOW);
            assert_eq!(summary(&plan), expected, "{name}");
        }
    }

    #[test]
    fn given_promotion_when_decided_then_reason_states_the_loss_window_and_reroute_follows() {
        let observation = promotion(primary("failed"), vec![replica(REPLICA, "available", "us-east-1b", Some(3.2))]);
        let plan = decide_db(&event("instance-failed.json"), &observation, &Policy::default(), NOW);
        let Decision::Act { actions } = &plan.decision else { panic!("{plan:?}") };
        assert!(
            actions[0].reason.contains("ReplicaLag 3.2 s (limit 30 s): writes from about the last 4 s"),
            "{}",
            actions[0].reason
        );
        assert_eq!(
            actions[1].action,
            Action::PointWriterRecord {
                primary: PRIMARY.into(),
                zone_id: "Z0DB".into(),
                record_name: "writer.db.internal.".into(),
                endpoint: "orders-db-replica-1.c0abc.us-east-1.rds.amazonaws.com".into(),
                ttl: 30,
                health_check_id: None,
            }
        );
        assert!(actions[1].action.needs_previous());
        assert_eq!(actions[0].action.done_severity(), Severity::Critical);
    }

    #[test]
    fn given_primary_not_a_promotion_case_when_decided_then_replicas_and_records_change_nothing() {
        let failed = event("instance-failed.json");
        let replicas = || vec![replica(REPLICA, "available", "us-east-1b", Some(1.0))];
        let cases = [
            primary("available"),
            primary("rebooting"),
            primary("stopped"),
            primary("storage-full"),
            DbInstance { multi_az: true, ..primary("failed") },
            DbInstance { source: Some("other-db".into()), ..primary("failed") },
            DbInstance { cluster: Some("orders-aurora".into()), ..primary("failed") },
        ];
        for primary in cases {
            assert!(!may_need_promotion(&primary), "{primary:?}");
            let with = decide_db(&failed, &promotion(primary.clone(), replicas()), &Policy::default(), NOW);
            let bare = DbObservation::Promotion(Some(PromotionFacts {
                primary: primary.clone(),
                replicas: vec![],
                writer: None,
                promotion_guard: None,
            }));
            assert_eq!(decide_db(&failed, &bare, &Policy::default(), NOW), with, "{primary:?}");
        }
        assert!(may_need_promotion(&primary("failed")) && may_need_promotion(&primary("restore-error")));
    }

    #[test]
    fn rule3_given_sightings_of_a_terminal_status_when_confirming_then_a_read_counts_only_60_s_after_the_first() {
        let policy = Policy::default();
        let at = |offsets: &[i64]| offsets.iter().map(|o| (NOW + o).to_string()).collect::<Vec<_>>();
        let rows: [(&str, Vec<String>, Result<(), EpochSeconds>); 5] = [
            ("first sighting now", at(&[0]), Err(NOW + 60)),
            ("first sighting 30 s ago", at(&[-30, 0]), Err(NOW + 30)),
            ("first sighting 60 s ago", at(&[-60, -30, 0]), Ok(())),
            ("a sighting from another incident hours ago does not count", at(&[-7200, 0]), Err(NOW + 60)),
            ("nothing recorded", vec![], Err(NOW + 60)),
        ];
        for (name, seen, expected) in rows {
            assert_eq!(confirm_terminal(&seen, NOW, &policy), expected, "{name}");
        }
        let at_once = Policy { promote_confirm_seconds: 0, ..Policy::default() };
        assert_eq!(confirm_terminal(&at(&[0]), NOW, &at_once), Ok(()));
    }

    #[test]
    fn given_recent_promotion_when_primary_fails_again_then_no_second_promotion() {
        let failed = event("instance-failed.json");
        let guarded = |started_by: &str| {
            let DbObservation::Promotion(Some(mut facts)) =
                promotion(primary("failed"), vec![replica(REPLICA, "available", "us-east-1b", Some(0.0))])
            else {
                unreachable!()
            };
            facts.promotion_guard = Some(Cooldown {
                until: NOW + 3600,
                started_by: started_by.into(),
                done: true,
                started_at: 0,
                intent: None,
            });
            DbObservation::Promotion(Some(facts))
        };
        let other_event = decide_db(&failed, &guarded("event#rds:other"), &Policy::default(), NOW);
        assert_eq!(summary(&other_event), "skip already-promoted");
        let this_event = guard::event_key(&failed.idempotency_key());
        let interrupted = decide_db(&failed, &guarded(&this_event), &Policy::default(), NOW);
        assert_eq!(summary(&interrupted), "alert critical: promotion of a replica of orders-db may be unfinished");
        let expired = DbObservation::Promotion(match guarded("event#rds:other") {
            DbObservation::Promotion(Some(facts)) => Some(PromotionFacts {
                promotion_guard: Some(Cooldown {
                    until: NOW,
                    started_by: "event#rds:other".into(),
                    done: true,
                    started_at: 0,
                    intent: None,
                }),
                ..facts
            }),
            _ => None,
        });
        assert_eq!(
            summary(&decide_db(&failed, &expired, &Policy::default(), NOW)),
            "act promote orders-db-replica-1, reroute-writer writer.db.internal."
        );
    }

    fn reader(id: &str, weight: i64) -> DnsRecord {
        DnsRecord {
            name: "reader.db.internal.".into(),
            record_type: "CNAME".into(),
            set_identifier: Some(id.into()),
            weight: Some(weight),
            value: Some(format!("{id}.c0abc.us-east-1.rds.amazonaws.com")),
            ttl: Some(60),
            health_check_id: Some(format!("hc-{id}")),
        }
    }

    fn replica_facts(status: &str, replica_tags: &[(&str, &str)], records: Vec<DnsRecord>) -> DbObservation {
        let mut replica = replica(REPLICA, status, "us-east-1b", None).db;
        replica.tags.retain(|(key, _)| !replica_tags.iter().any(|(given, _)| given == key));
        replica.tags.extend(tags(replica_tags));
        let source_tags =
            tags(&[("medic:managed", "true"), (ZONE_TAG, "Z0DB"), (READER_RECORD_TAG, "reader.db.internal")]);
        let readers = reader_record_location(&replica.tags, &source_tags).map(|location| (location, Ok(records)));
        let lag = Some(LagSample { seconds: 0.5, at: NOW - 60 });
        DbObservation::Replica(Some(ReplicaFacts {
            replica,
            source_tags,
            source_status: Some("available".into()),
            readers,
            lag,
        }))
    }

    fn with_source(status: &str, observation: DbObservation) -> DbObservation {
        let DbObservation::Replica(Some(facts)) = observation else { panic!("replica facts expected") };
        DbObservation::Replica(Some(ReplicaFacts { source_status: Some(status.into()), ..facts }))
    }

    #[test]
    fn rule8_given_reader_housekeeping_when_counted_then_it_never_uses_the_promotions_breaker_scope() {
        let reader = ReaderRecord {
            primary: PRIMARY.into(),
            replica: REPLICA.into(),
            zone_id: "Z0DB".into(),
            record_name: "reader.db.internal.".into(),
            endpoint: "e".into(),
            ttl: 60,
            health_check_id: None,
        };
        let promote =
            Action::PromoteReplica { primary: PRIMARY.into(), replica: REPLICA.into(), backup_retention_days: 1 };
        let housekeeping = [
            Action::SetReaderWeight { reader: reader.clone(), from: 100, to: 0 },
            Action::SetReaderWeight { reader, from: 0, to: 100 },
            Action::RebootReplica { primary: PRIMARY.into(), replica: REPLICA.into() },
        ];
        for action in housekeeping {
            assert_ne!(action.breaker_scope(), promote.breaker_scope(), "{action:?}");
            assert_eq!(action.breaker_scope(), format!("rds-readers/{PRIMARY}"));
        }
    }

    #[test]
    fn given_replica_events_when_deciding_then_reader_set_follows_replication() {
        let two = || vec![reader(REPLICA, 100), reader("orders-db-replica-2", 100)];
        let rows: Vec<(&str, &str, DbObservation, &str)> = vec![
            (
                "error: out and reboot",
                "replica-replication-error.json",
                replica_facts("available", &[], two()),
                "act weight orders-db-replica-1 0, reboot-replica orders-db-replica-1",
            ),
            (
                "rule 8: error while the primary is failed: out only, the promotion candidate is not rebooted",
                "replica-replication-error.json",
                with_source("failed", replica_facts("available", &[], two())),
                "act weight orders-db-replica-1 0",
            ),
            (
                "error while rebooting: out only",
                "replica-replication-error.json",
                replica_facts("rebooting", &[], two()),
                "act weight orders-db-replica-1 0",
            ),
            (
                "error, already out: reboot only",
                "replica-replication-error.json",
                replica_facts("available", &[], vec![reader(REPLICA, 0), reader("orders-db-replica-2", 100)]),
                "act reboot-replica orders-db-replica-1",
            ),
            (
                "terminated: out, no reboot",
                "replica-replication-terminated.json",
                replica_facts("available", &[], two()),
                "act weight orders-db-replica-1 0",
            ),
            (
                "last reader in rotation stays",
                "replica-replication-error.json",
                replica_facts("available", &[], vec![reader(REPLICA, 100), reader("orders-db-replica-2", 0)]),
                "alert critical: replica orders-db-replica-1 broke and is the only reader in rotation",
            ),
            (
                "not in the reader set",
                "replica-replication-terminated.json",
                replica_facts("available", &[], vec![reader("orders-db-replica-2", 100)]),
                "alert warning: replica orders-db-replica-1 broke; it has no reader record",
            ),
            (
                "resumed: back with the default weight",
                "replica-replication-resumed.json",
                replica_facts("available", &[], vec![reader(REPLICA, 0), reader("orders-db-replica-2", 100)]),
                "act weight orders-db-replica-1 100",
            ),
            (
                "resumed: back with its tagged weight",
                "replica-replication-resumed.json",
                replica_facts("available", &[(READER_WEIGHT_TAG, "40")], vec![reader(REPLICA, 0)]),
                "act weight orders-db-replica-1 40",
            ),
            (
                "resumed but still lagging: stays out",
                "replica-replication-resumed.json",
                match replica_facts("available", &[], vec![reader(REPLICA, 0)]) {
                    DbObservation::Replica(Some(facts)) => DbObservation::Replica(Some(ReplicaFacts {
                        lag: Some(LagSample { seconds: 95.0, at: NOW - 60 }),
                        ..facts
                    })),
                    other => other,
                },
                "alert warning: replication to orders-db-replica-1 resumed; it stays out of the reader set",
            ),
            (
                "reader set unreadable",
                "replica-replication-error.json",
                match replica_facts("available", &[], vec![]) {
                    DbObservation::Replica(Some(facts)) => DbObservation::Replica(Some(ReplicaFacts {
                        readers: facts.readers.clone().map(|(location, _)| (location, Err("AccessDenied".to_owned()))),
                        ..facts
                    })),
                    other => other,
                },
                "alert warning: cannot read the reader set of orders-db-replica-1",
            ),
            (
                "resumed while in rotation",
                "replica-replication-resumed.json",
                replica_facts("available", &[], two()),
                "skip reader-already-in",
            ),
            (
                "resumed but not available yet",
                "replica-replication-resumed.json",
                replica_facts("rebooting", &[], vec![reader(REPLICA, 0)]),
                "skip replica-not-available",
            ),
            (
                "resumed, not in the reader set",
                "replica-replication-resumed.json",
                replica_facts("available", &[], vec![reader("orders-db-replica-2", 100)]),
                "skip not-in-reader-set",
            ),
            (
                "terminated, already out",
                "replica-replication-terminated.json",
                replica_facts("available", &[], vec![reader(REPLICA, 0), reader("orders-db-replica-2", 100)]),
                "skip reader-already-out",
            ),
            (
                "opted out",
                "replica-replication-error.json",
                replica_facts("available", &[("medic:managed", "false")], two()),
                "skip out-of-scope",
            ),
        ];
        for (name, file, observation, expected) in rows {
            let plan = decide_db(&event(file), &observation, &Policy::default(), NOW);
            assert_eq!(summary(&plan), expected, "{name}");
        }
        let plan = decide_db(
            &event("replica-replication-error.json"),
            &replica_facts("available", &[], two()),
            &Policy::default(),
            NOW,
        );
        let Decision::Act { actions } = plan.decision else { panic!("{plan:?}") };
        let Action::SetReaderWeight { reader, .. } = &actions[0].action else { panic!("{actions:?}") };
        assert_eq!(
            reader.health_check_id.as_deref(),
            Some("hc-orders-db-replica-1"),
            "the UPSERT keeps the health check"
        );
    }

    fn cluster(writer_status: &str, readers: &[(&str, &str, &str, Option<f64>)]) -> DbObservation {
        let mut members = vec![ClusterMember {
            id: "orders-aurora-1".into(),
            writer: true,
            status: writer_status.into(),
            az: Some("us-east-1a".into()),
            promotion_tier: 1,
            tags: Tags::new(),
            lag: None,
        }];
        members.extend(readers.iter().map(|(id, status, az, lag)| ClusterMember {
            id: (*id).into(),
            writer: false,
            status: (*status).into(),
            az: Some((*az).into()),
            promotion_tier: 1,
            tags: Tags::new(),
            lag: lag.map(|seconds| LagSample { seconds, at: NOW - 60 }),
        }));
        DbObservation::Cluster(Some(ClusterFacts {
            cluster: Cluster {
                id: "orders-aurora".into(),
                status: "available".into(),
                tags: tags(&[("medic:managed", "true")]),
                members,
            },
            failover_guard: None,
        }))
    }

    #[test]
    fn given_aurora_events_when_deciding_then_one_retry_to_the_healthiest_reader() {
        let default = Policy::default();
        let preferred_c = Policy { preferred_az: Some("us-east-1c".into()), ..Policy::default() };
        let readers = [
            ("orders-aurora-2", "available", "us-east-1b", Some(0.02)),
            ("orders-aurora-3", "available", "us-east-1c", Some(0.5)),
        ];
        let retried = match cluster("available", &readers) {
            DbObservation::Cluster(Some(facts)) => DbObservation::Cluster(Some(ClusterFacts {
                failover_guard: Some(Cooldown {
                    until: NOW + 60,
                    started_by: "event#rds:earlier".into(),
                    done: true,
                    started_at: 0,
                    intent: None,
                }),
                ..facts
            })),
            other => other,
        };
        let rows: Vec<(&str, &str, DbObservation, &Policy, &str)> = vec![
            (
                "failed: lowest lag",
                "cluster-failover-failed.json",
                cluster("available", &readers),
                &default,
                "act failover orders-aurora",
            ),
            (
                "failed: preferred AZ",
                "cluster-failover-failed.json",
                cluster("available", &readers),
                &preferred_c,
                "act failover orders-aurora",
            ),
            (
                "failed: no reader available",
                "cluster-failover-failed.json",
                cluster("available", &[("orders-aurora-2", "rebooting", "us-east-1b", None)]),
                &default,
                "alert critical: failover failed and no reader is available",
            ),
            (
                "failed again after the retry",
                "cluster-failover-failed.json",
                retried,
                &default,
                "alert critical: failover failed again after medic's retry",
            ),
            (
                "finished",
                "cluster-failover-finished.json",
                cluster("available", &readers),
                &default,
                "alert info: failover finished, writer orders-aurora-1 in us-east-1a",
            ),
            (
                "finished, writer not available",
                "cluster-failover-finished.json",
                cluster("rebooting", &readers),
                &default,
                "alert warning: failover finished but writer orders-aurora-1 is rebooting",
            ),
            (
                "started across AZ",
                "cluster-failover-started-across-az.json",
                cluster("available", &readers),
                &default,
                "alert warning: ",
            ),
            ("gone", "cluster-failover-failed.json", DbObservation::Cluster(None), &default, "skip target-not-found"),
        ];
        for (name, file, observation, policy, expected) in rows {
            let plan = decide_db(&event(file), &observation, policy, NOW);
            assert!(summary(&plan).starts_with(expected), "{name}: {}", summary(&plan));
        }
        let failed = event("cluster-failover-failed.json");
        let guarded_by_this_event = match cluster("available", &readers) {
            DbObservation::Cluster(Some(facts)) => DbObservation::Cluster(Some(ClusterFacts {
                failover_guard: Some(Cooldown {
                    until: NOW + 60,
                    started_by: guard::event_key(&failed.idempotency_key()),
                    done: true,
                    started_at: 0,
                    intent: None,
                }),
                ..facts
            })),
            other => other,
        };
        let retry_of_this_event = decide_db(&failed, &guarded_by_this_event, &default, NOW);
        assert_eq!(
            summary(&retry_of_this_event),
            "act failover orders-aurora",
            "the engine recognises its own earlier call"
        );
        let target = |policy: &Policy| match decide_db(
            &event("cluster-failover-failed.json"),
            &cluster("available", &readers),
            policy,
            NOW,
        )
        .decision
        {
            Decision::Act { actions } => actions[0].action.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            target(&Policy::default()),
            Action::FailoverCluster { cluster: "orders-aurora".into(), target: "orders-aurora-2".into() }
        );
        assert_eq!(
            target(&preferred_c),
            Action::FailoverCluster { cluster: "orders-aurora".into(), target: "orders-aurora-3".into() }
        );
    }

    #[test]
    fn given_every_rds_file_when_asked_what_to_observe_then_known_ids_observe_and_unknown_are_ignored() {
        let rows = [
            ("instance-failover-started.json", Need::Instance),
            ("instance-failed.json", Need::Promotion),
            ("instance-failover-not-attempted.json", Need::Promotion),
            ("replica-replication-error.json", Need::Replica),
            ("replica-replication-stopped.json", Need::Instance),
            ("cluster-failover-failed.json", Need::Cluster),
        ];
        for (file, expected) in rows {
            assert_eq!(need(&event(file)), expected, "{file}");
        }
        let Need::Ignore(reason) = need(&event("instance-unknown-event-id.json")) else {
            panic!("unknown id observed")
        };
        assert_eq!(reason.to_string(), "RDS-EVENT-0999 is not an RDS event medic handles; ignored");
    }

    #[test]
    fn given_instance_notices_when_deciding_then_severity_follows_the_state() {
        let rows = [
            ("instance-failover-started.json", "available", "alert warning: Multi-AZ failover started"),
            ("instance-failover-completed.json", "available", "alert info: failover complete, available in us-east-1a"),
            (
                "instance-failover-standby-complete.json",
                "rebooting",
                "alert warning: failover complete but orders-db is rebooting",
            ),
            ("instance-shutdown.json", "stopped", "alert warning: shut down (now stopped)"),
            ("instance-restarted.json", "available", "alert info: restarted (now available)"),
        ];
        for (file, status, expected) in rows {
            let observation = DbObservation::Instance { db: Some(primary(status)), source_tags: Tags::new() };
            assert_eq!(summary(&decide_db(&event(file), &observation, &Policy::default(), NOW)), expected, "{file}");
        }
        let untagged =
            DbObservation::Instance { db: Some(db(PRIMARY, "available", "us-east-1a")), source_tags: Tags::new() };
        let plan = decide_db(&event("instance-failover-started.json"), &untagged, &Policy::default(), NOW);
        assert_eq!(summary(&plan), "skip out-of-scope");
    }
}
