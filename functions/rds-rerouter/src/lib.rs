//! RDS rerouter: an RDS instance or Aurora cluster event. Promote the best replica of a lost
//! primary and repoint the writer record, take a broken replica out of the reader set (and put
//! it back), retry a failed Aurora failover once, or tell a human.

use aws_config::SdkConfig;
use medic_aws::adapters::dynamodb::DynamoLedger;
use medic_aws::adapters::metrics::AwsMetrics;
use medic_aws::adapters::rds::AwsRds;
use medic_aws::adapters::route53::AwsDns;
use medic_aws::adapters::sns::SnsNotifier;
use medic_aws::ports::{
    DbInspector, DnsInspector, LagInspector, Ledger, Notifier, PortResult, Remediator, Remediators,
};
use medic_aws::{Engine, HandlerError, Invocation, MedicConfig, PerAccount, PortError};
use medic_core::accounts::AccountRegion;
use medic_core::rds_rerouter::{
    self, ClusterFacts, DbInstance, DbObservation, Need, PromotionFacts, Replica, ReplicaFacts,
};
use medic_core::rds_rerouter::{parse_db_event, DbEvent, DbEventKind};
use medic_core::scope::Tags;
use medic_core::time::{format_timestamp, EpochSeconds};
use medic_core::{Outcome, Plan, Policy, Trigger};
use serde_json::Value;

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct Rerouter<D, Z, M, L, N> {
    /// RDS: observation and the RDS remediations.
    pub databases: D,
    /// Route 53: record sets and the record remediations.
    pub dns: Z,
    pub metrics: M,
    pub ledger: L,
    pub notifier: N,
    pub policy: Policy,
}

pub type AwsRerouter = Rerouter<AwsRds, AwsDns, AwsMetrics, DynamoLedger, SnsNotifier>;

impl AwsRerouter {
    /// Single-account mode's rerouter: every client through `sdk`.
    pub fn from_sdk_config(sdk: &SdkConfig, config: MedicConfig) -> Self {
        Self::build(sdk, sdk, &config, None)
    }
}

impl PerAccount for AwsRerouter {
    const NAME: &'static str = "rds-rerouter";

    fn build(member: &SdkConfig, home: &SdkConfig, config: &MedicConfig, at: Option<&AccountRegion>) -> Self {
        Self {
            databases: AwsRds::new(aws_sdk_rds::Client::new(member)),
            dns: AwsDns::new(aws_sdk_route53::Client::new(member)),
            metrics: AwsMetrics::new(aws_sdk_cloudwatch::Client::new(member)),
            ledger: DynamoLedger::for_function(home, config, at),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(home), config.topic_arn.clone()),
            policy: config.policy.clone(),
        }
    }
}

impl<D, Z, M, L, N> Rerouter<D, Z, M, L, N>
where
    D: DbInspector + Remediator + Sync,
    Z: DnsInspector + Remediator + Sync,
    M: LagInspector + Sync,
    L: Ledger + Sync,
    N: Notifier + Sync,
{
    pub async fn handle(&self, event: Value, at: impl Into<Invocation>) -> Result<Outcome, HandlerError> {
        let invocation = at.into();
        let now = invocation.now;
        let event = parse_db_event(&event)?;
        let trigger = Trigger::DbEvent(event.clone());
        let remediator = Remediators(&self.databases, &self.dns);
        let engine = Engine {
            function: AwsRerouter::NAME,
            ledger: &self.ledger,
            notifier: &self.notifier,
            remediator: &remediator,
            policy: &self.policy,
            deadline_ms: invocation.deadline_ms,
        };
        match rds_rerouter::need(&event) {
            Need::Ignore(reason) => Ok(engine.skip_without_observation(&trigger, &reason)),
            need => engine.run(&trigger, now, || self.observe_and_decide(&event, need.clone(), now)).await,
        }
    }

    async fn observe_and_decide(&self, event: &DbEvent, need: Need, now: EpochSeconds) -> PortResult<Plan> {
        let observation = self.observe(event, need, now).await?;
        Ok(rds_rerouter::decide_db(event, &observation, &self.policy, now))
    }

    /// The tags of a read replica's source instance (empty for anything else).
    async fn source_tags(&self, db: Option<&DbInstance>) -> PortResult<Tags> {
        Ok(self.source(db).await?.map(|db| db.tags).unwrap_or_default())
    }

    /// A read replica's source instance, if it has one and it exists.
    async fn source(&self, db: Option<&DbInstance>) -> PortResult<Option<DbInstance>> {
        match db.and_then(|db| db.source.as_deref()) {
            Some(source) => self.databases.db_instance(source).await,
            None => Ok(None),
        }
    }

    async fn observe(&self, event: &DbEvent, need: Need, now: EpochSeconds) -> PortResult<DbObservation> {
        let id = &event.identifier;
        Ok(match need {
            Need::Instance | Need::Ignore(_) => {
                let db = self.databases.db_instance(id).await?;
                let source_tags = self.source_tags(db.as_ref()).await?;
                DbObservation::Instance { db, source_tags }
            }
            Need::Promotion => {
                let guard_key = rds_rerouter::promotion_guard_key(id);
                let (primary, promotion_guard) =
                    tokio::join!(self.databases.db_instance(id), self.ledger.cooldown_until(&guard_key, now));
                let (Some(first), promotion_guard) = (primary?, promotion_guard?) else {
                    return Ok(DbObservation::Promotion(None));
                };
                if first.status == "available" {
                    // Seen healthy: a later failure is a new one and waits for its own
                    // confirming read.
                    self.ledger.forget(&rds_rerouter::terminal_seen_key(id)).await?;
                }
                if !rds_rerouter::may_need_promotion(&first) {
                    let facts = PromotionFacts { primary: first, replicas: vec![], writer: None, promotion_guard };
                    return Ok(DbObservation::Promotion(Some(facts)));
                }
                // A promotion cannot be undone: the terminal status must hold on a second read,
                // MEDIC_PROMOTE_CONFIRM_SECONDS after the first. This read is recorded, and the
                // primary read once more, side by side with the replicas, their lag and the
                // writer record, all of which a confirmed failure needs. Until it is confirmed
                // the event is retried (Lambda retries after 1 and 3 minutes).
                let confirming = promotion_guard.is_none();
                let seen = async {
                    if !confirming {
                        return Ok::<Option<Vec<String>>, PortError>(None);
                    }
                    let key = rds_rerouter::terminal_seen_key(id);
                    self.ledger
                        .add_to_set(&key, &now.to_string(), now + rds_rerouter::TERMINAL_SEEN_SECONDS)
                        .await
                        .map(Some)
                };
                let again = async {
                    match confirming {
                        true => self.databases.db_instance(id).await,
                        false => Ok(Some(first.clone())),
                    }
                };
                let replicas = futures_util::future::try_join_all(first.replicas.iter().map(|replica_id| async move {
                    let (db, lag) = tokio::join!(
                        self.databases.db_instance(replica_id),
                        self.metrics.replica_lag(replica_id, false, now)
                    );
                    Ok::<_, PortError>(db?.map(|db| (db, lag)))
                }));
                let writer = async {
                    let Some(location) = rds_rerouter::writer_record_location(&first.tags) else { return Ok(None) };
                    let records = readable(self.dns.record_sets(&location).await)?;
                    let record = records.map(|records| {
                        records.iter().find(|r| r.set_identifier.is_none()).or(records.first()).cloned()
                    });
                    Ok::<_, PortError>(Some((location, record)))
                };
                let (seen, again, replicas, writer) = tokio::join!(seen, again, replicas, writer);
                if let Some(seen) = seen? {
                    if let Err(due) = rds_rerouter::confirm_terminal(&seen, now, &self.policy) {
                        return Err(PortError::retryable(
                            "confirm the primary's status",
                            format!(
                                "{id} is {}, a terminal status; medic promotes only once a second read at or after {} confirms it",
                                first.status,
                                format_timestamp(due)
                            ),
                        ));
                    }
                }
                let Some(primary) = again? else {
                    return Ok(DbObservation::Promotion(None));
                };
                if !rds_rerouter::may_need_promotion(&primary) {
                    let facts = PromotionFacts { primary, replicas: vec![], writer: None, promotion_guard };
                    return Ok(DbObservation::Promotion(Some(facts)));
                }
                let mut replicas_now = Vec::with_capacity(primary.replicas.len());
                for (db, lag) in replicas?.into_iter().flatten() {
                    // Only replicas the latest read still names.
                    if primary.replicas.contains(&db.id) {
                        replicas_now.push(Replica { db, lag: lag? });
                    }
                }
                let writer = writer?;
                DbObservation::Promotion(Some(PromotionFacts {
                    primary,
                    replicas: replicas_now,
                    writer,
                    promotion_guard,
                }))
            }
            Need::Replica => {
                let Some(replica) = self.databases.db_instance(id).await? else {
                    return Ok(DbObservation::Replica(None));
                };
                let source = self.source(Some(&replica)).await?;
                let source_status = source.as_ref().map(|db| db.status.clone());
                let source_tags = source.map(|db| db.tags).unwrap_or_default();
                let readers = match rds_rerouter::reader_record_location(&replica.tags, &source_tags) {
                    Some(location) => {
                        let records = readable(self.dns.record_sets(&location).await)?;
                        Some((location, records))
                    }
                    None => None,
                };
                let lag = if event.kind == DbEventKind::ReplicationResumed {
                    self.metrics.replica_lag(id, false, now).await?
                } else {
                    None
                };
                DbObservation::Replica(Some(ReplicaFacts { replica, source_tags, source_status, readers, lag }))
            }
            Need::Cluster => {
                let Some(mut cluster) = self.databases.db_cluster(id).await? else {
                    return Ok(DbObservation::Cluster(None));
                };
                // Only a failover retry chooses among the readers.
                if event.kind == DbEventKind::AuroraFailoverFailed {
                    for member in cluster.members.iter_mut().filter(|m| !m.writer && m.status == "available") {
                        member.lag = self.metrics.replica_lag(&member.id, true, now).await?;
                    }
                }
                let failover_guard = self.ledger.cooldown_until(&rds_rerouter::failover_guard_key(id), now).await?;
                DbObservation::Cluster(Some(ClusterFacts { cluster, failover_guard }))
            }
        })
    }
}

/// Records that cannot be read for good (access denied, a zone that does not exist) are a fact
/// to decide on, not a reason to drop the event: medic then acts without DNS and says so.
/// Retryable failures still fail the invocation so Lambda retries.
fn readable<T>(result: PortResult<T>) -> PortResult<Result<T, String>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) if error.retryable => Err(error),
        Err(error) => Ok(Err(error.to_string())),
    }
}
