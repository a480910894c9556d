//! The bodies of medic's fuzz targets (`fuzz/fuzz_targets/`, run by `make fuzz`) and of their
//! replay in `make test` (`tests/replay.rs`).
//!
//! One target per function. An input is an event's JSON, optionally followed by a NUL byte and
//! the bytes that the observations, the settings and the clock are built from (`arbitrary`), so
//! the files of `events/` are inputs as they are. Each body runs what the function runs without
//! I/O: its parse, then, for an event it accepts, its decisions on arbitrary observations, then
//! the notices those decisions would send. Nothing may panic, and every notice must be one SNS
//! accepts.

use arbitrary::{Arbitrary, Unstructured};
use medic_core::alarm_responder::{self, AlarmFacts, Remediation, Target};
use medic_core::fleet::{GroupHealth, InstanceFacts, InstanceObservation};
use medic_core::guard::Breaker;
use medic_core::notice::{self, NoticeKind};
use medic_core::notifier::{self, AsgActivityKind, LaunchFailures, NoticeEvent};
use medic_core::rds_rerouter::{self, DbInstance, DbObservation, DnsRecord, LagSample};
use medic_core::reconciler::{self, DeadLetters, Finding, FindingFacts, HealFacts};
use medic_core::states::AlarmState;
use medic_core::time::EpochSeconds;
use medic_core::watch::Watch;
use medic_core::{instance_healer, Decision, Plan, Policy, Trigger};
use serde_json::Value;

/// A target's body: it returns normally for every input, or panics on a finding.
pub type Body = fn(&[u8]);

/// Every target: its name (the file under `fuzz/fuzz_targets/` and the folders of its corpus and
/// crash inputs), the function whose `events/` folder seeds it, and its body.
pub const TARGETS: [(&str, Body); 5] = [
    ("instance-healer", instance_healer),
    ("alarm-responder", alarm_responder),
    ("rds-rerouter", rds_rerouter),
    ("notifier", notifier),
    ("reconciler", reconciler),
];

/// The instance healer: parse, the skip before any call, then `decide` on any observation.
pub fn instance_healer(data: &[u8]) {
    let Some((raw, mut u)) = input(data) else { return };
    let Ok(trigger) = medic_core::parse_event(&raw) else { return };
    let Trigger::InstanceStateChanged(change) = &trigger else { return };
    let policy = policy(&mut u);
    if let Some(reason) = instance_healer::skip_without_observation(change) {
        report(&trigger, &Plan::skip(&change.instance_id, reason), &policy);
        return;
    }
    let observed: InstanceObservation = any(&mut u);
    let plan = instance_healer::decide(change, &observed, &policy, clock(&mut u));
    report(&trigger, &plan, &policy);
}

/// The alarm responder: every alarm of the event (three shapes), its remediation from any alarm
/// tags and operator, then `decide_alarm` on any target and alarm state.
pub fn alarm_responder(data: &[u8]) {
    let Some((raw, mut u)) = input(data) else { return };
    let Ok(changes) = alarm_responder::parse_alarm_event(&raw) else { return };
    let policy = policy(&mut u);
    for change in changes {
        let trigger = Trigger::AlarmChanged(change.clone());
        if let Some(reason) = alarm_responder::outside_prefix(&change, &policy) {
            report(&trigger, &Plan::skip(&change.alarm_name, reason), &policy);
            continue;
        }
        if change.state != AlarmState::Alarm {
            report(&trigger, &alarm_responder::decide_not_firing(&change, &policy), &policy);
            continue;
        }
        let facts: AlarmFacts = any(&mut u);
        let operator = facts.comparison_operator.as_deref().or(change.comparison_operator.as_deref());
        let remediation = alarm_responder::remediation(&change, &facts.tags, operator);
        let target = match (&remediation, u.arbitrary::<Option<Target>>()) {
            (_, Ok(Some(target))) => target,
            (Remediation::Scale { group, .. }, _) => {
                Target::Group { group: group.clone(), capacity: any(&mut u), group_tags: any(&mut u) }
            }
            (Remediation::ReplaceInstance { .. }, _) => Target::Instance(any(&mut u)),
            _ => Target::Nothing,
        };
        let plan = alarm_responder::decide_alarm(&change, &facts, &remediation, &target, &policy, clock(&mut u));
        report(&trigger, &plan, &policy);
    }
}

/// The RDS rerouter: parse, what the event needs looked at, the second look before a promotion,
/// where the DNS records are, then `decide_db` on any observation.
pub fn rds_rerouter(data: &[u8]) {
    let Some((raw, mut u)) = input(data) else { return };
    let Ok(event) = rds_rerouter::parse_db_event(&raw) else { return };
    let policy = policy(&mut u);
    let now = clock(&mut u);
    let _ = rds_rerouter::need(&event);
    let seen: Vec<String> = any(&mut u);
    let _ = rds_rerouter::confirm_terminal(&seen, now, &policy);
    let primary: DbInstance = any(&mut u);
    let _ = rds_rerouter::may_need_promotion(&primary);
    let _ = rds_rerouter::writer_record_location(&primary.tags);
    let _ = rds_rerouter::reader_record_location(&any::<Vec<(String, String)>>(&mut u), &primary.tags);
    let _ = rds_rerouter::lagging(any::<Option<LagSample>>(&mut u), &policy, now);
    let Ok(observation) = u.arbitrary::<DbObservation>() else { return };
    let plan = rds_rerouter::decide_db(&event, &observation, &policy, now);
    report(&Trigger::DbEvent(event), &plan, &policy);
}

/// The notifier: parse, the launch-failure count from any stored members, then its decisions.
pub fn notifier(data: &[u8]) {
    let Some((raw, mut u)) = input(data) else { return };
    let Ok(event) = notifier::parse_notice_event(&raw) else { return };
    let policy = policy(&mut u);
    let plan = match &event {
        NoticeEvent::AsgActivity(activity) => {
            let failures = (activity.kind == AsgActivityKind::LaunchUnsuccessful).then(|| {
                let members: Vec<String> = any(&mut u);
                let count = notifier::failures_in_window(&members, activity.occurred_at);
                LaunchFailures { count, escalate: any(&mut u) }
            });
            notifier::decide_activity(activity, failures, &policy)
        }
        NoticeEvent::Health(health) => notifier::decide_health(health),
    };
    report(&Trigger::from(event), &plan, &policy);
}

/// The reconciler: parse the tick, the sweep's rules on any fleet, convergence of any stored
/// watch, then `decide_finding` on any finding and facts.
pub fn reconciler(data: &[u8]) {
    let Some((raw, mut u)) = input(data) else { return };
    let Ok(tick) = reconciler::parse_tick(&raw) else { return };
    let policy = policy(&mut u);
    let now = clock(&mut u);
    let instances: Vec<(String, InstanceFacts)> = any(&mut u);
    let groups: Vec<GroupHealth> = any(&mut u);
    let impaired: Vec<(String, String)> = any(&mut u);
    let dbs: Vec<DbInstance> = any(&mut u);
    let records: Vec<DnsRecord> = any(&mut u);
    let mut findings = reconciler::stopped_standalone(&instances, &policy);
    findings.extend(reconciler::impaired_members(&impaired, &groups, &policy));
    for group in reconciler::short_groups(&groups, &policy) {
        let member = reconciler::short_member(&group.name, clock(&mut u));
        if let Some((_, since)) = reconciler::parse_short_member(&member) {
            findings.extend(reconciler::group_short(group, since, &policy, now));
        }
    }
    for (replica, _, _) in reconciler::reader_replicas(&dbs, &policy) {
        let weight = reconciler::reader_weight(&replica.id, &records).unwrap_or_default();
        findings.extend(reconciler::replica_to_take_out(replica, weight, now));
        findings.extend(reconciler::replica_to_put_back(replica, weight, any(&mut u), &policy, now));
    }
    let stored: String = any(&mut u);
    if let Some(watch) = Watch::from_member(&stored).or_else(|| u.arbitrary::<Watch>().ok()) {
        let _ = watch.id();
        let _ = reconciler::to_observe(&watch.action);
        let facts: HealFacts = any(&mut u);
        let convergence = reconciler::converge(&watch, &facts, policy.launch_margin_seconds, now);
        if let reconciler::Convergence::Overdue { deadline, seen } = convergence {
            findings.push(Finding::Unhealed { watch, deadline, seen });
        }
    }
    if let Ok(Some(dead)) = u.arbitrary::<Option<DeadLetters>>() {
        let plan = reconciler::dead_letters_notice(&dead, now);
        report(&Trigger::Reconcile(Finding::DeadLetters(dead), None), &plan, &policy);
    }
    findings.extend(u.arbitrary::<Vec<Finding>>().unwrap_or_default());
    for finding in findings {
        let _ = (finding.idempotency_key(), finding.resource(), finding.summary(), finding.instance());
        let facts: FindingFacts = any(&mut u);
        let plan = reconciler::decide_finding(&finding, &facts, &tick.account, &tick.region, &policy, now);
        report(&Trigger::Reconcile(finding, None), &plan, &policy);
    }
}

/// The event's JSON (before the first NUL byte) and the bytes after it.
fn input(data: &[u8]) -> Option<(Value, Unstructured<'_>)> {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let raw = serde_json::from_slice(&data[..split]).ok()?;
    Some((raw, Unstructured::new(data.get(split + 1..).unwrap_or_default())))
}

/// A value from the bytes left, or the type's default once they run out.
fn any<'a, T: Arbitrary<'a> + Default>(u: &mut Unstructured<'a>) -> T {
    T::arbitrary(u).unwrap_or_default()
}

/// The clock is Lambda's: within a lifetime (±68 years) of 2025, never an arbitrary i64.
fn clock(u: &mut Unstructured<'_>) -> EpochSeconds {
    1_735_689_600 + EpochSeconds::from(any::<i32>(u))
}

/// The settings a deployment may give (each through its validation at cold start), and a pause.
fn policy(u: &mut Unstructured<'_>) -> Policy {
    const NAMES: [&str; 20] = [
        "MEDIC_ALARM_NAME_PREFIX",
        "MEDIC_BREAKER_MAX_ACTIONS",
        "MEDIC_BREAKER_WINDOW_SECONDS",
        "MEDIC_COOLDOWN_SECONDS",
        "MEDIC_DIGEST_DELAY_SECONDS",
        "MEDIC_DRY_RUN",
        "MEDIC_ENVIRONMENT",
        "MEDIC_IN_PROGRESS_SECONDS",
        "MEDIC_LAUNCH_FAILURE_THRESHOLD",
        "MEDIC_LAUNCH_MARGIN_SECONDS",
        "MEDIC_LEDGER_TTL_HOURS",
        "MEDIC_MAX_PROMOTE_LAG_SECONDS",
        "MEDIC_MAX_UNHEALTHY_PERCENT",
        "MEDIC_NOTIFY_ON_OK",
        "MEDIC_PREFERRED_AZ",
        "MEDIC_PROMOTE_CONFIRM_SECONDS",
        "MEDIC_SCALE_IN_COOLDOWN_SECONDS",
        "MEDIC_SCALE_OUT_COOLDOWN_SECONDS",
        "MEDIC_SCOPE",
        "MEDIC_SWEEP_MAX_FINDINGS",
    ];
    let settings: Vec<(u8, String)> = any(u);
    let lookup = |name: &str| {
        settings
            .iter()
            .rev()
            .find(|(index, _)| NAMES[usize::from(*index) % NAMES.len()] == name)
            .map(|(_, v)| v.clone())
    };
    let mut policy = Policy::from_lookup(lookup).unwrap_or_default();
    policy.paused = any(u);
    policy
}

/// What the engine makes of a plan: the trigger's key and summary, and every notice the plan can
/// lead to (done, would have, refused by the breaker, failed, unconfirmed; the alert). Each must
/// be a notice SNS accepts.
fn report(trigger: &Trigger, plan: &Plan, policy: &Policy) {
    let what = trigger.summary();
    let _ = (trigger.idempotency_key(), trigger.resource());
    let record = notice::record(plan);
    let check = |kind: NoticeKind<'_>| accepted_by_sns(&notice::build(&kind, &what, &record, policy));
    match &plan.decision {
        Decision::Act { actions } => {
            for planned in actions {
                let action = &planned.action;
                let _ = (action.describe(false), action.api_call(), action.breaker_scope(), action.is_idempotent());
                let _ = reconciler::to_observe(action);
                for done in [true, false] {
                    check(NoticeKind::Action { action, reason: &planned.reason, done });
                }
                for breaker in [Breaker::Scope, Breaker::Account] {
                    check(NoticeKind::BreakerOpen { action, breaker, max: breaker.max(policy), window_seconds: 60 });
                }
                check(NoticeKind::Failed { action, error: &planned.reason });
                check(NoticeKind::Unconfirmed { action });
                let held = [action.resource().to_owned()];
                check(NoticeKind::Digest {
                    scope: &action.breaker_scope(),
                    scope_label: &action.scope_label(),
                    held: &held,
                });
            }
        }
        Decision::Alert(alert) => check(NoticeKind::Alert(alert)),
        Decision::Skip { reason } => {
            let _ = (reason.label(), reason.to_string());
        }
    }
}

/// SNS's limits on Publish: a subject of 1 to 100 printable ASCII characters, and at most
/// 262,144 bytes of message and attributes together.
#[allow(clippy::panic)] // a broken limit is the finding: the fuzzer reports the panic
fn accepted_by_sns(notice: &medic_core::notice::Notice) {
    let subject = &notice.subject;
    if subject.is_empty() || subject.len() > 100 || !subject.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        panic!("SNS refuses this subject: {subject:?}");
    }
    let size =
        notice.body.len() + notice.attributes.iter().map(|(k, v)| k.len() + v.len() + "String".len()).sum::<usize>();
    if size > 262_144 {
        panic!("SNS refuses a message of {size} bytes");
    }
}
