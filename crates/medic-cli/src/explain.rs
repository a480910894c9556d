//! `medic explain`: a function's own handler, in dry-run, against a read-only view of the ledger
//! and a notifier that keeps what it is given. AWS is only read; nothing is claimed, acted on or
//! published, and the decision is the one the function would make now.

use std::sync::Mutex;

use medic_aws::ports::{GuardItems, Ledger, Notifier, PortResult, Refusal, Take};
use medic_aws::{HandlerError, MedicConfig};
use medic_core::guard::{Claim, Cooldown};
use medic_core::notice::Notice;
use medic_core::plan::NOT_IDEMPOTENT;
use medic_core::time::EpochSeconds;
use medic_core::{Outcome, Policy};
use serde::Serialize;
use serde_json::Value;

use crate::Resources;

/// The functions `explain` and `redrive` can hand an event to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    InstanceHealer,
    AlarmResponder,
    RdsRerouter,
    Notifier,
    Reconciler,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Self::InstanceHealer => "instance-healer",
            Self::AlarmResponder => "alarm-responder",
            Self::RdsRerouter => "rds-rerouter",
            Self::Notifier => "notifier",
            Self::Reconciler => "reconciler",
        }
    }

    /// The function whose parser accepts the event, by the functions' own parsers.
    pub fn detect(event: &Value) -> Result<Self, String> {
        if medic_core::parse_event(event).is_ok() {
            return Ok(Self::InstanceHealer);
        }
        if medic_core::alarm_responder::parse_alarm_event(event).is_ok() {
            return Ok(Self::AlarmResponder);
        }
        if medic_core::rds_rerouter::parse_db_event(event).is_ok() {
            return Ok(Self::RdsRerouter);
        }
        if medic_core::notifier::parse_notice_event(event).is_ok() {
            return Ok(Self::Notifier);
        }
        if medic_core::reconciler::parse_tick(event).is_ok() {
            return Ok(Self::Reconciler);
        }
        let source = event.get("source").and_then(Value::as_str).unwrap_or("none");
        let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or("none");
        Err(format!(
            "no medic function accepts this event (source `{source}`, detail-type `{detail_type}`); name one with --function to see its parser's error"
        ))
    }
}

/// What the function would do with the event now.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub function: Function,
    /// The handler's outcomes (a list for the alarm responder, the run report for the
    /// reconciler), or `None` when it failed.
    pub decision: Option<Value>,
    /// The handler's error: a malformed event, an AWS read that failed, or a retry it would ask for.
    pub error: Option<String>,
    pub notices: Vec<NoticeView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeView {
    pub subject: String,
    pub severity: String,
    pub body: String,
}

impl Explanation {
    /// The outcomes in the decision, wherever the function puts them.
    pub fn outcomes(&self) -> Vec<Outcome> {
        let Some(decision) = &self.decision else { return Vec::new() };
        let candidates: Vec<&Value> = match decision {
            Value::Array(items) => items.iter().collect(),
            Value::Object(report) if report.contains_key("findings") => {
                report["findings"].as_array().map(|items| items.iter().collect()).unwrap_or_default()
            }
            other => vec![other],
        };
        candidates.into_iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect()
    }

    /// It would take an action that does something again when repeated, or it could not tell.
    pub fn may_repeat_an_action(&self) -> bool {
        self.error.is_some()
            || self.outcomes().iter().any(|o| o.action.as_deref().is_some_and(|a| NOT_IDEMPOTENT.contains(&a)))
    }

    pub fn render(&self) -> String {
        let mut text = format!("function: {}\n", self.function.name());
        if let Some(error) = &self.error {
            text.push_str(&format!("error:    {error}\n"));
        }
        for outcome in self.outcomes() {
            let action = outcome.action.as_deref().map_or(String::new(), |a| format!(" [{a}]"));
            text.push_str(&format!(
                "decision: {}{action} {}: {}\n",
                outcome.status.as_str(),
                outcome.resource,
                outcome.reason
            ));
            match (&outcome.label, outcome.status) {
                (Some(label), _) => text.push_str(&format!("guard:    {label}\n")),
                (None, medic_core::Status::WouldAct) => {
                    text.push_str("guard:    lets it through now (scope, cooldown, lock and breaker checked)\n");
                }
                (None, _) => {}
            }
        }
        if let Some(Value::Object(report)) = &self.decision {
            if !report.contains_key("status") {
                let summary: Vec<String> = ["checked", "waiting", "deferred"]
                    .iter()
                    .filter_map(|k| report.get(*k).map(|v| format!("{k} {v}")))
                    .chain(report.get("healed").and_then(Value::as_array).map(|h| format!("healed {}", h.len())))
                    .collect();
                text.push_str(&format!("run:      {}\n", summary.join(", ")));
            }
        }
        if self.notices.is_empty() {
            text.push_str("notice:   none\n");
        } else {
            text.push_str("          (explain runs the function in dry-run: with MEDIC_DRY_RUN=false it acts, and its notice says so)\n");
        }
        for notice in &self.notices {
            text.push_str(&format!("notice:   {} ({})\n", notice.subject, notice.severity));
            for line in notice.body.lines() {
                text.push_str(&format!("          {line}\n"));
            }
        }
        text
    }
}

/// Runs `function`'s handler on `event` in dry-run: reads go to AWS, writes go nowhere.
pub async fn explain(
    sdk: &aws_config::SdkConfig,
    resources: &Resources,
    policy: &Policy,
    event: Value,
    function: Function,
    now: EpochSeconds,
) -> Result<Explanation, String> {
    let config = MedicConfig {
        policy: Policy { dry_run: true, ..policy.clone() },
        ledger_table: resources.table()?.to_owned(),
        topic_arn: resources.topic_arn(),
        accounts: medic_aws::config::Accounts::Single,
    };
    let notices = Captured::default();
    // Each handler's future on the heap: side by side in one match they would make this one as
    // large as the largest, on the stack of whoever awaits it.
    let result: Result<Value, HandlerError> = match function {
        Function::InstanceHealer => {
            let aws = instance_healer::AwsHealer::from_sdk_config(sdk, config);
            let healer = instance_healer::Healer {
                instances: aws.instances,
                ledger: ReadOnly(aws.ledger),
                notifier: &notices,
                policy: aws.policy,
            };
            Box::pin(instance_healer::handle(&healer, event, now)).await.map(to_value)
        }
        Function::AlarmResponder => {
            let aws = alarm_responder::AwsResponder::from_sdk_config(sdk, config);
            let responder = alarm_responder::Responder {
                alarms: aws.alarms,
                instances: aws.instances,
                targets: aws.targets,
                ledger: ReadOnly(aws.ledger),
                notifier: &notices,
                policy: aws.policy,
            };
            Box::pin(responder.handle(event, now)).await.map(to_value)
        }
        Function::RdsRerouter => {
            let aws = rds_rerouter::AwsRerouter::from_sdk_config(sdk, config);
            let rerouter = rds_rerouter::Rerouter {
                databases: aws.databases,
                dns: aws.dns,
                metrics: aws.metrics,
                ledger: ReadOnly(aws.ledger),
                notifier: &notices,
                policy: aws.policy,
            };
            Box::pin(rerouter.handle(event, now)).await.map(to_value)
        }
        Function::Notifier => {
            let aws = notifier::AwsNoticeDesk::from_sdk_config(sdk, config);
            let desk = notifier::NoticeDesk { ledger: ReadOnly(aws.ledger), notifier: &notices, policy: aws.policy };
            Box::pin(desk.handle(event, now)).await.map(to_value)
        }
        Function::Reconciler => {
            let settings = resources.dlq_url.as_ref().and_then(|url| {
                reconciler::DeadLetterSettings::from_lookup(|name| (name == "MEDIC_DLQ_URL").then(|| url.clone()))
            });
            let aws = reconciler::AwsReconciler::from_sdk_config(sdk, config, settings);
            let reconciler = reconciler::Reconciler {
                fleet: aws.fleet,
                databases: aws.databases,
                dns: aws.dns,
                metrics: aws.metrics,
                dead_letters: aws.dead_letters,
                ledger: ReadOnly(aws.ledger),
                notifier: &notices,
                policy: aws.policy,
                at: aws.at,
            };
            Box::pin(reconciler.handle(event, now)).await.map(to_value)
        }
    };
    let notices = notices.0.into_inner().unwrap_or_default();
    let (decision, error) = match result {
        Ok(decision) => (Some(decision), None),
        Err(error) => (None, Some(error.to_string())),
    };
    Ok(Explanation { function, decision, error, notices })
}

fn to_value(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Keeps every notice instead of publishing it.
#[derive(Debug, Default)]
pub struct Captured(pub Mutex<Vec<NoticeView>>);

impl Notifier for &Captured {
    async fn publish(&self, notice: &Notice) -> PortResult<()> {
        let view = NoticeView {
            subject: notice.subject.clone(),
            severity: notice.severity.as_str().to_owned(),
            body: notice.body.clone(),
        };
        self.0.lock().map_err(|_| medic_aws::PortError::permanent("capture", "poisoned"))?.push(view);
        Ok(())
    }
}

/// The ledger, read but never written: every write answers as if it had been made, so the
/// handler goes on exactly as the first delivery of the event would.
#[derive(Debug)]
pub struct ReadOnly<L>(pub L);

impl<L: Ledger + Sync> Ledger for ReadOnly<L> {
    async fn claim(&self, _key: &str, _now: EpochSeconds) -> PortResult<Claim> {
        Ok(Claim::Claimed)
    }

    async fn complete(&self, _key: &str, _outcome: &str, _notice: Option<&str>, _now: EpochSeconds) -> PortResult<()> {
        Ok(())
    }

    async fn mark_notified(&self, _key: &str) -> PortResult<()> {
        Ok(())
    }

    async fn release(&self, _key: &str) -> PortResult<()> {
        Ok(())
    }

    async fn cooldown_until(&self, key: &str, now: EpochSeconds) -> PortResult<Option<Cooldown>> {
        self.0.cooldown_until(key, now).await
    }

    async fn start_cooldown(
        &self,
        key: &str,
        _until: EpochSeconds,
        now: EpochSeconds,
        _started_by: &str,
        _intent: Option<&medic_core::Action>,
    ) -> PortResult<bool> {
        Ok(self.0.cooldown_until(key, now).await?.is_none())
    }

    async fn forget(&self, _key: &str) -> PortResult<()> {
        Ok(())
    }

    async fn mark_done(&self, _key: &str) -> PortResult<()> {
        Ok(())
    }

    async fn remove_from_set(&self, _key: &str, _member: &str) -> PortResult<()> {
        Ok(())
    }

    async fn add_to_set(&self, key: &str, member: &str, _expires_at: EpochSeconds) -> PortResult<Vec<String>> {
        let mut members = self.0.set_members(key).await?;
        if !members.iter().any(|m| m == member) {
            members.push(member.to_owned());
        }
        Ok(members)
    }

    async fn set_members(&self, key: &str) -> PortResult<Vec<String>> {
        self.0.set_members(key).await
    }

    async fn read_guard(&self, keys: &[String], now: EpochSeconds) -> PortResult<GuardItems> {
        self.0.read_guard(keys, now).await
    }

    /// Answers as the transaction would: refused by the first cooldown running or breaker window
    /// full, and by a group's in-flight item that changed since it was read.
    async fn take(&self, writes: &[Take<'_>], now: EpochSeconds) -> PortResult<Result<(), Refusal>> {
        let keys: Vec<String> = writes
            .iter()
            .map(|write| match write {
                Take::Cooldown { key, .. } | Take::Slot { key, .. } | Take::InFlight { key, .. } => (*key).to_owned(),
            })
            .collect();
        let read = self.0.read_guard(&keys, now).await?;
        for (index, write) in writes.iter().enumerate() {
            let refused = match write {
                Take::Cooldown { key, .. } => read.cooldowns.get(*key).cloned().map(Some),
                Take::Slot { key, member, max, .. } => {
                    let members = read.sets.get(*key).map_or(&[][..], Vec::as_slice);
                    let full = !members.iter().any(|m| m == member) && members.len() >= *max as usize;
                    full.then_some(None)
                }
                Take::InFlight { key, read: version, .. } => {
                    (read.in_flight.get(*key).map(|f| f.version) != *version).then_some(None)
                }
            };
            if let Some(running) = refused {
                return Ok(Err(Refusal { index, running }));
            }
        }
        Ok(Ok(()))
    }

    async fn mark_applied(&self, _key: &str, _entry: &str, _at_ms: i64) -> PortResult<()> {
        Ok(())
    }

    async fn drop_in_flight(&self, _key: &str, _entry: &str) -> PortResult<()> {
        Ok(())
    }

    async fn pause_switch(&self) -> PortResult<Option<String>> {
        self.0.pause_switch().await
    }
}
