//! Narrow traits between the engine and AWS. Adapters implement them with the SDK; unit tests
//! implement them with fakes.

use std::collections::HashMap;
use std::future::Future;

use medic_core::alarm_responder::AlarmChanged;
use medic_core::alarm_responder::{AlarmFacts, GroupCapacity};
use medic_core::fleet::{GroupHealth, InstanceFacts, InstanceObservation};
use medic_core::guard::{Claim, Cooldown, InFlight, InFlightEntry};
use medic_core::notice::Notice;
use medic_core::rds_rerouter::{Cluster, DbInstance, DnsRecord, LagSample, RecordLocation};
use medic_core::scope::Tags;
use medic_core::time::EpochSeconds;
use medic_core::Action;

use crate::error::PortError;

pub type PortResult<T> = Result<T, PortError>;

/// What the guard reads about one action before it takes anything, in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardItems {
    /// Cooldowns, locks and marks still running, by key.
    pub cooldowns: HashMap<String, Cooldown>,
    /// The members of sets (breaker windows), by key.
    pub sets: HashMap<String, Vec<String>>,
    /// Groups' replacements in flight, by key.
    pub in_flight: HashMap<String, InFlight>,
}

/// One write of the guard's transaction: all are made, or none.
#[derive(Debug, Clone, Copy)]
pub enum Take<'a> {
    /// Starts a cooldown or lock for event `started_by` unless one is running, recording the
    /// action it is started for (`intent`).
    Cooldown { key: &'a str, until: EpochSeconds, started_by: &'a str, intent: Option<&'a Action> },
    /// Adds `member` to a breaker window unless it holds `max` others already (a member already
    /// in it is allowed again without counting twice).
    Slot { key: &'a str, member: &'a str, max: u32, expires_at: EpochSeconds },
    /// Records a replacement in its group's in-flight item, unless the item changed since it
    /// was read at version `read` (`None`: there was no item), dropping the `prune`d entries.
    InFlight { key: &'a str, entry: &'a InFlightEntry, read: Option<i64>, prune: &'a [String] },
}

/// Why the guard's transaction made none of its writes: the first write that could not be made,
/// and for a cooldown or lock, the one running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub index: usize,
    pub running: Option<Cooldown>,
}

/// The idempotency ledger, cooldowns and breaker counts (one DynamoDB table in production).
pub trait Ledger {
    /// Claims an event key, or reports how an earlier delivery of it went.
    fn claim(&self, key: &str, now: EpochSeconds) -> impl Future<Output = PortResult<Claim>> + Send;
    /// Records the outcome (JSON) and, when there is one, the notice still to deliver.
    fn complete(
        &self,
        key: &str,
        outcome: &str,
        notice: Option<&str>,
        now: EpochSeconds,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// The notice stored with the outcome was delivered.
    fn mark_notified(&self, key: &str) -> impl Future<Output = PortResult<()>> + Send;
    /// Gives a claim back so a retry can run (after a retryable failure).
    fn release(&self, key: &str) -> impl Future<Output = PortResult<()>> + Send;
    /// The cooldown at `key`, if it is still running at `now`.
    fn cooldown_until(&self, key: &str, now: EpochSeconds)
        -> impl Future<Output = PortResult<Option<Cooldown>>> + Send;
    /// Starts a cooldown on behalf of event `started_by`, recording the action it is started for
    /// (`intent`); false if one is already running (a concurrent invocation won).
    fn start_cooldown(
        &self,
        key: &str,
        until: EpochSeconds,
        now: EpochSeconds,
        started_by: &str,
        intent: Option<&Action>,
    ) -> impl Future<Output = PortResult<bool>> + Send;
    /// Deletes the item at `key`: a cooldown, lock or set given back or used up.
    fn forget(&self, key: &str) -> impl Future<Output = PortResult<()>> + Send;
    /// The action the cooldown at `key` guards succeeded.
    fn mark_done(&self, key: &str) -> impl Future<Output = PortResult<()>> + Send;
    /// Removes `member` from the set at `key`: a breaker slot given back (its call failed
    /// without changing AWS), a watch settled.
    fn remove_from_set(&self, key: &str, member: &str) -> impl Future<Output = PortResult<()>> + Send;
    /// Adds `member` to the set at `key` (adding it again changes nothing) and returns the set's
    /// members: counts that a retried event cannot inflate.
    fn add_to_set(
        &self,
        key: &str,
        member: &str,
        expires_at: EpochSeconds,
    ) -> impl Future<Output = PortResult<Vec<String>>> + Send;
    /// The members of the set at `key` (none when there is no set).
    fn set_members(&self, key: &str) -> impl Future<Output = PortResult<Vec<String>>> + Send;
    /// The pause switch: `Some(reason)` while an operator has paused medic.
    fn pause_switch(&self) -> impl Future<Output = PortResult<Option<String>>> + Send;
    /// The items at `keys` in one consistent read: cooldowns still running at `now`, sets, and
    /// replacements in flight.
    fn read_guard(&self, keys: &[String], now: EpochSeconds) -> impl Future<Output = PortResult<GuardItems>> + Send;
    /// Makes every write of `writes` in one transaction, or none of them and says which stood in
    /// the way.
    fn take(
        &self,
        writes: &[Take<'_>],
        now: EpochSeconds,
    ) -> impl Future<Output = PortResult<Result<(), Refusal>>> + Send;
    /// The replacement `entry` (its name) of the in-flight item at `key` returned from its call
    /// at `at_ms`: an observation begun from then on shows it.
    fn mark_applied(&self, key: &str, entry: &str, at_ms: i64) -> impl Future<Output = PortResult<()>> + Send;
    /// Drops the replacement `entry` from the in-flight item at `key`: its call did not act.
    fn drop_in_flight(&self, key: &str, entry: &str) -> impl Future<Output = PortResult<()>> + Send;
}

/// Where notices go (an SNS topic in production).
pub trait Notifier {
    fn publish(&self, notice: &Notice) -> impl Future<Output = PortResult<()>> + Send;
}

/// Performs a mutating action. The only way medic changes AWS.
pub trait Remediator {
    fn apply(&self, action: &Action) -> impl Future<Output = PortResult<()>> + Send;
    /// Whether this remediator performs `action` (for [`Remediators`], which joins two).
    fn performs(&self, _action: &Action) -> bool {
        true
    }
    /// Reads AWS to learn whether `action` happened (a promoted replica has no source any more, a
    /// replaced member is Unhealthy); `None` when AWS cannot tell. Asked when a call may have
    /// been applied without an answer, and by a retry that finds an interrupted attempt's intent.
    fn confirm(&self, _action: &Action) -> impl Future<Output = PortResult<Option<bool>>> + Send {
        async { Ok(None) }
    }
}

/// Two remediators as one: each action goes to the first that performs it.
#[derive(Debug)]
pub struct Remediators<'a, A, B>(pub &'a A, pub &'a B);

impl<A: Remediator + Sync, B: Remediator + Sync> Remediator for Remediators<'_, A, B> {
    async fn apply(&self, action: &Action) -> PortResult<()> {
        if self.0.performs(action) {
            self.0.apply(action).await
        } else {
            self.1.apply(action).await
        }
    }

    fn performs(&self, action: &Action) -> bool {
        self.0.performs(action) || self.1.performs(action)
    }

    async fn confirm(&self, action: &Action) -> PortResult<Option<bool>> {
        if self.0.performs(action) {
            self.0.confirm(action).await
        } else {
            self.1.confirm(action).await
        }
    }
}

/// RDS instances and Aurora clusters as DescribeDBInstances / DescribeDBClusters show them;
/// `None` when they do not exist.
pub trait DbInspector {
    fn db_instance(&self, id: &str) -> impl Future<Output = PortResult<Option<DbInstance>>> + Send;
    fn db_cluster(&self, id: &str) -> impl Future<Output = PortResult<Option<Cluster>>> + Send;
}

/// Every DB instance of the account and region (all pages): what the reconciler sweeps.
pub trait DbLister {
    fn db_instances(&self) -> impl Future<Output = PortResult<Vec<DbInstance>>> + Send;
}

/// The latest replica-lag datapoint of a DB instance (`ReplicaLag`, or `AuroraReplicaLag` for an
/// Aurora reader), in seconds; `None` when CloudWatch has none in the last few minutes.
pub trait LagInspector {
    fn replica_lag(
        &self,
        db_id: &str,
        aurora: bool,
        now: EpochSeconds,
    ) -> impl Future<Output = PortResult<Option<LagSample>>> + Send;
}

/// Route 53 record sets with the name at `location`, every set identifier.
pub trait DnsInspector {
    fn record_sets(&self, location: &RecordLocation) -> impl Future<Output = PortResult<Vec<DnsRecord>>> + Send;
}

/// Read-only view of an instance and its Auto Scaling group.
pub trait InstanceInspector {
    fn observe_instance(&self, instance_id: &str) -> impl Future<Output = PortResult<InstanceObservation>> + Send;
    /// Several instances at once, in as few calls as AWS allows (a target-group plan).
    fn observe_instances(
        &self,
        instance_ids: &[String],
    ) -> impl Future<Output = PortResult<Vec<(String, InstanceObservation)>>> + Send;
}

/// What the reconciler reads of the whole fleet, every list paginated.
pub trait FleetInspector {
    /// Every Auto Scaling group (`None`), or the named ones that exist.
    fn groups(&self, names: Option<&[String]>) -> impl Future<Output = PortResult<Vec<GroupHealth>>> + Send;
    /// Every stopped instance, with EC2's facts.
    fn stopped_instances(&self) -> impl Future<Output = PortResult<Vec<(String, InstanceFacts)>>> + Send;
    /// Running instances whose status checks EC2 reports impaired, and which checks.
    fn impaired_instances(&self) -> impl Future<Output = PortResult<Vec<(String, String)>>> + Send;
    /// EC2's facts of the instances that exist among `instance_ids`.
    fn instances(
        &self,
        instance_ids: &[String],
    ) -> impl Future<Output = PortResult<std::collections::HashMap<String, InstanceFacts>>> + Send;
}

/// One message of the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetter {
    pub id: String,
    /// Needed to delete it; empty when it was only looked at.
    pub receipt: String,
    pub body: String,
    pub sent_at: Option<EpochSeconds>,
    /// Its message attributes as strings (EventBridge's `RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`…).
    pub attributes: Vec<(String, String)>,
}

/// The dead-letter queue: how deep it is, and the oldest of a sample of its messages.
pub trait DeadLetterQueue {
    /// The approximate count of messages, and the oldest of up to ten looked at without taking
    /// them (they stay visible).
    fn depth(&self) -> impl Future<Output = PortResult<(i64, Option<DeadLetter>)>> + Send;
}

/// What CloudWatch knows about an alarm beyond its event: tags and comparison operator.
pub trait AlarmInspector {
    fn alarm_facts(&self, change: &AlarmChanged) -> impl Future<Output = PortResult<AlarmFacts>> + Send;
}

/// An Auto Scaling group's capacity and tags; `None` when the group does not exist.
pub trait GroupInspector {
    fn observe_group(&self, group: &str) -> impl Future<Output = PortResult<Option<(GroupCapacity, Tags)>>> + Send;
}

/// Instance ids of a target group's targets that need replacing; `None` when the target group
/// does not exist.
pub trait TargetInspector {
    fn unhealthy_targets(&self, target_group_arn: &str)
        -> impl Future<Output = PortResult<Option<Vec<String>>>> + Send;
}

// The same adapter (or fake) can serve several ports of one function.
impl<T: DbInspector + Sync> DbInspector for &T {
    async fn db_instance(&self, id: &str) -> PortResult<Option<DbInstance>> {
        (**self).db_instance(id).await
    }

    async fn db_cluster(&self, id: &str) -> PortResult<Option<Cluster>> {
        (**self).db_cluster(id).await
    }
}

impl<T: LagInspector + Sync> LagInspector for &T {
    async fn replica_lag(&self, db_id: &str, aurora: bool, now: EpochSeconds) -> PortResult<Option<LagSample>> {
        (**self).replica_lag(db_id, aurora, now).await
    }
}

impl<T: DnsInspector + Sync> DnsInspector for &T {
    async fn record_sets(&self, location: &RecordLocation) -> PortResult<Vec<DnsRecord>> {
        (**self).record_sets(location).await
    }
}

impl<T: Remediator + Sync> Remediator for &T {
    async fn apply(&self, action: &Action) -> PortResult<()> {
        (**self).apply(action).await
    }

    fn performs(&self, action: &Action) -> bool {
        (**self).performs(action)
    }

    async fn confirm(&self, action: &Action) -> PortResult<Option<bool>> {
        (**self).confirm(action).await
    }
}

/// For a function that only reports: any action reaching it is a bug, refused for good.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRemediation;

impl Remediator for NoRemediation {
    async fn apply(&self, action: &Action) -> PortResult<()> {
        Err(PortError::permanent(
            "apply",
            format!("this function changes nothing, yet was asked to: {}", action.api_call()),
        ))
    }

    fn performs(&self, _action: &Action) -> bool {
        false
    }
}
