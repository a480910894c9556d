//! Instance healer: an EC2 instance went down. Replace it through its Auto Scaling group, start
//! it if it is standalone, or say why not.

use aws_config::SdkConfig;
use medic_aws::adapters::dynamodb::DynamoLedger;
use medic_aws::adapters::instances::AwsInstances;
use medic_aws::adapters::sns::SnsNotifier;
use medic_aws::ports::{InstanceInspector, Ledger, Notifier, Remediator};
use medic_aws::{Engine, HandlerError, Invocation, MedicConfig, PerAccount};
use medic_core::accounts::AccountRegion;
use medic_core::states::Ec2State;
use medic_core::{guard, instance_healer, parse_event, Outcome, Policy, Trigger};
use serde_json::Value;

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct Healer<I, L, N> {
    pub instances: I,
    pub ledger: L,
    pub notifier: N,
    pub policy: Policy,
}

pub type AwsHealer = Healer<AwsInstances, DynamoLedger, SnsNotifier>;

impl AwsHealer {
    /// Single-account mode's healer: every client through `sdk`.
    pub fn from_sdk_config(sdk: &SdkConfig, config: MedicConfig) -> Self {
        Self::build(sdk, sdk, &config, None)
    }
}

impl PerAccount for AwsHealer {
    const NAME: &'static str = "instance-healer";

    fn build(member: &SdkConfig, home: &SdkConfig, config: &MedicConfig, at: Option<&AccountRegion>) -> Self {
        Self {
            instances: AwsInstances::new(aws_sdk_autoscaling::Client::new(member), aws_sdk_ec2::Client::new(member)),
            ledger: DynamoLedger::for_function(home, config, at),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(home), config.topic_arn.clone()),
            policy: config.policy.clone(),
        }
    }
}

/// Handles one EventBridge "EC2 Instance State-change Notification".
pub async fn handle<I, L, N>(
    healer: &Healer<I, L, N>,
    event: Value,
    at: impl Into<Invocation>,
) -> Result<Outcome, HandlerError>
where
    I: InstanceInspector + Remediator + Sync,
    L: Ledger + Sync,
    N: Notifier + Sync,
{
    let invocation = at.into();
    let now = invocation.now;
    let trigger = parse_event(&event)?;
    let Trigger::InstanceStateChanged(change) = &trigger else {
        return Err(HandlerError::WrongFunction(trigger.summary()));
    };
    let engine = Engine {
        function: AwsHealer::NAME,
        ledger: &healer.ledger,
        notifier: &healer.notifier,
        remediator: &healer.instances,
        policy: &healer.policy,
        deadline_ms: invocation.deadline_ms,
    };
    if let Some(reason) = instance_healer::skip_without_observation(change) {
        return Ok(engine.skip_without_observation(&trigger, &reason));
    }
    engine
        .run(&trigger, now, || async {
            let mut observed = healer.instances.observe_instance(&change.instance_id).await?;
            if change.state == Ec2State::Stopped && observed.member.is_none() {
                let mark = healer.ledger.cooldown_until(&guard::recovery_mark_key(&change.instance_id), now).await?;
                observed.stopped_by_medic = mark.is_some();
            }
            Ok(instance_healer::decide(change, &observed, &healer.policy, now))
        })
        .await
}
