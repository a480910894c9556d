//! The guard's rules, free of storage: ledger keys, windows, and expiry arithmetic. The ledger
//! adapter (medic-aws) turns these into DynamoDB conditional writes.

use crate::plan::Action;
use crate::policy::Policy;
use crate::time::EpochSeconds;

/// Ledger partition key of the pause switch: while the item exists, every function behaves as in
/// dry-run and says so in its notices. Its `reason` attribute says who paused medic and why.
pub const PAUSE_KEY: &str = "control#pause";

/// Ledger partition key for an event's idempotency record.
pub fn event_key(idempotency_key: &str) -> String {
    format!("event#{idempotency_key}")
}

/// A replacement rests on how many of its group's members are out of service (the floor,
/// `MEDIC_MAX_UNHEALTHY_PERCENT`): two events deciding at once would each count the group before
/// the other's replacement and together put it past the floor. Every replacement is recorded in
/// its group's in-flight item (one versioned ledger item per group, written in the same
/// transaction as the action's cooldown and breaker slot, on the version read), and a decision
/// stands only if every other event's replacement there was applied before its observation began
/// ([`unseen_replacements`]); otherwise it is made again on fresh state.
pub fn in_flight_key(action: &Action) -> Option<String> {
    match action {
        Action::ReplaceInstance { group, .. } => Some(format!("inflight#{group}#out-of-service")),
        _ => None,
    }
}

/// How long a replacement counts as in flight: a bound on the time from its transaction to its
/// call's effect showing in AWS, which an invocation that died holding one also waits out.
pub const IN_FLIGHT_SECONDS: i64 = 60;

/// A group's replacements in flight, as read from the ledger with their item's version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InFlight {
    pub version: i64,
    pub entries: Vec<InFlightEntry>,
}

/// One replacement in flight: which event replaces which member, when its transaction was taken
/// and when its call returned (epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightEntry {
    pub event: String,
    pub instance_id: String,
    pub taken_at_ms: i64,
    pub applied_at_ms: Option<i64>,
}

impl InFlightEntry {
    /// The entry's name in its group's item: one per event and instance.
    pub fn name(&self) -> String {
        format!("{}|{}", self.event, self.instance_id)
    }
}

/// The other events' replacements in `in_flight` that an observation begun at `observed_at_ms`
/// may not show: still in flight then, and not applied before it. A decision with any of them is
/// made again. A call that returned shows in the reads that follow it, as the decision lease this
/// replaced also assumed; the two times come from two clocks (Lambda's are synchronised to the
/// millisecond), and the group is read at least one round trip after the observation begins.
pub fn unseen_replacements<'a>(in_flight: &'a InFlight, event: &str, observed_at_ms: i64) -> Vec<&'a InFlightEntry> {
    in_flight
        .entries
        .iter()
        .filter(|entry| entry.event != event)
        .filter(|entry| entry.taken_at_ms + IN_FLIGHT_SECONDS * 1000 > observed_at_ms)
        .filter(|entry| entry.applied_at_ms.is_none_or(|applied| applied > observed_at_ms))
        .collect()
}

/// The entries of `in_flight` past counting for any observation from `now_ms` on, pruned when
/// `writing` is written (its own earlier entry, from an attempt a retry follows, is rewritten).
pub fn stale_replacements(in_flight: &InFlight, writing: &InFlightEntry, now_ms: i64) -> Vec<String> {
    in_flight
        .entries
        .iter()
        .filter(|entry| entry.taken_at_ms + IN_FLIGHT_SECONDS * 1000 <= now_ms)
        .map(InFlightEntry::name)
        .filter(|name| *name != writing.name())
        .collect()
}

/// How long the lock that mutually exclusive actions share stays taken after one of them: long
/// enough for AWS to show its effect, so the other is decided again on fresh state.
pub const EXCLUSIVE_LOCK_SECONDS: i64 = 60;

/// The lock that mutually exclusive actions on one resource share: a reboot and a stop for
/// recovery of one instance (AWS's pair of status-check alarms fires both), a scale-in and a
/// scale-out of one group. `None` for actions nothing conflicts with.
pub fn exclusive_lock_key(action: &Action) -> Option<String> {
    match action {
        Action::RebootInstance { instance_id } | Action::StopForRecovery { instance_id } => {
            Some(format!("lock#{instance_id}#status-check"))
        }
        Action::ScaleGroup { group, .. } => Some(format!("lock#{group}#capacity")),
        _ => None,
    }
}

/// Who holds an exclusive lock: the kind of action and its event. The same kind of action from
/// another event is no conflict (its cooldown decides); another kind is.
pub fn lock_holder(action: &Action, event_key: &str) -> String {
    format!("{}|{event_key}", action.name())
}

/// The kind of action (`reboot`, `scale-in`…) a lock holder written by [`lock_holder`] names.
pub fn lock_holder_kind(holder: &str) -> &str {
    holder.split_once('|').map_or(holder, |(kind, _)| kind)
}

/// Ledger partition key for a resource's cooldown after an action.
pub fn cooldown_key(action: &Action) -> String {
    resource_cooldown_key(action.resource(), action.name())
}

/// The ledger key that marks medic's own stop of `instance_id` for recovery: the cooldown of its
/// `StopForRecovery`. The start that completes the recovery uses it up.
pub fn recovery_mark_key(instance_id: &str) -> String {
    cooldown_key(&Action::StopForRecovery { instance_id: instance_id.to_owned() })
}

/// The mark an action uses up when it succeeds: the start completing a recovery clears the
/// recovery mark, so a person's later stop is not taken for medic's own.
pub fn consumed_mark(action: &Action) -> Option<String> {
    match action {
        Action::StartInstance { instance_id, completes_recovery: true } => Some(recovery_mark_key(instance_id)),
        _ => None,
    }
}

/// The cooldown key of action `name` on `resource`, for reading it before any action exists.
pub fn resource_cooldown_key(resource: &str, name: &str) -> String {
    format!("cooldown#{resource}#{name}")
}

/// Promotions and cluster failovers happen at most once per primary or cluster in this span.
pub const ONCE_PER_DAY_SECONDS: i64 = 24 * 3600;

/// How long medic's stop of an instance for recovery marks it as medic's own stop, whatever the
/// cooldown: the instance healer starts an instance stopped within this span.
pub const RECOVERY_MARK_SECONDS: i64 = 3600;

/// Every cooldown that holds `action` back: its own, and for a scale-in also a recent scale-out
/// of the same group (never shrink a group that just had to grow). The start that completes
/// medic's own recovery is never held back: it is the second half of one remediation.
pub fn blocking_cooldown_keys(action: &Action) -> Vec<String> {
    match action {
        Action::StartInstance { completes_recovery: true, .. } => vec![],
        Action::ScaleGroup { group, from, to } if to < from => {
            vec![cooldown_key(action), format!("cooldown#{group}#scale-out")]
        }
        _ => vec![cooldown_key(action)],
    }
}

/// How long `action`'s own cooldown lasts.
pub fn cooldown_seconds(action: &Action, policy: &Policy) -> i64 {
    match action {
        Action::ScaleGroup { from, to, .. } if to < from => policy.scale_in_cooldown_seconds,
        Action::ScaleGroup { .. } => policy.scale_out_cooldown_seconds,
        Action::PromoteReplica { .. } | Action::FailoverCluster { .. } => ONCE_PER_DAY_SECONDS,
        Action::StopForRecovery { .. } => RECOVERY_MARK_SECONDS,
        Action::StartInstance { completes_recovery: true, .. } => 0,
        // Absolute UPSERTs that only follow a guarded decision: a cooldown would leave a broken
        // replica in rotation, or a promoted writer unrouted.
        Action::PointWriterRecord { .. } | Action::SetReaderWeight { .. } => 0,
        _ => policy.cooldown_seconds,
    }
}

/// Start of the fixed breaker window containing `now` (windows are aligned to the epoch).
pub fn window_start(now: EpochSeconds, window_seconds: i64) -> EpochSeconds {
    now - now.rem_euclid(window_seconds.max(1))
}

/// Ledger partition key for the count of actions in one breaker window of one scope.
pub fn breaker_key(scope: &str, now: EpochSeconds, window_seconds: i64) -> String {
    format!("breaker#{scope}#{}", window_start(now, window_seconds))
}

/// Which breaker refused an action: its scope's (the group, the primary), or the one that caps the
/// whole account's actions per window whatever their scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    Scope,
    Account,
}

/// The account-wide breaker's scope: the ledger is the account's own (its keys carry the account
/// in central mode), so this one scope caps each account.
pub const ACCOUNT_SCOPE: &str = "account-wide";

impl Breaker {
    /// The breaker that counts in `scope`'s windows.
    pub fn of_scope(scope: &str) -> Self {
        if scope == ACCOUNT_SCOPE {
            Self::Account
        } else {
            Self::Scope
        }
    }

    /// The scope whose window counts `action`, and whose critical notice and digest name it.
    pub fn scope(self, action: &Action) -> String {
        match self {
            Self::Scope => action.breaker_scope(),
            Self::Account => ACCOUNT_SCOPE.to_owned(),
        }
    }

    /// Its limit per window.
    pub fn max(self, policy: &Policy) -> u32 {
        match self {
            Self::Scope => policy.breaker_max_actions,
            Self::Account => policy.account_breaker_max(),
        }
    }

    /// How a notice names what it counts (`web-prod`'s "in asg/web-prod").
    pub fn counted_in(self, action: &Action) -> String {
        match self {
            Self::Scope => action.breaker_scope(),
            Self::Account => "the whole account".to_owned(),
        }
    }

    /// What a digest of the actions it held back is about (`asg web-prod`).
    pub fn scope_label(self, action: &Action) -> String {
        match self {
            Self::Scope => action.scope_label(),
            Self::Account => self.counted_in(action),
        }
    }
}

/// What one breaker slot stands for: one action of one event. A retry of the event is the same
/// member, so it never takes a second slot.
pub fn breaker_member(event_key: &str, action: &Action) -> String {
    format!("{event_key}|{}|{}", action.name(), action.resource())
}

/// Ledger partition key for "the critical notice of this window's first refusal was sent", and
/// when.
pub fn breaker_notice_key(scope: &str, now: EpochSeconds, window_seconds: i64) -> String {
    format!("breaker-notice#{scope}#{}", window_start(now, window_seconds))
}

/// Ledger keys of a scope's hold-backs in one breaker window: `held` is the set of actions held
/// back after the critical notice (whose item, at `breaker_notice_key`, records when it went out),
/// `digest` the one digest (its sender and members as sent).
pub fn held_key(kind: &str, scope: &str, now: EpochSeconds, window_seconds: i64) -> String {
    format!("{kind}#{scope}#{}", window_start(now, window_seconds))
}

/// One held-back action as the digest names it: the resource, what medic would have done and why.
pub fn held_member(action: &Action, why: &str) -> String {
    format!("{}: {} ({why})", action.resource(), action.describe(false))
}

/// When an item written now stops mattering, for the table's TTL attribute.
pub fn event_expiry(policy: &Policy, now: EpochSeconds) -> EpochSeconds {
    now + policy.ledger_ttl_seconds
}

pub fn breaker_expiry(policy: &Policy, now: EpochSeconds) -> EpochSeconds {
    window_start(now, policy.breaker_window_seconds) + 2 * policy.breaker_window_seconds
}

/// A ledger record's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerStatus {
    InProgress,
    Completed,
}

impl LedgerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "INPROGRESS",
            Self::Completed => "COMPLETED",
        }
    }
}

/// The result of claiming an event in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First delivery (or the claimant died): go ahead.
    Claimed,
    /// Handled before: the first outcome (JSON) as recorded then, and its notice (JSON) if SNS
    /// never accepted it.
    Completed { outcome: String, pending_notice: Option<String> },
    /// Another invocation holds a live claim.
    InProgress,
}

/// A running cooldown, and the event whose action started it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Cooldown {
    pub until: EpochSeconds,
    /// The ledger event key of the event that started it (empty if unknown).
    pub started_by: String,
    /// The action it guards succeeded; until then the cooldown records only the intent.
    pub done: bool,
    /// When it was started (0 for an item written before this was recorded).
    pub started_at: EpochSeconds,
    /// The action it was started for, as decided then (`None` for a lock or mark): a retry
    /// of the same event finishes that action, not one decided on what it changed.
    pub intent: Option<Box<Action>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_times_in_one_window_when_keyed_then_same_breaker_key() {
        let window = 900;
        let start = 1_795_252_500 - 1_795_252_500 % window;
        assert_eq!(window_start(start, window), start);
        assert_eq!(window_start(start + window - 1, window), start);
        assert_eq!(window_start(start + window, window), start + window);
        assert_eq!(breaker_key("asg/web", start + 10, window), breaker_key("asg/web", start + 899, window));
        assert_ne!(breaker_key("asg/web", start, window), breaker_key("asg/api", start, window));
    }

    #[test]
    fn given_policy_when_expiry_computed_then_events_outlive_eventbridge_retries() {
        let policy = Policy::default();
        assert!(event_expiry(&policy, 0) >= 25 * 3600);
        assert!(breaker_expiry(&policy, 100) > 100 + policy.breaker_window_seconds - 100);
    }

    #[test]
    fn given_action_when_keyed_then_cooldown_is_per_resource_and_action() {
        let replace = Action::ReplaceInstance { group: "web".into(), instance_id: "i-1".into() };
        let start = Action::StartInstance { instance_id: "i-1".into(), completes_recovery: false };
        assert_eq!(cooldown_key(&replace), "cooldown#i-1#replace");
        assert_ne!(cooldown_key(&replace), cooldown_key(&start));
    }

    #[test]
    fn given_scaling_when_keyed_then_scale_in_waits_for_a_recent_scale_out() {
        let policy = Policy::default();
        let out = Action::ScaleGroup { group: "web".into(), from: 2, to: 3 };
        let scale_in = Action::ScaleGroup { group: "web".into(), from: 3, to: 2 };
        assert_eq!(blocking_cooldown_keys(&out), ["cooldown#web#scale-out"]);
        assert_eq!(blocking_cooldown_keys(&scale_in), ["cooldown#web#scale-in", "cooldown#web#scale-out"]);
        assert_eq!((cooldown_seconds(&out, &policy), cooldown_seconds(&scale_in, &policy)), (300, 600));
        let replace = Action::ReplaceInstance { group: "web".into(), instance_id: "i-1".into() };
        assert_eq!(cooldown_seconds(&replace, &policy), policy.cooldown_seconds);
    }

    fn entry(event: &str, id: &str, taken_at_ms: i64, applied_at_ms: Option<i64>) -> InFlightEntry {
        InFlightEntry { event: event.into(), instance_id: id.into(), taken_at_ms, applied_at_ms }
    }

    #[test]
    fn given_replacements_in_flight_when_an_observation_is_checked_then_only_those_it_may_not_show_count() {
        let observed = 1_000_000_000;
        let window = IN_FLIGHT_SECONDS * 1000;
        // (entry, unseen by an observation begun at `observed` of event "mine")
        let table = [
            (entry("other", "i-taken", observed - 500, None), true),
            (entry("other", "i-applied-after", observed - 5_000, Some(observed + 1)), true),
            (entry("other", "i-applied", observed - 5_000, Some(observed)), false),
            (entry("other", "i-taken-after", observed + 2_000, None), true),
            (entry("other", "i-past", observed - window, None), false),
            (entry("other", "i-just-in", observed - window + 1, None), true),
            (entry("mine", "i-own", observed - 500, None), false),
        ];
        let in_flight = InFlight { version: 3, entries: table.iter().map(|(e, _)| e.clone()).collect() };
        let unseen: Vec<&str> =
            unseen_replacements(&in_flight, "mine", observed).iter().map(|e| e.instance_id.as_str()).collect();
        let expected: Vec<&str> =
            table.iter().filter(|(_, unseen)| *unseen).map(|(e, _)| e.instance_id.as_str()).collect();
        assert_eq!(unseen, expected);
    }

    #[test]
    fn given_replacements_in_flight_when_pruned_then_only_others_past_counting_for_any_later_observation_go() {
        let now = 1_000_000_000;
        let window = IN_FLIGHT_SECONDS * 1000;
        let in_flight = InFlight {
            version: 1,
            entries: vec![
                entry("a", "i-1", now - window, Some(now - window + 100)),
                entry("b", "i-2", now - window + 1, None),
                entry("c", "i-3", now - window - 1, None),
            ],
        };
        let retry_of_c = entry("c", "i-3", now, None);
        assert_eq!(
            stale_replacements(&in_flight, &retry_of_c, now),
            ["a|i-1"],
            "c's own entry is rewritten, not pruned"
        );
    }
}
