//! The one path every function takes after parsing:
//! claim → observe + decide → guard → act → record → report.
//! Functions supply the observe + decide step; everything else, including every safety rule, is
//! here once.

use std::borrow::Cow;
use std::future::Future;

use medic_core::guard::{self, Breaker, Claim, Cooldown, InFlightEntry};
use medic_core::notice::{self, Notice, NoticeKind};
use medic_core::time::EpochSeconds;
use medic_core::watch::{Watch, WATCHES_KEY, WATCHES_SECONDS};
use medic_core::{Decision, Outcome, Plan, PlannedAction, Policy, SkipReason, Status, Trigger};
use serde::{Deserialize, Serialize};

use crate::error::{HandlerError, PortError};
use crate::ports::{Ledger, Notifier, Remediator, Take};

#[derive(Debug)]
pub struct Engine<'a, L, N, R> {
    /// The function's short name (`instance-healer`…), the `Function` metric dimension.
    pub function: &'a str,
    pub ledger: &'a L,
    pub notifier: &'a N,
    pub remediator: &'a R,
    pub policy: &'a Policy,
    /// When the invocation ends (epoch milliseconds, from the Lambda context); `None` outside
    /// Lambda. No mutating call starts with less than `MIN_TIME_FOR_A_CALL_MS` left.
    pub deadline_ms: Option<i64>,
}

/// What one invocation is given: the time, and the Lambda deadline when there is one. Plain epoch
/// seconds convert into it (no deadline), so tests and tools pass a time alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocation {
    pub now: EpochSeconds,
    pub deadline_ms: Option<i64>,
}

impl From<EpochSeconds> for Invocation {
    fn from(now: EpochSeconds) -> Self {
        Self { now, deadline_ms: None }
    }
}

impl Invocation {
    /// The clock now and the deadline of the Lambda invocation `context`.
    pub fn of(context: &lambda_runtime::Context) -> Self {
        Self { now: crate::now_epoch_seconds(), deadline_ms: i64::try_from(context.deadline).ok() }
    }

    /// Milliseconds left before the deadline, by the wall clock; `None` without a deadline.
    pub fn ms_left(&self) -> Option<i64> {
        ms_left(self.deadline_ms)
    }
}

/// No mutating call starts with less time than this left before the invocation's deadline: the
/// event is retried instead of being cut off mid-call.
pub const MIN_TIME_FOR_A_CALL_MS: i64 = 5_000;

/// How long a call without an answer is given to land in AWS before AWS is read about it.
pub const SETTLE_PAUSE_MS: i64 = 1_000;

/// The message attribute that names a notice: the same for every delivery of it.
pub const NOTICE_ID_ATTRIBUTE: &str = "notice_id";

/// The notice as stored in the ledger until SNS accepted it, so a retry can deliver it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredNotice {
    subject: String,
    body: String,
    severity: medic_core::Severity,
    attributes: Vec<(String, String)>,
}

impl From<&Notice> for StoredNotice {
    fn from(notice: &Notice) -> Self {
        Self {
            subject: notice.subject.clone(),
            body: notice.body.clone(),
            severity: notice.severity,
            attributes: notice.attributes.clone(),
        }
    }
}

impl From<StoredNotice> for Notice {
    fn from(stored: StoredNotice) -> Self {
        Self { subject: stored.subject, body: stored.body, severity: stored.severity, attributes: stored.attributes }
    }
}

/// A plan and when the observation it rests on began (epoch milliseconds, by the wall clock).
struct Observed {
    plan: Result<Plan, PortError>,
    at_ms: i64,
}

/// What became of one planned action.
enum ActionResult {
    Done,
    /// An earlier attempt of this same event did it, then failed on a later step.
    DoneEarlier,
    /// It needs the step before it, which did not happen.
    NotAttempted,
    WouldDo,
    Cooldown {
        until: EpochSeconds,
    },
    BreakerOpen {
        breaker: Breaker,
        notify: bool,
    },
    /// An interrupted attempt of this event recorded its intent to make this non-idempotent call,
    /// and AWS cannot tell whether it happened.
    Unconfirmed,
    /// The breaker refused it after its critical notice of this window: named in the digest.
    HeldBack(HoldBack, Breaker),
    Failed(PortError),
}

/// What an invocation took in the ledger for one action, to give back if it does not act.
#[derive(Default)]
struct Taken {
    cooldown: Option<String>,
    lock: Option<String>,
    /// The breaker windows it took a slot in: its scope's, the account's.
    slots: Vec<String>,
    /// The group's in-flight item and this replacement's entry in it.
    in_flight: Option<(String, String)>,
}

/// The event an action belongs to, the invocation's time, and when the observation its plan
/// rests on began (epoch milliseconds).
#[derive(Clone, Copy)]
struct Moment<'a> {
    event_key: &'a str,
    now: EpochSeconds,
    observed_at_ms: i64,
}

/// The ledger keys the guard reads and writes for one action.
struct GuardKeys {
    /// The action's own cooldown.
    cooldown: String,
    /// The cooldowns that hold it back (its own among them, unless it has none).
    blocking: Vec<String>,
    lock: Option<String>,
    /// The breaker windows of its scope: the current one and the one before it.
    window: String,
    previous_window: String,
    /// The account-wide breaker's windows.
    account_window: String,
    account_previous_window: String,
    in_flight: Option<String>,
}

impl GuardKeys {
    fn of(action: &medic_core::Action, policy: &Policy, now: EpochSeconds) -> Self {
        let (scope, window) = (action.breaker_scope(), policy.breaker_window_seconds);
        Self {
            cooldown: guard::cooldown_key(action),
            blocking: guard::blocking_cooldown_keys(action),
            lock: guard::exclusive_lock_key(action),
            window: guard::breaker_key(&scope, now, window),
            previous_window: guard::breaker_key(&scope, now - window, window),
            account_window: guard::breaker_key(guard::ACCOUNT_SCOPE, now, window),
            account_previous_window: guard::breaker_key(guard::ACCOUNT_SCOPE, now - window, window),
            in_flight: guard::in_flight_key(action),
        }
    }

    /// The windows the breakers count in, each with the one before it.
    fn breakers(&self) -> [(Breaker, &str, &str); 2] {
        [
            (Breaker::Scope, &self.window, &self.previous_window),
            (Breaker::Account, &self.account_window, &self.account_previous_window),
        ]
    }

    /// What the guard reads: dry-run takes nothing, so it reads only what it reports on; a
    /// follow-up step was counted with the step it completes.
    fn to_read(&self, follow_up: bool, dry_run: bool) -> Vec<String> {
        let mut keys = self.blocking.clone();
        if !follow_up {
            for (_, window, previous) in self.breakers() {
                keys.push(previous.to_owned());
                if dry_run {
                    keys.push(window.to_owned());
                }
            }
        }
        if !dry_run {
            keys.extend(self.lock.iter().chain(&self.in_flight).cloned());
        }
        keys
    }
}

/// A lock another kind of action holds on the same resource: decided again on what it changed.
fn conflicting_lock(held: &Cooldown, action: &medic_core::Action) -> PortError {
    PortError::retryable(
        "exclusive lock",
        format!(
            "a conflicting {} of {} ran moments ago; {} is decided again on fresh state after {}",
            guard::lock_holder_kind(&held.started_by),
            action.resource(),
            action.name(),
            medic_core::time::format_timestamp(held.until)
        ),
    )
}

/// Replacements in the group that the observation may not show: decided again once they do.
fn unseen_replacements(action: &medic_core::Action, unseen: &[&InFlightEntry]) -> PortError {
    let others: Vec<&str> = unseen.iter().map(|entry| entry.instance_id.as_str()).collect();
    PortError::retryable(
        "replacements in flight",
        format!(
            "another event's replacement of {} in the group may not show yet in what {} was decided on; decided again on the group as that one leaves it",
            others.join(", "),
            action.resource()
        ),
    )
}

/// What became of an action held back after its scope's critical notice of the window.
enum HoldBack {
    /// This invocation sends the digest, which names these (this one included).
    Digest(Vec<String>),
    /// The digest, already sent, names it.
    Named,
    /// Held back after the window's digest went out: it gets a notice of its own.
    Straggler,
}

impl<L: Ledger + Sync, N: Notifier + Sync, R: Remediator + Sync> Engine<'_, L, N, R> {
    /// Skips a trigger that needs no AWS state (for example a running instance): no ledger, no
    /// calls, just the decision log line.
    pub fn skip_without_observation(&self, trigger: &Trigger, reason: &SkipReason) -> Outcome {
        let plan = Plan::skip(trigger.resource(), reason.clone());
        let outcome = skipped(trigger, &plan, reason, self.policy);
        self.log_decision(trigger, &outcome, std::time::Instant::now());
        outcome
    }

    /// Runs the whole guarded path for a trigger. `observe_and_decide` reads AWS and makes the
    /// pure decision. It runs beside the claim and the pause switch, and its plan is carried out
    /// only once the event is claimed: a claim not won discards what it read. It changes nothing
    /// in AWS; what it records in the ledger (a launch failure counted, a terminal status seen)
    /// is keyed by the event or is a fact read from AWS, so a duplicate beside it changes nothing.
    pub async fn run<F, Fut>(
        &self,
        trigger: &Trigger,
        now: EpochSeconds,
        observe_and_decide: F,
    ) -> Result<Outcome, HandlerError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Plan, PortError>>,
    {
        let started = std::time::Instant::now();
        let observed_at_ms = wall_clock_ms();
        let key = guard::event_key(&trigger.idempotency_key());
        // The observation on the heap: beside the claim it would make the engine's future, and
        // every caller's (in a debug build, its stack), as large as both together, and its type
        // nested past the compiler's query depth.
        let (pause, claim, plan) =
            tokio::join!(self.ledger.pause_switch(), self.ledger.claim(&key, now), Box::pin(observe_and_decide()));
        let observed = Observed { plan, at_ms: observed_at_ms };
        self.run_claimed(trigger, &key, claim?, pause, now, observed, started).await
    }

    /// Gives the event's claim back after a failure, so that Lambda's retry can take it.
    async fn release(&self, key: &str) {
        if let Err(release_error) = self.ledger.release(key).await {
            tracing::error!(event = %key, error = %release_error, "could not release the ledger claim; a retry waits for it to expire");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_claimed(
        &self,
        trigger: &Trigger,
        key: &str,
        claim: Claim,
        pause: Result<Option<String>, PortError>,
        now: EpochSeconds,
        observed: Observed,
        started: std::time::Instant,
    ) -> Result<Outcome, HandlerError> {
        // The operator's pause switch, read on every invoke: while it is on, everything runs as
        // in dry-run and every notice names the pause.
        let policy = match pause {
            Ok(None) => Cow::Borrowed(self.policy),
            Ok(Some(reason)) => Cow::Owned(Policy { dry_run: true, paused: Some(reason), ..self.policy.clone() }),
            Err(error) => {
                if matches!(claim, Claim::Claimed) {
                    self.release(key).await;
                }
                return Err(error.into());
            }
        };
        let engine = Engine { policy: &policy, ..*self };
        match claim {
            Claim::Claimed => {}
            Claim::Completed { outcome, pending_notice } => {
                return engine.duplicate(trigger, key, &outcome, pending_notice.as_deref(), started).await;
            }
            Claim::InProgress => {
                // Another invocation holds the claim. Succeeding here would drop the event if
                // that invocation dies, so ask Lambda to retry: by then it is completed (a
                // duplicate) or its claim has expired (taken over).
                return Err(PortError::retryable(
                    "ledger claim",
                    format!("{}: {key}", SkipReason::DuplicateInProgress),
                )
                .into());
            }
        }
        let result = match observed.plan {
            Ok(plan) => engine.execute(trigger, key, &plan, now, observed.at_ms).await,
            Err(error) => Err(error),
        };
        let (outcome, notice) = match result {
            Ok(done) => done,
            Err(error) => {
                self.release(key).await;
                return Err(error.into());
            }
        };
        let outcome_json = serde_json::to_string(&outcome).unwrap_or_default();
        let stored = notice.as_ref().map(|n| serde_json::to_string(&StoredNotice::from(n)).unwrap_or_default());
        self.ledger.complete(key, &outcome_json, stored.as_deref(), now).await?;
        if let Some(notice) = &notice {
            self.deliver(key, notice).await?;
        }
        self.log_decision(trigger, &outcome, started);
        Ok(outcome)
    }

    async fn duplicate(
        &self,
        trigger: &Trigger,
        key: &str,
        first: &str,
        pending_notice: Option<&str>,
        started: std::time::Instant,
    ) -> Result<Outcome, HandlerError> {
        let first: Option<Outcome> = serde_json::from_str(first).ok();
        let first_outcome = first
            .as_ref()
            .map_or_else(|| "outcome not recorded".to_owned(), |o| format!("{} ({})", o.status.as_str(), o.reason));
        if let Some(pending) = pending_notice.and_then(|n| serde_json::from_str::<StoredNotice>(n).ok()) {
            tracing::warn!(event = %key, "delivering a notice an earlier invocation could not");
            self.deliver(key, &Notice::from(pending)).await?;
        }
        let reason = SkipReason::Duplicate { first_outcome };
        let (account, region) = located(trigger);
        let outcome = Outcome {
            event: trigger.idempotency_key(),
            resource: trigger.resource().to_owned(),
            status: Status::Duplicate,
            action: first.as_ref().and_then(|o| o.action.clone()),
            label: Some(reason.label().into()),
            reason: reason.to_string(),
            account,
            region,
            severity: None,
            dry_run: self.policy.dry_run,
            notice: None,
        };
        self.log_decision(trigger, &outcome, started);
        Ok(outcome)
    }

    /// One structured log line and one EMF metrics line per decision.
    fn log_decision(&self, trigger: &Trigger, outcome: &Outcome, started: std::time::Instant) {
        log_decision(trigger, outcome);
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        crate::emf::emit(&crate::emf::decision_record(self.function, outcome, latency_ms, wall_clock_ms()));
    }

    /// Publishes the event's notice with its ledger key as the `notice_id` attribute. SNS keeps
    /// no count of what it was sent: a publish whose answer was lost is sent again (by the SDK,
    /// or by a retry that finds the notice pending), and the id is what tells the copy from a new
    /// notice (a pager's dedup key, a chat filter).
    async fn deliver(&self, key: &str, notice: &Notice) -> Result<(), HandlerError> {
        let mut notice = notice.clone();
        notice.attributes.push((NOTICE_ID_ATTRIBUTE.to_owned(), key.to_owned()));
        self.notifier.publish(&notice).await?;
        self.ledger.mark_notified(key).await?;
        Ok(())
    }

    async fn execute(
        &self,
        trigger: &Trigger,
        event_key: &str,
        plan: &Plan,
        now: EpochSeconds,
        observed_at_ms: i64,
    ) -> Result<(Outcome, Option<Notice>), PortError> {
        match &plan.decision {
            Decision::Skip { reason } => Ok((skipped(trigger, plan, reason, self.policy), None)),
            Decision::Alert(alert) => {
                let mut outcome =
                    self.outcome(trigger, plan, Status::Alerted, Some("notify"), None, alert.reason.clone());
                outcome.severity = Some(alert.severity);
                // A safety rule held an action back: only the scope's first such alert of the
                // window is sent; the others are named in its digest. Dry-run (and pause) keep
                // no such state and send every alert.
                let kind = NoticeKind::Alert(alert);
                if let (Some(action), false) = (&alert.held_back, self.policy.dry_run) {
                    let scope = action.breaker_scope();
                    if !self.first_refusal(&scope, now).await? {
                        let member = guard::held_member(action, &alert.headline);
                        let held = self.hold_back(&scope, &member, event_key, now).await?;
                        let notice = self.held_notice(&held, &scope, &alert.scope_label, &kind, trigger, &mut outcome);
                        return Ok((outcome, notice));
                    }
                }
                let notice = self.notice(&kind, trigger, &mut outcome);
                Ok((outcome, Some(notice)))
            }
            Decision::Act { actions } => {
                let mut reports: Vec<(Outcome, Option<Notice>)> = Vec::with_capacity(actions.len());
                let mut previous_happened = true;
                let mut changed_aws = false;
                for (index, planned) in actions.iter().enumerate() {
                    let mut planned = Cow::Borrowed(planned);
                    // A step that only completes the one before it (reroute after promote, reboot
                    // after leaving the reader set) is the same remediation: the breaker counted
                    // it with its lead step.
                    let follow_up =
                        (planned.action.needs_previous() && index > 0) || planned.action.completes_recovery();
                    let result = if planned.action.needs_previous() && !previous_happened {
                        ActionResult::NotAttempted
                    } else {
                        // Once this plan has a notice of its own (a step acted or was refused
                        // with a notice), its other refusals are named in it, not held for a digest.
                        let may_hold = !changed_aws && !reports.iter().any(|(_, notice)| notice.is_some());
                        let at = Moment { event_key, now, observed_at_ms };
                        match self.guard_and_act(&mut planned, follow_up, may_hold, at).await {
                            Ok(result) => result,
                            // Once a step changed AWS, retrying the whole event would re-derive
                            // the plan from changed state; the failure is reported instead, with
                            // what was done, so a human can finish the job.
                            Err(error) if changed_aws => ActionResult::Failed(PortError {
                                message: format!(
                                    "{} (not retried: an earlier step of this plan already changed AWS)",
                                    error.message
                                ),
                                ..error
                            }),
                            Err(error) => return Err(error),
                        }
                    };
                    if matches!(result, ActionResult::Done | ActionResult::DoneEarlier) {
                        changed_aws = true;
                        self.watch(&planned.action, event_key, now).await;
                    }
                    previous_happened =
                        matches!(result, ActionResult::Done | ActionResult::DoneEarlier | ActionResult::WouldDo);
                    reports.push(self.report_action(trigger, plan, &planned, result));
                }
                Ok(combine(reports).unwrap_or_else(|| {
                    (self.outcome(trigger, plan, Status::Skipped, None, None, "plan had no actions".into()), None)
                }))
            }
        }
    }

    /// Cooldown, lock, breaker, floor, dry-run, then the call. What the guard needs is read in
    /// one request and taken in one transaction. Retryable failures come back as errors. A retry
    /// that finds the action an interrupted attempt of this event recorded puts it in `planned`.
    async fn guard_and_act(
        &self,
        planned: &mut Cow<'_, PlannedAction>,
        follow_up: bool,
        may_hold: bool,
        at: Moment<'_>,
    ) -> Result<ActionResult, PortError> {
        let Moment { event_key, now, .. } = at;
        let policy = self.policy;
        let keys = GuardKeys::of(&planned.action, policy, now);
        let read = self.ledger.read_guard(&keys.to_read(follow_up, policy.dry_run), now).await?;
        // A retry of this very event that finds its own cooldown finishes the action recorded
        // there: decided again, on what that action changed, it could go a step further (a
        // scale-out seen done would plan the next one). Done means the step succeeded (the steps
        // that need it must still run); intent alone means the attempt was interrupted, and the
        // call is made again only if that is safe.
        let mut resuming = false;
        for key in &keys.blocking {
            if let Some(cooldown) = read.cooldowns.get(key) {
                if *key != keys.cooldown || cooldown.started_by != event_key {
                    return Ok(ActionResult::Cooldown { until: cooldown.until });
                }
                if let Some(recorded) = cooldown.intent.as_deref().filter(|recorded| **recorded != planned.action) {
                    *planned = Cow::Owned(PlannedAction { action: recorded.clone(), reason: planned.reason.clone() });
                }
                if cooldown.done {
                    return Ok(ActionResult::DoneEarlier);
                }
                match self.remediator.confirm(&planned.action).await? {
                    Some(true) => {
                        self.ledger.mark_done(&keys.cooldown).await?;
                        return Ok(ActionResult::DoneEarlier);
                    }
                    Some(false) => {}
                    None if planned.action.is_idempotent() => {}
                    None => return Ok(ActionResult::Unconfirmed),
                }
                resuming = true;
            }
        }
        let action = &planned.action;
        let member = guard::breaker_member(event_key, action);
        let count = |key: &str| read.sets.get(key).map_or(&[][..], Vec::as_slice);
        let len = |members: &[String]| u32::try_from(members.len()).unwrap_or(u32::MAX);
        // Each breaker whose windows must count this action, with the room its current window
        // has. Fixed windows alone would let 2 x max through around a boundary. Counting the
        // previous window too keeps every span of one window length at or under max.
        let counting: Vec<(Breaker, &str, u32)> = keys
            .breakers()
            .into_iter()
            .filter(|_| !follow_up)
            .filter(|(_, _, previous)| !count(previous).contains(&member))
            .map(|(breaker, window, previous)| {
                (breaker, window, breaker.max(policy).saturating_sub(len(count(previous))))
            })
            .collect();
        if policy.dry_run {
            // Dry-run writes no cooldown and counts nothing; it only says whether the breakers
            // would let the action through.
            let full = counting
                .iter()
                .find(|(_, window, room)| !count(window).contains(&member) && len(count(window)) >= *room);
            if let Some((breaker, ..)) = full {
                return Ok(ActionResult::BreakerOpen { breaker: *breaker, notify: false });
            }
            return Ok(ActionResult::WouldDo);
        }
        if let Some(left_ms) = ms_left(self.deadline_ms) {
            if left_ms < MIN_TIME_FOR_A_CALL_MS {
                return Err(PortError::retryable(
                    "deadline",
                    format!(
                        "{} not started: {left_ms} ms left before the invocation's deadline, under {MIN_TIME_FOR_A_CALL_MS} ms",
                        action.api_call()
                    ),
                ));
            }
        }
        let cooldown_seconds = guard::cooldown_seconds(action, policy);
        let until = now + cooldown_seconds;
        let holder = guard::lock_holder(action, event_key);
        let mut writes = Vec::new();
        let mut taken = Taken::default();
        if cooldown_seconds > 0 && !resuming {
            writes.push(Take::Cooldown { key: &keys.cooldown, until, started_by: event_key, intent: Some(action) });
            taken.cooldown = Some(keys.cooldown.clone());
        }
        if let Some(lock) = &keys.lock {
            match read.cooldowns.get(lock) {
                // The same kind of action from another event is no conflict: its cooldown decides.
                Some(held)
                    if held.started_by == holder || guard::lock_holder_kind(&held.started_by) == action.name() => {}
                Some(held) => return Err(conflicting_lock(held, action)),
                None => {
                    let until = now + guard::EXCLUSIVE_LOCK_SECONDS;
                    writes.push(Take::Cooldown { key: lock, until, started_by: &holder, intent: None });
                    taken.lock = Some(lock.clone());
                }
            }
        }
        let expires = guard::breaker_expiry(policy, now);
        for &(breaker, window, room) in &counting {
            if room == 0 {
                return self.breaker_refused(action, &planned.reason, may_hold, event_key, now, breaker).await;
            }
            writes.push(Take::Slot { key: window, member: &member, max: room, expires_at: expires });
            taken.slots.push(window.to_owned());
        }
        let mut entry = None;
        let mut prune = Vec::new();
        if let Some(key) = &keys.in_flight {
            let in_flight = read.in_flight.get(key);
            let unseen =
                in_flight.map(|f| guard::unseen_replacements(f, event_key, at.observed_at_ms)).unwrap_or_default();
            if !unseen.is_empty() {
                return Err(unseen_replacements(action, &unseen));
            }
            let now_ms = wall_clock_ms();
            let mine = InFlightEntry {
                event: event_key.to_owned(),
                instance_id: action.resource().to_owned(),
                taken_at_ms: now_ms,
                applied_at_ms: None,
            };
            prune = in_flight.map(|f| guard::stale_replacements(f, &mine, now_ms)).unwrap_or_default();
            entry = Some(mine);
        }
        if let (Some(key), Some(entry)) = (&keys.in_flight, &entry) {
            let read = read.in_flight.get(key).map(|f| f.version);
            writes.push(Take::InFlight { key, entry, read, prune: &prune });
            taken.in_flight = Some((key.clone(), entry.name()));
        }
        if !writes.is_empty() {
            if let Err(refusal) = self.ledger.take(&writes, now).await? {
                return match writes[refusal.index] {
                    Take::Cooldown { key, .. } if key == keys.cooldown => {
                        Ok(ActionResult::Cooldown { until: refusal.running.map_or(until, |running| running.until) })
                    }
                    Take::Cooldown { key, .. } => Err(match &refusal.running {
                        Some(held) => conflicting_lock(held, action),
                        None => PortError::retryable("exclusive lock", format!("{key} changed hands meanwhile")),
                    }),
                    Take::Slot { key, .. } => {
                        let breaker = counting.iter().find(|(_, window, _)| *window == key).map_or(Breaker::Scope, |c| c.0);
                        self.breaker_refused(action, &planned.reason, may_hold, event_key, now, breaker).await
                    }
                    Take::InFlight { key, .. } => Err(PortError::retryable(
                        "replacements in flight",
                        format!(
                            "{key} changed while {} was decided: another replacement in the group; decided again on fresh state",
                            action.resource()
                        ),
                    )),
                };
            }
        }
        let applied = match self.remediator.apply(action).await {
            Err(unanswered) if unanswered.code.is_none() && unanswered.retryable => {
                self.settle(action, unanswered).await
            }
            answered => answered,
        };
        match applied {
            Ok(()) => {
                self.record_applied(action, &keys, cooldown_seconds > 0, taken.in_flight.as_ref()).await;
                Ok(ActionResult::Done)
            }
            Err(error) => {
                // AWS answered with an error code (throttled, refused, invalid state), or the
                // call never went out: it did not act, so what was taken goes back. A timeout or
                // a lost answer keeps it: the call may have happened, and the retry finds the
                // intent and confirms it (rule 7).
                if error.code.is_some() || !error.retryable {
                    self.give_back(&taken, &member).await;
                }
                if error.retryable {
                    Err(error)
                } else {
                    Ok(ActionResult::Failed(error))
                }
            }
        }
    }

    /// What the ledger keeps of an action that succeeded: its cooldown done, its replacement
    /// applied, the mark it used up cleared. Written side by side; a write that fails leaves
    /// what a retry or the item's expiry makes good.
    async fn record_applied(
        &self,
        action: &medic_core::Action,
        keys: &GuardKeys,
        has_cooldown: bool,
        in_flight: Option<&(String, String)>,
    ) {
        let done = async {
            if has_cooldown {
                if let Err(error) = self.ledger.mark_done(&keys.cooldown).await {
                    // A retry that finds the intent alone makes an idempotent call again, and
                    // confirms any other with AWS.
                    tracing::error!(key = %keys.cooldown, error = %error, "could not mark a successful action done");
                }
            }
        };
        let applied = async {
            if let Some((key, entry)) = in_flight {
                if let Err(error) = self.ledger.mark_applied(key, entry, wall_clock_ms()).await {
                    tracing::error!(key = %key, error = %error, "could not mark a replacement applied; other replacements in its group wait until it expires");
                }
            }
        };
        let used_up = async {
            if let Some(mark) = guard::consumed_mark(action) {
                if let Err(error) = self.ledger.forget(&mark).await {
                    tracing::error!(key = %mark, error = %error, "could not clear a mark its action used up");
                }
            }
        };
        tokio::join!(done, applied, used_up);
    }

    /// `breaker` refused `action`: the first refusal of its scope this window gets the critical
    /// notice; a later one, where the plan may hold it, waits to be named in the digest.
    async fn breaker_refused(
        &self,
        action: &medic_core::Action,
        why: &str,
        may_hold: bool,
        event_key: &str,
        now: EpochSeconds,
        breaker: Breaker,
    ) -> Result<ActionResult, PortError> {
        let scope = breaker.scope(action);
        let notify = self.first_refusal(&scope, now).await?;
        if !notify && may_hold {
            let held_member = guard::held_member(action, why);
            return Ok(ActionResult::HeldBack(self.hold_back(&scope, &held_member, event_key, now).await?, breaker));
        }
        Ok(ActionResult::BreakerOpen { breaker, notify })
    }

    /// A mutating call that failed without an answer (the connection dropped, or timed out,
    /// after the request may have gone out; the SDK does not send it again, `retry`): AWS may have
    /// applied it, or may still be applying it. After a pause for a request still under way to
    /// land, AWS is read: done is done; not done is made once more; when AWS cannot tell, or too
    /// little time is left, the error stands and the retry finds the intent (rule 7). Settled
    /// here rather than by the retry, which decides afresh on what the first call changed (a
    /// scale-out seen done would plan the next one).
    async fn settle(&self, action: &medic_core::Action, unanswered: PortError) -> Result<(), PortError> {
        if ms_left(self.deadline_ms).is_some_and(|left| left < MIN_TIME_FOR_A_CALL_MS + SETTLE_PAUSE_MS) {
            return Err(unanswered);
        }
        tokio::time::sleep(std::time::Duration::from_millis(SETTLE_PAUSE_MS as u64)).await;
        match self.remediator.confirm(action).await {
            Ok(Some(true)) => Ok(()),
            Ok(Some(false)) => self.remediator.apply(action).await,
            Ok(None) | Err(_) => Err(unanswered),
        }
    }

    /// Records a remediation that changed AWS for the reconciler to check until it heals. A retry
    /// that finds the action done earlier writes it again (the reconciler keeps the first), so a
    /// lost write is made good by the retry, if there is one.
    async fn watch(&self, action: &medic_core::Action, event_key: &str, now: EpochSeconds) {
        let watch = Watch {
            function: self.function.to_owned(),
            event: event_key.to_owned(),
            action: action.clone(),
            started_at: now,
        };
        if let Err(error) = self.ledger.add_to_set(WATCHES_KEY, &watch.member(), now + WATCHES_SECONDS).await {
            tracing::error!(key = WATCHES_KEY, error = %error, "could not record a remediation for the reconciler to check");
        }
    }

    /// Gives back what an invocation took for an action it did not carry out.
    async fn give_back(&self, taken: &Taken, member: &str) {
        for key in [&taken.cooldown, &taken.lock].into_iter().flatten() {
            if let Err(error) = self.ledger.forget(key).await {
                tracing::error!(key = %key, error = %error, "could not give back a cooldown or lock; it expires by itself");
            }
        }
        for slot in &taken.slots {
            if let Err(error) = self.ledger.remove_from_set(slot, member).await {
                tracing::error!(key = %slot, error = %error, "could not give back a breaker slot; it expires with its window");
            }
        }
        if let Some((key, entry)) = &taken.in_flight {
            if let Err(error) = self.ledger.drop_in_flight(key, entry).await {
                tracing::error!(key = %key, error = %error, "could not drop a replacement that did not happen; it expires by itself");
            }
        }
    }

    /// True for the first action a safety rule holds back in `scope` this window: it gets the
    /// critical notice, and the digest of the others follows `digest_delay_seconds` later.
    async fn first_refusal(&self, scope: &str, now: EpochSeconds) -> Result<bool, PortError> {
        let window = self.policy.breaker_window_seconds;
        let expires = guard::breaker_expiry(self.policy, now);
        // One conditional write claims the critical notice and records when it went out.
        self.ledger
            .start_cooldown(&guard::breaker_notice_key(scope, now, window), expires, now, &now.to_string(), None)
            .await
    }

    /// Records one more action held back in `scope` after its critical notice, and says whether
    /// this invocation sends the digest, is named in it, or came after it. Until the digest is
    /// due the event is retried (Retryable), so that one digest names the whole burst.
    async fn hold_back(
        &self,
        scope: &str,
        member: &str,
        event_key: &str,
        now: EpochSeconds,
    ) -> Result<HoldBack, PortError> {
        let window = self.policy.breaker_window_seconds;
        let expires = guard::breaker_expiry(self.policy, now);
        let held = self.ledger.add_to_set(&guard::held_key("held", scope, now, window), member, expires).await?;
        let notice = self.ledger.cooldown_until(&guard::breaker_notice_key(scope, now, window), now).await?;
        let since = notice.and_then(|n| n.started_by.parse::<EpochSeconds>().ok()).unwrap_or(now);
        let due = since + self.policy.digest_delay_seconds;
        if now < due {
            return Err(PortError::retryable(
                "hold back",
                format!(
                    "{member} is held back in {scope}; it is named in the digest due at {}",
                    medic_core::time::format_timestamp(due)
                ),
            ));
        }
        // The digest's claim and what it names are one conditional write; a retry of the event
        // that sent it sends it again (its notice may not have gone out).
        let digest_key = guard::held_key("digest", scope, now, window);
        let claim = serde_json::json!({ "sender": event_key, "held": held }).to_string();
        if self.ledger.start_cooldown(&digest_key, expires, now, &claim, None).await? {
            return Ok(HoldBack::Digest(held));
        }
        let sent = self.ledger.cooldown_until(&digest_key, now).await?;
        let sent: Option<serde_json::Value> = sent.and_then(|claim| serde_json::from_str(&claim.started_by).ok());
        let Some(sent) = sent else {
            return Err(PortError::retryable("hold back", format!("the digest of {scope} could not be read")));
        };
        let named: Vec<String> = serde_json::from_value(sent["held"].clone()).unwrap_or_default();
        if sent["sender"].as_str() == Some(event_key) {
            return Ok(HoldBack::Digest(named));
        }
        Ok(if named.iter().any(|m| m == member) { HoldBack::Named } else { HoldBack::Straggler })
    }

    fn report_action(
        &self,
        trigger: &Trigger,
        plan: &Plan,
        planned: &PlannedAction,
        result: ActionResult,
    ) -> (Outcome, Option<Notice>) {
        let action = &planned.action;
        let name = Some(action.name());
        match result {
            ActionResult::Done | ActionResult::DoneEarlier | ActionResult::WouldDo => {
                let done = !matches!(result, ActionResult::WouldDo);
                let status = if done { Status::Acted } else { Status::WouldAct };
                let earlier = if matches!(result, ActionResult::DoneEarlier) {
                    ", by an earlier attempt of this event, which recorded its success and stopped before the rest of the plan"
                } else {
                    ""
                };
                let reason = format!("{} ({}{earlier})", action.describe(done), planned.reason);
                let mut outcome = self.outcome(trigger, plan, status, name, None, reason);
                let notice =
                    self.notice(&NoticeKind::Action { action, reason: &planned.reason, done }, trigger, &mut outcome);
                (outcome, Some(notice))
            }
            ActionResult::NotAttempted => {
                let reason = format!("{}: not attempted, the step before it did not happen", action.describe(false));
                (self.outcome(trigger, plan, Status::Skipped, name, Some("previous-step-missing"), reason), None)
            }
            ActionResult::Cooldown { until } => {
                let reason = SkipReason::Cooldown { until };
                (self.outcome(trigger, plan, Status::Skipped, name, Some(reason.label()), reason.to_string()), None)
            }
            ActionResult::BreakerOpen { breaker, notify } => {
                let (mut outcome, kind) = self.breaker_open(trigger, plan, action, breaker);
                let notice = notify.then(|| self.notice(&kind, trigger, &mut outcome));
                (outcome, notice)
            }
            ActionResult::Unconfirmed => {
                let reason = format!(
                    "could not confirm {}: an earlier attempt of this event was interrupted after recording its intent, and AWS cannot tell whether the call happened; not repeated",
                    action.describe(false).trim_start_matches("would ")
                );
                let mut outcome = self.outcome(trigger, plan, Status::Failed, name, Some("unconfirmed"), reason);
                let notice = self.notice(&NoticeKind::Unconfirmed { action }, trigger, &mut outcome);
                (outcome, Some(notice))
            }
            ActionResult::HeldBack(held, breaker) => {
                let (mut outcome, kind) = self.breaker_open(trigger, plan, action, breaker);
                let (scope, label) = (breaker.scope(action), breaker.scope_label(action));
                let notice = self.held_notice(&held, &scope, &label, &kind, trigger, &mut outcome);
                (outcome, notice)
            }
            ActionResult::Failed(error) => {
                let message = error.to_string();
                let mut outcome = self.outcome(trigger, plan, Status::Failed, name, None, message.clone());
                let notice = self.notice(&NoticeKind::Failed { action, error: &message }, trigger, &mut outcome);
                (outcome, Some(notice))
            }
        }
    }

    /// The outcome of an action `breaker` refused, and the notice that names it.
    fn breaker_open<'a>(
        &self,
        trigger: &Trigger,
        plan: &Plan,
        action: &'a medic_core::Action,
        breaker: Breaker,
    ) -> (Outcome, NoticeKind<'a>) {
        let (max, window_seconds) = (breaker.max(self.policy), self.policy.breaker_window_seconds);
        let reason = format!(
            "left {} alone: circuit breaker open for {}: limit of {max} actions per {} minutes reached",
            action.resource(),
            breaker.counted_in(action),
            window_seconds / 60
        );
        let mut outcome =
            self.outcome(trigger, plan, Status::Blocked, Some(action.name()), Some("breaker-open"), reason);
        outcome.severity = Some(medic_core::Severity::Critical);
        (outcome, NoticeKind::BreakerOpen { action, breaker, max, window_seconds })
    }

    /// The notice of an action held back after its scope's critical notice: the digest when this
    /// invocation sends it, none when the digest names it, `own` when it came after the digest.
    fn held_notice(
        &self,
        held: &HoldBack,
        scope: &str,
        scope_label: &str,
        own: &NoticeKind<'_>,
        trigger: &Trigger,
        outcome: &mut Outcome,
    ) -> Option<Notice> {
        match held {
            HoldBack::Digest(named) => {
                Some(self.notice(&NoticeKind::Digest { scope, scope_label, held: named }, trigger, outcome))
            }
            HoldBack::Named => {
                outcome.reason.push_str(&format!("; named in the digest of {scope}"));
                None
            }
            HoldBack::Straggler => Some(self.notice(own, trigger, outcome)),
        }
    }

    fn notice(&self, kind: &NoticeKind<'_>, trigger: &Trigger, outcome: &mut Outcome) -> Notice {
        let built = notice::build(kind, &trigger.summary(), &notice::record(&*outcome), self.policy)
            .from_account(trigger.origin().as_ref());
        outcome.severity = Some(built.severity);
        outcome.notice = Some(built.subject.clone());
        built
    }

    fn outcome(
        &self,
        trigger: &Trigger,
        plan: &Plan,
        status: Status,
        action: Option<&str>,
        label: Option<&str>,
        reason: String,
    ) -> Outcome {
        let (account, region) = located(trigger);
        Outcome {
            event: trigger.idempotency_key(),
            resource: plan.resource.clone(),
            status,
            action: action.map(str::to_owned),
            label: label.map(str::to_owned),
            reason,
            account,
            region,
            severity: None,
            dry_run: self.policy.dry_run,
            notice: None,
        }
    }
}

/// One outcome and at most one notice per plan. The report with the most severe notice leads
/// (so a breaker-open or failure notice is never dropped), then the most significant status; the
/// others are summed up in its reason and appended to its notice.
fn combine(mut reports: Vec<(Outcome, Option<Notice>)>) -> Option<(Outcome, Option<Notice>)> {
    fn significance(status: Status) -> u8 {
        match status {
            Status::Failed => 6,
            Status::Blocked => 5,
            Status::Acted => 4,
            Status::WouldAct => 3,
            Status::Alerted => 2,
            Status::Duplicate => 1,
            Status::Skipped => 0,
        }
    }
    let lead = reports
        .iter()
        .enumerate()
        .max_by_key(|(index, (outcome, notice))| {
            (notice.as_ref().map(|n| n.severity), significance(outcome.status), std::cmp::Reverse(*index))
        })
        .map(|(index, _)| index)?;
    let (mut outcome, mut notice) = reports.remove(lead);
    if reports.is_empty() {
        return Some((outcome, notice));
    }
    let mut others: Vec<String> = reports
        .iter()
        .take(notice::MAX_DIGEST_LINES)
        .map(|(o, _)| format!("{}: {}", o.status.as_str(), o.reason))
        .collect();
    if reports.len() > notice::MAX_DIGEST_LINES {
        others.push(format!("and {} more", reports.len() - notice::MAX_DIGEST_LINES));
    }
    let others_count = reports.len();
    outcome.reason = notice::fit(
        &format!("{} (+{others_count} more: {})", outcome.reason, others.join("; ")),
        notice::MAX_BODY_BYTES / 2,
    );
    if notice.is_none() {
        notice = reports.into_iter().find_map(|(_, n)| n);
    }
    if let Some(notice) = notice.as_mut() {
        notice.subject = notice::truncate_subject(&format!("{} (+{others_count} more)", notice.subject));
        let also = format!("Also in this plan:\n- {}\n", others.join("\n- "));
        let body = match notice.body.split_once("\nRecord:\n") {
            Some((text, record)) => format!("{text}{also}\nRecord:\n{record}"),
            None => format!("{}\n{also}", notice.body),
        };
        notice.body = notice::fit(&body, notice::MAX_BODY_BYTES);
        outcome.notice = Some(notice.subject.clone());
        outcome.severity = Some(outcome.severity.map_or(notice.severity, |s| s.max(notice.severity)));
    }
    Some((outcome, notice))
}

/// Milliseconds left before `deadline_ms`, by the wall clock.
fn ms_left(deadline_ms: Option<i64>) -> Option<i64> {
    deadline_ms.map(|deadline| deadline - wall_clock_ms())
}

pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// The account and region an outcome names: the event's, read once.
fn located(trigger: &Trigger) -> (Option<String>, Option<String>) {
    trigger.origin().map(|at| (Some(at.account), Some(at.region))).unwrap_or_default()
}

fn skipped(trigger: &Trigger, plan: &Plan, reason: &SkipReason, policy: &Policy) -> Outcome {
    let (account, region) = located(trigger);
    Outcome {
        event: trigger.idempotency_key(),
        resource: plan.resource.clone(),
        status: Status::Skipped,
        action: None,
        label: Some(reason.label().into()),
        reason: reason.to_string(),
        account,
        region,
        severity: None,
        dry_run: policy.dry_run,
        notice: None,
    }
}

/// One structured log line per decision.
fn log_decision(trigger: &Trigger, outcome: &Outcome) {
    tracing::info!(
        event = %outcome.event,
        trigger = %trigger.summary(),
        resource = %outcome.resource,
        status = outcome.status.as_str(),
        action = outcome.action.as_deref().unwrap_or(""),
        label = outcome.label.as_deref().unwrap_or(""),
        severity = outcome.severity.map_or("", |s| s.as_str()),
        dry_run = outcome.dry_run,
        notice = outcome.notice.as_deref().unwrap_or(""),
        reason = %outcome.reason,
        "decision"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{lock, FakeInstances, MemoryLedger, MemoryNotifier};
    use medic_core::instance_healer::InstanceStateChanged;
    use medic_core::states::Ec2State;
    use medic_core::Action;

    const NOW: EpochSeconds = 1_795_260_000;

    fn trigger(event_id: &str) -> Trigger {
        Trigger::InstanceStateChanged(InstanceStateChanged {
            event_id: event_id.into(),
            instance_id: "i-1".into(),
            state: Ec2State::Stopped,
            occurred_at: NOW,
            account: "123456789012".into(),
            region: "us-east-1".into(),
        })
    }

    fn plan(actions: Vec<Action>) -> Plan {
        Plan {
            resource: "targetgroup/web-prod/0123".into(),
            decision: Decision::Act {
                actions: actions
                    .into_iter()
                    .map(|action| PlannedAction { action, reason: "unhealthy target".into() })
                    .collect(),
            },
        }
    }

    fn replace(id: &str) -> Action {
        Action::ReplaceInstance { group: "web-prod".into(), instance_id: id.into() }
    }

    struct Bench {
        ledger: MemoryLedger,
        notifier: MemoryNotifier,
        instances: FakeInstances,
        policy: Policy,
    }

    impl Bench {
        fn new(policy: Policy) -> Self {
            Self {
                ledger: MemoryLedger::default(),
                notifier: MemoryNotifier::default(),
                instances: FakeInstances::default(),
                policy,
            }
        }

        async fn run(&self, event_id: &str, plan: Plan) -> Outcome {
            self.run_at(event_id, plan, NOW).await
        }

        async fn run_at(&self, event_id: &str, plan: Plan, now: EpochSeconds) -> Outcome {
            self.engine(None).run(&trigger(event_id), now, || async { Ok(plan.clone()) }).await.unwrap()
        }

        fn engine(&self, deadline_ms: Option<i64>) -> Engine<'_, MemoryLedger, MemoryNotifier, FakeInstances> {
            Engine {
                function: "test",
                ledger: &self.ledger,
                notifier: &self.notifier,
                remediator: &self.instances,
                policy: &self.policy,
                deadline_ms,
            }
        }

        fn applied(&self) -> Vec<String> {
            self.instances.calls.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn given_plan_with_two_replacements_when_run_then_both_applied_and_one_notice() {
        let bench = Bench::new(Policy::default());
        let outcome = bench.run("e1", plan(vec![replace("i-1"), replace("i-3")])).await;
        assert_eq!(bench.applied(), ["replace i-1", "replace i-3"]);
        assert_eq!(outcome.status, Status::Acted);
        assert!(outcome.reason.contains("(+1 more: acted: replaced i-3 (unhealthy target))"), "{}", outcome.reason);
        assert_eq!(bench.notifier.subjects(), ["[WARNING] asg web-prod: replaced i-1 (unhealthy target) (+1 more)"]);
        let body = &bench.notifier.sent.lock().unwrap()[0].body;
        assert!(body.contains("Also in this plan:\n- acted: replaced i-3"), "{body}");
        assert!(
            body.find("Also in this plan").unwrap() < body.find("Record:").unwrap(),
            "the JSON record comes last: {body}"
        );
    }

    const IN_FLIGHT: &str = "inflight#web-prod#out-of-service";

    /// Another event's replacement of `id` in web-prod, taken `ago_ms` before now and applied
    /// at `applied_at_ms` (if at all).
    async fn other_replacement(ledger: &MemoryLedger, id: &str, ago_ms: i64, applied_at_ms: Option<i64>) {
        let entry = InFlightEntry {
            event: "event#eventbridge:other".into(),
            instance_id: id.into(),
            taken_at_ms: wall_clock_ms() - ago_ms,
            applied_at_ms: None,
        };
        let read = ledger.in_flight(IN_FLIGHT).map(|f| f.version);
        let take = Take::InFlight { key: IN_FLIGHT, entry: &entry, read, prune: &[] };
        ledger.take(&[take], NOW).await.unwrap().unwrap();
        if let Some(at) = applied_at_ms {
            ledger.mark_applied(IN_FLIGHT, &entry.name(), at).await.unwrap();
        }
    }

    #[tokio::test]
    async fn given_another_events_replacement_in_the_group_not_yet_applied_when_a_replacement_is_decided_then_retryable_and_nothing_applied(
    ) {
        let bench = Bench::new(Policy::default());
        other_replacement(&bench.ledger, "i-2", 500, None).await;

        let result = bench.engine(None).run(&trigger("e1"), NOW, || async { Ok(plan(vec![replace("i-1")])) }).await;

        let error = result.unwrap_err();
        assert!(error.is_retryable(), "decided again once the other shows in AWS: {error}");
        assert!(error.to_string().contains("i-2"), "{error}");
        assert!(bench.applied().is_empty());
        assert!(bench.notifier.subjects().is_empty());
        assert!(bench.ledger.keys().iter().all(|k| !k.starts_with("cooldown#")), "{:?}", bench.ledger.keys());
    }

    #[tokio::test]
    async fn given_another_events_replacement_applied_after_the_observation_began_when_decided_then_retryable() {
        let bench = Bench::new(Policy::default());
        other_replacement(&bench.ledger, "i-2", 500, Some(wall_clock_ms() + 5_000)).await;

        let result = bench.engine(None).run(&trigger("e1"), NOW, || async { Ok(plan(vec![replace("i-1")])) }).await;

        assert!(result.is_err_and(|e| e.is_retryable()));
        assert!(bench.applied().is_empty());
    }

    #[tokio::test]
    async fn given_another_events_replacement_applied_before_the_observation_when_decided_then_it_stands_and_is_recorded_applied(
    ) {
        let bench = Bench::new(Policy::default());
        other_replacement(&bench.ledger, "i-2", 30_000, Some(wall_clock_ms() - 20_000)).await;
        other_replacement(&bench.ledger, "i-9", 70_000, None).await;

        let outcome = bench.run("e1", plan(vec![replace("i-1")])).await;

        assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
        assert_eq!(bench.applied(), ["replace i-1"]);
        let in_flight = bench.ledger.in_flight(IN_FLIGHT).unwrap();
        let names: Vec<(String, bool)> =
            in_flight.entries.iter().map(|e| (e.instance_id.clone(), e.applied_at_ms.is_some())).collect();
        assert_eq!(names, [("i-2".to_owned(), true), ("i-1".to_owned(), true)], "i-9, past counting, is pruned");
    }

    #[tokio::test]
    async fn given_the_groups_in_flight_item_changed_after_it_was_read_when_taken_then_retryable_and_nothing_taken() {
        let bench = Bench::new(Policy::default());
        *lock(&bench.ledger.race_before_take) = Some(IN_FLIGHT.to_owned());

        let result = bench.engine(None).run(&trigger("e1"), NOW, || async { Ok(plan(vec![replace("i-1")])) }).await;

        assert!(result.is_err_and(|e| e.is_retryable()));
        assert!(bench.applied().is_empty());
        assert!(bench.ledger.keys().iter().all(|k| !k.starts_with("cooldown#") && !k.starts_with("breaker#")));
    }

    #[tokio::test]
    async fn given_a_transaction_conflict_when_the_guard_takes_then_retryable_claim_released_and_nothing_applied() {
        let bench = Bench::new(Policy::default());
        *lock(&bench.ledger.take_error) = Some(PortError {
            code: Some("TransactionCanceledException".into()),
            ..PortError::retryable("dynamodb:TransactWriteItems", "TransactionConflict")
        });

        let result = bench.engine(None).run(&trigger("e1"), NOW, || async { Ok(plan(vec![replace("i-1")])) }).await;

        assert!(result.is_err_and(|e| e.is_retryable()));
        assert!(bench.applied().is_empty());
        assert!(!bench.ledger.keys().contains(&"event#eventbridge:e1".to_owned()), "claim given back");
        assert_eq!(bench.run("e1", plan(vec![replace("i-1")])).await.status, Status::Acted, "the retry acts");
    }

    #[tokio::test]
    async fn given_breaker_of_one_when_plan_has_two_actions_then_breaker_notice_leads() {
        let bench = Bench::new(Policy { breaker_max_actions: 1, ..Policy::default() });
        let outcome = bench.run("e1", plan(vec![replace("i-1"), replace("i-3")])).await;
        assert_eq!(bench.applied(), ["replace i-1"]);
        assert_eq!(outcome.status, Status::Blocked);
        assert_eq!(
            bench.notifier.subjects(),
            ["[CRITICAL] asg web-prod: breaker open (limit 1 per 15 min), left i-3 alone (+1 more)"]
        );
    }

    fn replace_in(group: &str, id: &str) -> Action {
        Action::ReplaceInstance { group: group.into(), instance_id: id.into() }
    }

    #[tokio::test]
    async fn given_an_account_cap_of_two_when_three_groups_each_replace_one_then_the_third_is_refused_account_wide() {
        let bench = Bench::new(Policy { account_breaker_max_actions: Some(2), ..Policy::default() });

        let outcomes = [
            bench.run("e1", plan(vec![replace_in("web-a", "i-1")])).await,
            bench.run("e2", plan(vec![replace_in("web-b", "i-2")])).await,
            bench.run("e3", plan(vec![replace_in("web-c", "i-3")])).await,
        ];

        let statuses: Vec<Status> = outcomes.iter().map(|o| o.status).collect();
        assert_eq!(statuses, [Status::Acted, Status::Acted, Status::Blocked], "each group's own breaker holds 3");
        assert_eq!(bench.applied(), ["replace i-1", "replace i-2"]);
        assert!(outcomes[2].reason.contains("whole account"), "{}", outcomes[2].reason);
        let subjects = bench.notifier.subjects();
        assert_eq!(
            subjects.last().map(String::as_str),
            Some("[CRITICAL] asg web-c: account breaker open (limit 2 per 15 min), left i-3 alone"),
            "{subjects:?}"
        );
    }

    #[tokio::test]
    async fn given_the_account_cap_reached_in_dry_run_when_another_group_would_act_then_reported_refused() {
        let bench = Bench::new(Policy { account_breaker_max_actions: Some(1), ..Policy::default() });
        assert_eq!(bench.run("e1", plan(vec![replace_in("web-a", "i-1")])).await.status, Status::Acted);
        let dry = Bench {
            ledger: bench.ledger,
            policy: Policy { dry_run: true, ..bench.policy.clone() },
            ..Bench::new(Policy::default())
        };

        let outcome = dry.run("e2", plan(vec![replace_in("web-b", "i-2")])).await;

        assert_eq!(outcome.status, Status::Blocked, "{outcome:?}");
    }

    #[tokio::test]
    async fn given_breaker_open_when_an_action_is_refused_then_it_leaves_no_cooldown_behind() {
        let bench = Bench::new(Policy { breaker_max_actions: 1, ..Policy::default() });
        assert_eq!(bench.run("e1", plan(vec![replace("i-1")])).await.status, Status::Acted);
        assert_eq!(bench.run("e2", plan(vec![replace("i-2")])).await.status, Status::Blocked);
        let keys = bench.ledger.keys();
        assert!(keys.contains(&"cooldown#i-1#replace".to_owned()), "{keys:?}");
        assert!(
            !keys.contains(&"cooldown#i-2#replace".to_owned()),
            "i-2 may be replaced once the breaker closes: {keys:?}"
        );
    }

    #[tokio::test]
    async fn given_recent_scale_out_when_scale_in_planned_then_held_back_by_cooldown() {
        let bench = Bench::new(Policy::default());
        let out = Action::ScaleGroup { group: "web-prod".into(), from: 2, to: 3 };
        let scale_in = Action::ScaleGroup { group: "web-prod".into(), from: 3, to: 2 };
        assert_eq!(bench.run("e1", plan(vec![out])).await.status, Status::Acted);

        let held = bench.run("e2", plan(vec![scale_in])).await;

        assert_eq!((held.status, held.label.as_deref()), (Status::Skipped, Some("cooldown")), "{held:?}");
        assert_eq!(bench.applied(), ["scale-out web-prod"]);
    }

    #[tokio::test]
    async fn given_breaker_full_at_window_end_when_next_window_starts_then_still_blocked() {
        let bench = Bench::new(Policy { breaker_max_actions: 2, ..Policy::default() });
        let boundary = NOW - NOW.rem_euclid(900) + 900;
        let statuses = [
            bench.run_at("e1", plan(vec![replace("i-1")]), boundary - 5).await.status,
            bench.run_at("e2", plan(vec![replace("i-2")]), boundary - 4).await.status,
            bench.run_at("e3", plan(vec![replace("i-3")]), boundary + 5).await.status,
            bench.run_at("e4", plan(vec![replace("i-4")]), boundary + 900 + 5).await.status,
        ];
        assert_eq!(statuses, [Status::Acted, Status::Acted, Status::Blocked, Status::Acted]);
        assert_eq!(bench.applied(), ["replace i-1", "replace i-2", "replace i-4"]);
    }

    #[tokio::test]
    async fn rule5_given_two_throttled_attempts_when_the_breaker_holds_two_then_no_slot_is_used() {
        let throttled = PortError {
            code: Some("Throttling".into()),
            ..PortError::retryable("autoscaling:SetInstanceHealth", "Throttling (HTTP 400): Rate exceeded")
        };
        let mut bench = Bench::new(Policy { breaker_max_actions: 2, ..Policy::default() });
        bench.instances.apply_error = Some(throttled);
        for attempt in ["e1", "e1"] {
            let engine = bench.engine(None);
            let result = engine.run(&trigger(attempt), NOW, || async { Ok(plan(vec![replace("i-1")])) }).await;
            assert!(result.is_err_and(|e| e.is_retryable()), "throttled attempts are retried");
        }
        bench.instances.apply_error = None;

        let statuses = [
            bench.run("e1", plan(vec![replace("i-1")])).await.status,
            bench.run("e2", plan(vec![replace("i-2")])).await.status,
        ];

        assert_eq!(
            statuses,
            [Status::Acted, Status::Acted],
            "nothing changed AWS until now: {:?}",
            bench.notifier.subjects()
        );
    }

    #[tokio::test]
    async fn rule5_given_a_throttled_attempt_when_the_account_holds_one_then_its_account_slot_is_given_back() {
        let mut bench = Bench::new(Policy { account_breaker_max_actions: Some(1), ..Policy::default() });
        bench.instances.apply_error = Some(PortError {
            code: Some("Throttling".into()),
            ..PortError::retryable("autoscaling:SetInstanceHealth", "Throttling (HTTP 400): Rate exceeded")
        });
        let engine = bench.engine(None);
        let throttled = engine.run(&trigger("e1"), NOW, || async { Ok(plan(vec![replace_in("web-a", "i-1")])) }).await;
        assert!(throttled.is_err_and(|e| e.is_retryable()));
        bench.instances.apply_error = None;

        let outcome = bench.run("e2", plan(vec![replace_in("web-b", "i-2")])).await;

        assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    }

    #[tokio::test]
    async fn rule5_given_an_attempt_that_acted_and_died_when_the_event_is_retried_then_it_takes_no_second_slot() {
        let bench = Bench::new(Policy { breaker_max_actions: 2, cooldown_seconds: 0, ..Policy::default() });
        assert_eq!(bench.run("e1", plan(vec![replace("i-1")])).await.status, Status::Acted);
        // The invocation died after acting, before its outcome was recorded: the claim expires
        // and Lambda delivers the event again.
        bench.ledger.release(&guard::event_key(&trigger("e1").idempotency_key())).await.unwrap();
        assert_eq!(bench.run("e1", plan(vec![replace("i-1")])).await.status, Status::Acted);

        let other = bench.run("e2", plan(vec![replace("i-2")])).await;

        assert_eq!(other.status, Status::Acted, "one event is one slot: {other:?}");
    }

    #[tokio::test]
    async fn rule11_given_the_pause_switch_on_when_an_action_is_planned_then_nothing_changes_and_the_notice_names_the_pause(
    ) {
        let bench = Bench::new(Policy::default());
        bench.ledger.pause("AZ use1-az2 incident, paused by alice");

        let outcome = bench.run("e1", plan(vec![replace("i-1")])).await;

        assert_eq!((outcome.status, outcome.dry_run), (Status::WouldAct, true), "{outcome:?}");
        assert!(bench.applied().is_empty(), "{:?}", bench.applied());
        let sent = bench.notifier.sent.lock().unwrap().clone();
        assert_eq!(sent[0].subject, "[INFO] [PAUSED] asg web-prod: would replace i-1 (unhealthy target)");
        assert!(sent[0].body.contains("medic is paused (AZ use1-az2 incident, paused by alice)"), "{}", sent[0].body);
        assert!(bench.ledger.keys().iter().all(|k| !k.starts_with("cooldown#") && !k.starts_with("breaker#")));
    }

    #[tokio::test]
    async fn rule6_given_a_burst_the_breaker_holds_back_when_retried_then_one_digest_names_every_resource_left_alone() {
        let bench = Bench::new(Policy { breaker_max_actions: 1, ..Policy::default() });
        assert_eq!(bench.run("e1", plan(vec![replace("i-1")])).await.status, Status::Acted);
        assert_eq!(bench.run("e2", plan(vec![replace("i-2")])).await.status, Status::Blocked);
        let engine = bench.engine(None);
        for (event, id) in [("e3", "i-3"), ("e4", "i-4")] {
            let held = engine.run(&trigger(event), NOW + 5, || async { Ok(plan(vec![replace(id)])) }).await;
            assert!(held.is_err_and(|e| e.is_retryable()), "{event}: held until the digest");
        }

        // Lambda's retries, a minute later: the first sends the digest, the second is named in it.
        let third = bench.run_at("e3", plan(vec![replace("i-3")]), NOW + 65).await;
        let fourth = bench.run_at("e4", plan(vec![replace("i-4")]), NOW + 66).await;

        assert_eq!((third.status, fourth.status), (Status::Blocked, Status::Blocked));
        assert_eq!(bench.applied(), ["replace i-1"]);
        let sent = bench.notifier.sent.lock().unwrap().clone();
        let subjects: Vec<&str> = sent.iter().map(|n| n.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "[WARNING] asg web-prod: replaced i-1 (unhealthy target)",
                "[CRITICAL] asg web-prod: breaker open (limit 1 per 15 min), left i-2 alone",
                "[CRITICAL] asg web-prod: left 2 more alone since the critical notice",
            ]
        );
        assert!(sent[2].body.contains("- i-3: would replace i-3 (unhealthy target)"), "{}", sent[2].body);
        assert!(sent[2].body.contains("- i-4: would replace i-4 (unhealthy target)"), "{}", sent[2].body);
        assert!(fourth.reason.contains("named in the digest"), "{}", fourth.reason);
    }

    #[tokio::test]
    async fn rule9_given_a_scale_in_just_done_when_a_scale_out_of_the_same_group_races_then_it_waits_and_is_decided_again(
    ) {
        let bench =
            Bench::new(Policy { scale_in_cooldown_seconds: 0, scale_out_cooldown_seconds: 0, ..Policy::default() });
        let scale_in = Action::ScaleGroup { group: "web-prod".into(), from: 3, to: 2 };
        let scale_out = Action::ScaleGroup { group: "web-prod".into(), from: 3, to: 4 };
        assert_eq!(bench.run("e1", plan(vec![scale_in.clone()])).await.status, Status::Acted);
        let engine = bench.engine(None);

        let racing = engine.run(&trigger("e2"), NOW + 5, || async { Ok(plan(vec![scale_out.clone()])) }).await;

        assert!(racing.is_err_and(|e| e.is_retryable()), "the conflicting action waits for a fresh decision");
        assert_eq!(bench.applied(), ["scale-in web-prod"]);
        let same_kind = bench.run_at("e3", plan(vec![scale_in]), NOW + 6).await;
        assert_eq!(same_kind.status, Status::Acted, "the same kind of action is the cooldown's business");
        let later = bench.run_at("e2", plan(vec![scale_out]), NOW + 65).await;
        assert_eq!(later.status, Status::Acted, "{later:?}");
    }

    #[tokio::test]
    async fn rule6_given_a_plan_whose_first_refusal_the_digest_already_names_when_run_then_its_next_refusal_still_gets_a_notice(
    ) {
        let bench = Bench::new(Policy { breaker_max_actions: 1, digest_delay_seconds: 0, ..Policy::default() });
        assert_eq!(bench.run("e1", plan(vec![replace("i-1")])).await.status, Status::Acted);
        assert_eq!(bench.run("e2", plan(vec![replace("i-2")])).await.status, Status::Blocked);
        assert_eq!(bench.run("e3", plan(vec![replace("i-3")])).await.status, Status::Blocked, "sends the digest");
        let before = bench.notifier.subjects().len();

        // A retry of a plan that holds i-3 (named in the digest) and i-4 (not named anywhere yet).
        bench.run("e4", plan(vec![replace("i-3"), replace("i-4")])).await;

        let subjects = bench.notifier.subjects();
        assert_eq!(subjects.len(), before + 1, "{subjects:?}");
        assert!(subjects[before].contains("left i-4 alone"), "{subjects:?}");
    }

    #[tokio::test]
    async fn rule9_given_a_scale_out_the_breaker_refuses_when_recorded_then_it_holds_no_lock_and_no_cooldown() {
        let bench = Bench::new(Policy { breaker_max_actions: 1, ..Policy::default() });
        assert_eq!(bench.run("e0", plan(vec![replace("i-9")])).await.status, Status::Acted);
        let scale_out = Action::ScaleGroup { group: "web-prod".into(), from: 3, to: 4 };

        assert_eq!(bench.run("e1", plan(vec![scale_out])).await.status, Status::Blocked);

        let keys = bench.ledger.keys();
        assert!(!keys.iter().any(|k| k.starts_with("lock#web-prod") || k.contains("#scale-out")), "{keys:?}");
    }

    #[tokio::test]
    async fn rule9_given_a_reboot_just_done_when_a_stop_of_the_same_instance_races_then_only_one_passes_the_guard() {
        let bench = Bench::new(Policy::default());
        let reboot = Action::RebootInstance { instance_id: "i-1".into() };
        let stop = Action::StopForRecovery { instance_id: "i-1".into() };
        assert_eq!(bench.run("instance-check", plan(vec![reboot])).await.status, Status::Acted);
        let engine = bench.engine(None);

        let racing = engine.run(&trigger("system-check"), NOW + 1, || async { Ok(plan(vec![stop.clone()])) }).await;

        assert!(racing.is_err_and(|e| e.is_retryable()));
        assert_eq!(bench.applied(), ["reboot i-1"]);
    }

    #[tokio::test]
    async fn rule7_given_an_attempt_that_died_before_its_idempotent_call_succeeded_when_retried_then_it_is_applied_again(
    ) {
        let bench = Bench::new(Policy::default());
        let event_key = guard::event_key(&trigger("e1").idempotency_key());
        // An attempt recorded its intent and died (timeout, crash) before the call succeeded.
        bench
            .ledger
            .start_cooldown("cooldown#i-1#replace", NOW + 600, NOW - 30, &event_key, Some(&replace("i-1")))
            .await
            .unwrap();

        let outcome = bench.run("e1", plan(vec![replace("i-1")])).await;

        assert_eq!(bench.applied(), ["replace i-1"], "SetInstanceHealth is idempotent: applied again");
        assert_eq!(outcome.status, Status::Acted);
        assert!(!outcome.reason.contains("earlier attempt"), "{}", outcome.reason);
        let cooldown = bench.ledger.cooldown_until("cooldown#i-1#replace", NOW).await.unwrap().unwrap();
        assert!(cooldown.done, "done once the call succeeded");
    }

    #[tokio::test]
    async fn rule7_given_an_attempt_that_died_before_a_reboot_succeeded_when_retried_then_it_is_never_reported_as_acted(
    ) {
        let bench = Bench::new(Policy::default());
        let reboot = Action::RebootInstance { instance_id: "i-1".into() };
        let event_key = guard::event_key(&trigger("e1").idempotency_key());
        bench
            .ledger
            .start_cooldown(&guard::cooldown_key(&reboot), NOW + 600, NOW - 30, &event_key, Some(&reboot))
            .await
            .unwrap();

        let outcome = bench.run("e1", plan(vec![reboot])).await;

        assert!(bench.applied().is_empty(), "a reboot is not repeated blindly: {:?}", bench.applied());
        assert_ne!(outcome.status, Status::Acted, "{outcome:?}");
        assert_eq!(
            bench.notifier.subjects(),
            ["[CRITICAL] ec2 i-1: could not confirm reboot i-1"],
            "a human is told to check"
        );
    }

    #[tokio::test]
    async fn rule12_given_less_than_5_s_left_before_the_deadline_when_an_action_would_start_then_no_call_and_a_retry() {
        let bench = Bench::new(Policy::default());
        let wall_ms = crate::now_epoch_seconds() * 1000;
        let run = |deadline_ms: i64, event: &'static str, id: &'static str| {
            let engine = bench.engine(Some(deadline_ms));
            async move { engine.run(&trigger(event), NOW, || async { Ok(plan(vec![replace(id)])) }).await }
        };

        let late = run(wall_ms + 3_000, "e1", "i-1").await;
        assert!(late.is_err_and(|e| e.is_retryable()), "too little time left: retried");
        assert!(bench.applied().is_empty());

        let in_time = run(wall_ms + 60_000, "e1", "i-1").await.unwrap();
        assert_eq!(in_time.status, Status::Acted, "the retry, with time to spare, acts");
        assert_eq!(bench.applied(), ["replace i-1"]);
    }

    #[tokio::test]
    async fn rule12_given_a_plan_of_three_thousand_replacements_when_recorded_then_the_ledger_item_stays_under_400_kb()
    {
        let bench = Bench::new(Policy { breaker_max_actions: 1000, max_unhealthy_percent: 100, ..Policy::default() });
        let actions = (0..3000).map(|n| replace(&format!("i-{n:017x}"))).collect();

        bench.run("e1", plan(actions)).await;

        let (outcome, notice) = bench.ledger.recorded(&guard::event_key(&trigger("e1").idempotency_key())).unwrap();
        let item_bytes = outcome.len() + notice.as_ref().map_or(0, String::len);
        assert!(item_bytes < 400_000, "{item_bytes} bytes");
        let sent = bench.notifier.sent.lock().unwrap();
        assert!(sent[0].body.len() <= medic_core::notice::MAX_BODY_BYTES);
    }

    /// Applies every action, except that actions named `fail` fail with `error`.
    struct FailingStep {
        fail: &'static str,
        error: PortError,
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl Remediator for FailingStep {
        async fn apply(&self, action: &Action) -> Result<(), PortError> {
            self.calls.lock().unwrap().push(action.name().to_owned());
            if action.name() == self.fail {
                return Err(self.error.clone());
            }
            Ok(())
        }
    }

    fn promotion_plan() -> Plan {
        let promote = Action::PromoteReplica {
            primary: "orders-db".into(),
            replica: "orders-db-replica-1".into(),
            backup_retention_days: 7,
        };
        let reroute = Action::PointWriterRecord {
            primary: "orders-db".into(),
            zone_id: "Z0DB".into(),
            record_name: "writer.db.internal.".into(),
            endpoint: "orders-db-replica-1.example".into(),
            ttl: 60,
            health_check_id: None,
        };
        plan(vec![promote, reroute])
    }

    async fn run_with(
        ledger: &MemoryLedger,
        notifier: &MemoryNotifier,
        remediator: &FailingStep,
        event_id: &str,
        plan: Plan,
    ) -> Result<Outcome, HandlerError> {
        let policy = Policy::default();
        let engine = Engine { function: "test", ledger, notifier, remediator, policy: &policy, deadline_ms: None };
        engine.run(&trigger(event_id), NOW, || async { Ok(plan.clone()) }).await
    }

    #[tokio::test]
    async fn rule7_given_a_reboot_whose_call_timed_out_when_the_event_is_retried_then_it_is_not_rebooted_again() {
        let (ledger, notifier) = (MemoryLedger::default(), MemoryNotifier::default());
        let reboot = Action::RebootInstance { instance_id: "i-1".into() };
        // No answer from AWS (a timeout): the reboot may have happened.
        let timeout = PortError::retryable("ec2:RebootInstances", "dispatch failure: timed out");
        let first = FailingStep { fail: "reboot", error: timeout, calls: Default::default() };
        assert!(run_with(&ledger, &notifier, &first, "e1", plan(vec![reboot.clone()])).await.is_err());

        let again = FailingStep { fail: "none", error: PortError::permanent("x", "y"), calls: Default::default() };
        let outcome = run_with(&ledger, &notifier, &again, "e1", plan(vec![reboot])).await.unwrap();

        assert!(again.calls.lock().unwrap().is_empty(), "not rebooted a second time");
        assert_eq!((outcome.status, outcome.label.as_deref()), (Status::Failed, Some("unconfirmed")), "{outcome:?}");
    }

    fn scale_out(from: i32, to: i32) -> Action {
        Action::ScaleGroup { group: "web-prod".into(), from, to }
    }

    #[tokio::test]
    async fn rule7_given_a_scale_out_whose_answer_was_lost_when_the_retry_plans_the_next_one_then_the_recorded_one_is_finished_instead(
    ) {
        let (ledger, notifier) = (MemoryLedger::default(), MemoryNotifier::default());
        // AWS applied 2 -> 3 and the answer was lost; the attempt ended with the intent recorded.
        let lost = PortError::retryable("autoscaling:SetDesiredCapacity", "dispatch failure: connection reset");
        let first = FailingStep { fail: "scale-out", error: lost, calls: Default::default() };
        assert!(run_with(&ledger, &notifier, &first, "e1", plan(vec![scale_out(2, 3)])).await.is_err());

        // The retry sees 3 members and the alarm still firing: decided afresh, it would go to 4.
        let again = FailingStep { fail: "none", error: PortError::permanent("x", "y"), calls: Default::default() };
        let outcome = run_with(&ledger, &notifier, &again, "e1", plan(vec![scale_out(3, 4)])).await.unwrap();

        assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
        assert!(
            outcome.reason.contains("scaled out 2 -> 3"),
            "the first attempt's decision is finished: {}",
            outcome.reason
        );
        assert_eq!(notifier.subjects().len(), 1, "{:?}", notifier.subjects());
        assert!(notifier.subjects()[0].contains("2 -> 3"), "{:?}", notifier.subjects());
    }

    #[tokio::test]
    async fn rule7_given_a_scale_out_done_by_an_attempt_that_died_before_completing_when_retried_then_it_is_reported_and_not_scaled_again(
    ) {
        let (ledger, notifier) = (MemoryLedger::default(), MemoryNotifier::default());
        let first = FailingStep { fail: "none", error: PortError::permanent("x", "y"), calls: Default::default() };
        run_with(&ledger, &notifier, &first, "e1", plan(vec![scale_out(2, 3)])).await.unwrap();
        // It died after recording the scale-out done, before its outcome was recorded.
        ledger.release(&guard::event_key(&trigger("e1").idempotency_key())).await.unwrap();

        let again = FailingStep { fail: "none", error: PortError::permanent("x", "y"), calls: Default::default() };
        let outcome = run_with(&ledger, &notifier, &again, "e1", plan(vec![scale_out(3, 4)])).await.unwrap();

        assert!(again.calls.lock().unwrap().is_empty(), "not scaled again: {:?}", again.calls.lock().unwrap());
        assert!(outcome.reason.contains("scaled out 2 -> 3"), "{}", outcome.reason);
    }

    #[tokio::test]
    async fn given_promotion_held_by_its_guard_when_run_then_the_reroute_is_not_attempted() {
        let (ledger, notifier) = (MemoryLedger::default(), MemoryNotifier::default());
        let steps = FailingStep { fail: "none", error: PortError::permanent("x", "y"), calls: Default::default() };
        run_with(&ledger, &notifier, &steps, "e1", promotion_plan()).await.unwrap();
        let second = run_with(&ledger, &notifier, &steps, "e2", promotion_plan()).await.unwrap();
        assert_eq!(*steps.calls.lock().unwrap(), ["promote", "reroute-writer"]);
        assert_eq!(second.status, Status::Skipped);
        assert!(second.reason.contains("not attempted, the step before it did not happen"), "{}", second.reason);
    }

    #[tokio::test]
    async fn given_breaker_of_one_when_promotion_and_its_reroute_run_then_both_count_as_one() {
        let (ledger, notifier) = (MemoryLedger::default(), MemoryNotifier::default());
        let steps = FailingStep { fail: "none", error: PortError::permanent("x", "y"), calls: Default::default() };
        let policy = Policy { breaker_max_actions: 1, ..Policy::default() };
        let engine = Engine {
            function: "test",
            ledger: &ledger,
            notifier: &notifier,
            remediator: &steps,
            policy: &policy,
            deadline_ms: None,
        };
        let outcome = engine.run(&trigger("e1"), NOW, || async { Ok(promotion_plan()) }).await.unwrap();
        assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
        assert_eq!(*steps.calls.lock().unwrap(), ["promote", "reroute-writer"]);
    }

    #[tokio::test]
    async fn given_reroute_throttled_after_promotion_when_run_then_failure_reported_not_retried() {
        let (ledger, notifier) = (MemoryLedger::default(), MemoryNotifier::default());
        let throttled = PortError::retryable("route53:ChangeResourceRecordSets", "Throttling (HTTP 400)");
        let steps = FailingStep { fail: "reroute-writer", error: throttled, calls: Default::default() };
        let outcome =
            run_with(&ledger, &notifier, &steps, "e1", promotion_plan()).await.expect("reported, not an error");
        assert_eq!(outcome.status, Status::Failed);
        assert!(
            outcome.reason.contains("not retried: an earlier step of this plan already changed AWS"),
            "{}",
            outcome.reason
        );
        assert!(outcome.reason.contains("acted: promoted orders-db-replica-1 to writer"), "{}", outcome.reason);
        assert_eq!(
            notifier.subjects(),
            ["[CRITICAL] rds orders-db: could not reroute-writer writer.db.internal. (+1 more)"]
        );
    }

    #[tokio::test]
    async fn given_first_step_done_by_an_earlier_attempt_when_retried_then_later_steps_run_and_nothing_repeats() {
        let (ledger, notifier) = (MemoryLedger::default(), MemoryNotifier::default());
        let down = PortError {
            code: Some("InternalError".into()),
            ..PortError::retryable("ec2:RebootInstances", "InternalError (HTTP 500)")
        };
        let reader = medic_core::plan::ReaderRecord {
            primary: "orders-db".into(),
            replica: "orders-db-replica-1".into(),
            zone_id: "Z0DB".into(),
            record_name: "reader.db.internal.".into(),
            endpoint: "orders-db-replica-1.example".into(),
            ttl: 60,
            health_check_id: None,
        };
        // A plan whose first step has a cooldown and whose second does not.
        let reboot = Action::RebootReplica { primary: "orders-db".into(), replica: "orders-db-replica-1".into() };
        let out = Action::SetReaderWeight { reader, from: 100, to: 0 };
        let fails_first = FailingStep { fail: "reboot-replica", error: down, calls: Default::default() };
        let first = run_with(&ledger, &notifier, &fails_first, "e1", plan(vec![reboot.clone(), out.clone()])).await;
        assert!(first.is_err(), "nothing changed yet, so the event is retried");
        assert!(ledger.keys().iter().all(|k| !k.starts_with("cooldown#")), "a failed step leaves no cooldown");

        // An attempt that rebooted and then died (timeout, crash) left the reboot's guard behind,
        // marked done.
        let event_key = guard::event_key(&trigger("e1").idempotency_key());
        ledger.start_cooldown(&guard::cooldown_key(&reboot), NOW + 600, NOW, &event_key, Some(&reboot)).await.unwrap();
        ledger.mark_done(&guard::cooldown_key(&reboot)).await.unwrap();
        let again = FailingStep { fail: "none", error: PortError::permanent("x", "y"), calls: Default::default() };
        let outcome =
            run_with(&ledger, &notifier, &again, "e1", plan(vec![reboot.clone(), out.clone()])).await.unwrap();
        assert_eq!(*again.calls.lock().unwrap(), ["reader-out"]);
        assert!(outcome.reason.contains("by an earlier attempt"), "{}", outcome.reason);

        // Another event inside the reboot's cooldown does not reboot again.
        let other = FailingStep { fail: "none", error: PortError::permanent("x", "y"), calls: Default::default() };
        run_with(&ledger, &notifier, &other, "e2", plan(vec![reboot, out])).await.unwrap();
        assert_eq!(*other.calls.lock().unwrap(), ["reader-out"]);
    }
}
