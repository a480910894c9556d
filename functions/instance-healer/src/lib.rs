//! Instance healer: an EC2 instance went down. Replace it through its Auto Scaling group, start
//! it if it is standalone, or say why not.

use medic_aws::adapters::dynamodb::DynamoLedger;
use medic_aws::adapters::instances::AwsInstances;
use medic_aws::adapters::sns::SnsNotifier;
use medic_aws::ports::{InstanceInspector, Ledger, Notifier, Remediator};
use medic_aws::{Engine, HandlerError, Invocation, MedicConfig};
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
    /// Reads `MEDIC_*` settings and the standard AWS ones, and builds the clients.
    pub async fn from_env() -> Result<Self, HandlerError> {
        let config = MedicConfig::from_env()?;
        Ok(Self::from_sdk_config(&medic_aws::load_sdk_config().await, config))
    }

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, config: MedicConfig) -> Self {
        Self {
            instances: AwsInstances::new(aws_sdk_autoscaling::Client::new(sdk), aws_sdk_ec2::Client::new(sdk)),
            ledger: DynamoLedger::new(aws_sdk_dynamodb::Client::new(sdk), config.ledger_table, &config.policy),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(sdk), config.topic_arn),
            policy: config.policy,
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
        function: "instance-healer",
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
