//! Alarm responder: a CloudWatch alarm went into ALARM. Scale its group, replace or recover its
//! instance, replace the unhealthy targets behind its load balancer, or tell a human.

use aws_config::SdkConfig;
use medic_aws::adapters::alarms::AwsAlarms;
use medic_aws::adapters::dynamodb::DynamoLedger;
use medic_aws::adapters::instances::AwsInstances;
use medic_aws::adapters::sns::SnsNotifier;
use medic_aws::adapters::targets::AwsTargets;
use medic_aws::ports::{
    AlarmInspector, GroupInspector, InstanceInspector, Ledger, Notifier, PortResult, Remediator, TargetInspector,
};
use medic_aws::{Engine, HandlerError, Invocation, MedicConfig, PerAccount};
use medic_core::accounts::AccountRegion;
use medic_core::alarm_responder::{self, Remediation, Target};
use medic_core::alarm_responder::{parse_alarm_event, AlarmChanged, AlarmState};
use medic_core::time::EpochSeconds;
use medic_core::{Decision, Outcome, Plan, Policy, Trigger};
use serde_json::Value;

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct Responder<A, I, T, L, N> {
    pub alarms: A,
    /// Instances and groups: observation and every instance or group remediation.
    pub instances: I,
    pub targets: T,
    pub ledger: L,
    pub notifier: N,
    pub policy: Policy,
}

pub type AwsResponder = Responder<AwsAlarms, AwsInstances, AwsTargets, DynamoLedger, SnsNotifier>;

impl AwsResponder {
    /// Single-account mode's responder: every client through `sdk`.
    pub fn from_sdk_config(sdk: &SdkConfig, config: MedicConfig) -> Self {
        Self::build(sdk, sdk, &config, None)
    }
}

impl PerAccount for AwsResponder {
    const NAME: &'static str = "alarm-responder";

    fn build(member: &SdkConfig, home: &SdkConfig, config: &MedicConfig, at: Option<&AccountRegion>) -> Self {
        Self {
            alarms: AwsAlarms::new(aws_sdk_cloudwatch::Client::new(member)),
            instances: AwsInstances::new(aws_sdk_autoscaling::Client::new(member), aws_sdk_ec2::Client::new(member)),
            targets: AwsTargets::new(aws_sdk_elasticloadbalancingv2::Client::new(member)),
            ledger: DynamoLedger::for_function(home, config, at),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(home), config.topic_arn.clone()),
            policy: config.policy.clone(),
        }
    }
}

impl<A, I, T, L, N> Responder<A, I, T, L, N>
where
    A: AlarmInspector + Sync,
    I: InstanceInspector + GroupInspector + Remediator + Sync,
    T: TargetInspector + Sync,
    L: Ledger + Sync,
    N: Notifier + Sync,
{
    /// Handles one alarm event in any of its three shapes; an SNS event may carry several
    /// alarms, so the answer is one outcome per alarm. If any alarm fails retryably the whole
    /// event is retried; alarms already handled are then duplicates and change nothing.
    pub async fn handle(&self, event: Value, at: impl Into<Invocation>) -> Result<Vec<Outcome>, HandlerError> {
        let invocation = at.into();
        let mut outcomes = Vec::new();
        for change in parse_alarm_event(&event)? {
            outcomes.push(self.handle_change(change, invocation).await?);
        }
        Ok(outcomes)
    }

    async fn handle_change(&self, change: AlarmChanged, invocation: Invocation) -> Result<Outcome, HandlerError> {
        let now = invocation.now;
        let engine = Engine {
            function: AwsResponder::NAME,
            ledger: &self.ledger,
            notifier: &self.notifier,
            remediator: &self.instances,
            policy: &self.policy,
            deadline_ms: invocation.deadline_ms,
        };
        let trigger = Trigger::AlarmChanged(change.clone());
        if let Some(reason) = alarm_responder::outside_prefix(&change, &self.policy) {
            return Ok(engine.skip_without_observation(&trigger, &reason));
        }
        if change.state != AlarmState::Alarm {
            let plan = alarm_responder::decide_not_firing(&change, &self.policy);
            return match &plan.decision {
                Decision::Skip { reason } => Ok(engine.skip_without_observation(&trigger, reason)),
                // An info notice: claimed in the ledger so it is sent once, but nothing is read.
                _ => engine.run(&trigger, now, || async { Ok(plan.clone()) }).await,
            };
        }
        engine.run(&trigger, now, || self.observe_and_decide(&change, now)).await
    }

    async fn observe_and_decide(&self, change: &AlarmChanged, now: EpochSeconds) -> PortResult<Plan> {
        let facts = self.alarms.alarm_facts(change).await?;
        let operator = facts.comparison_operator.as_deref().or(change.comparison_operator.as_deref());
        let remediation = alarm_responder::remediation(change, &facts.tags, operator);
        let target = match &remediation {
            Remediation::Scale { group, .. } => match self.instances.observe_group(group).await? {
                Some((capacity, group_tags)) => Target::Group { group: group.clone(), capacity, group_tags },
                None => Target::Nothing,
            },
            Remediation::ReplaceInstance { instance_id, .. } => {
                Target::Instance(self.instances.observe_instance(instance_id).await?)
            }
            Remediation::ReplaceUnhealthyTargets { target_group_arn } => {
                match self.targets.unhealthy_targets(target_group_arn).await? {
                    Some(instance_ids) if instance_ids.is_empty() => Target::UnhealthyTargets(vec![]),
                    Some(instance_ids) => {
                        Target::UnhealthyTargets(self.instances.observe_instances(&instance_ids).await?)
                    }
                    None => Target::Nothing,
                }
            }
            Remediation::Notify { .. } => Target::Nothing,
        };
        Ok(alarm_responder::decide_alarm(change, &facts, &remediation, &target, &self.policy, now))
    }
}
