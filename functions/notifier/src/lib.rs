//! Notifier: Auto Scaling activity and lifecycle actions, and AWS Health events, as notices. It
//! changes nothing in AWS. Launch failures of one group are counted in the ledger (by event, so a
//! retried event counts once), and the Nth within 15 minutes sends one critical notice.

use aws_config::SdkConfig;
use medic_aws::adapters::dynamodb::DynamoLedger;
use medic_aws::adapters::sns::SnsNotifier;
use medic_aws::ports::{Ledger, NoRemediation, Notifier, PortResult};
use medic_aws::{Engine, HandlerError, Invocation, MedicConfig, PerAccount};
use medic_core::accounts::AccountRegion;
use medic_core::notifier::{
    self, launch_escalation_key, launch_failure_member, launch_failures_key, AsgActivity, AsgActivityKind,
    LaunchFailures, LAUNCH_FAILURE_WINDOW_SECONDS,
};
use medic_core::{guard, Outcome, Plan, Policy, Trigger};
use serde_json::Value;

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct NoticeDesk<L, N> {
    pub ledger: L,
    pub notifier: N,
    pub policy: Policy,
}

pub type AwsNoticeDesk = NoticeDesk<DynamoLedger, SnsNotifier>;

impl AwsNoticeDesk {
    /// Single-account mode's notifier: every client through `sdk`.
    pub fn from_sdk_config(sdk: &SdkConfig, config: MedicConfig) -> Self {
        Self::build(sdk, sdk, &config, None)
    }
}

impl PerAccount for AwsNoticeDesk {
    const NAME: &'static str = "notifier";
    const ACTS_IN_MEMBER: bool = false;

    fn build(_member: &SdkConfig, home: &SdkConfig, config: &MedicConfig, at: Option<&AccountRegion>) -> Self {
        Self {
            ledger: DynamoLedger::for_function(home, config, at),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(home), config.topic_arn.clone()),
            policy: config.policy.clone(),
        }
    }
}

impl<L: Ledger + Sync, N: Notifier + Sync> NoticeDesk<L, N> {
    pub async fn handle(&self, event: Value, at: impl Into<Invocation>) -> Result<Outcome, HandlerError> {
        let invocation = at.into();
        let now = invocation.now;
        let trigger = Trigger::from(notifier::parse_notice_event(&event)?);
        let engine = Engine {
            function: AwsNoticeDesk::NAME,
            ledger: &self.ledger,
            notifier: &self.notifier,
            remediator: &NoRemediation,
            policy: &self.policy,
            deadline_ms: invocation.deadline_ms,
        };
        engine.run(&trigger, now, || self.decide(&trigger)).await
    }

    async fn decide(&self, trigger: &Trigger) -> PortResult<Plan> {
        Ok(match trigger {
            Trigger::AsgActivity(activity) => {
                let failures = match activity.kind {
                    AsgActivityKind::LaunchUnsuccessful => Some(self.count_launch_failure(trigger, activity).await?),
                    _ => None,
                };
                notifier::decide_activity(activity, failures, &self.policy)
            }
            Trigger::Health(event) => notifier::decide_health(event),
            other => Plan::skip(
                other.resource(),
                medic_core::SkipReason::OutOfScope { why: "not an event the notifier handles".into() },
            ),
        })
    }

    /// Counts this failure with the group's failures of the 15 minutes up to it (by event time,
    /// so late deliveries count where they belong) and tells whether it escalates: the count
    /// reached the threshold and no critical notice went out for the group in the last 15
    /// minutes. A retry of the event that escalated escalates again, so its notice is not lost.
    async fn count_launch_failure(&self, trigger: &Trigger, activity: &AsgActivity) -> PortResult<LaunchFailures> {
        let (group, at) = (&activity.group, activity.occurred_at);
        let event = guard::event_key(&trigger.idempotency_key());
        let expires = guard::window_start(at, LAUNCH_FAILURE_WINDOW_SECONDS) + 3 * LAUNCH_FAILURE_WINDOW_SECONDS;
        let mut members = self
            .ledger
            .add_to_set(&launch_failures_key(group, at), &launch_failure_member(at, &event), expires)
            .await?;
        members.extend(self.ledger.set_members(&launch_failures_key(group, at - LAUNCH_FAILURE_WINDOW_SECONDS)).await?);
        let count = notifier::failures_in_window(&members, at);
        if count < self.policy.launch_failure_threshold as usize {
            return Ok(LaunchFailures { count, escalate: false });
        }
        let quiet_key = launch_escalation_key(group);
        let escalate = match self.ledger.cooldown_until(&quiet_key, at).await? {
            Some(quiet) => quiet.started_by == event,
            None => {
                self.ledger.start_cooldown(&quiet_key, at + LAUNCH_FAILURE_WINDOW_SECONDS, at, &event, None).await?
            }
        };
        Ok(LaunchFailures { count, escalate })
    }
}
