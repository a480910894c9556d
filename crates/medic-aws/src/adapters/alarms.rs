//! CloudWatch: an alarm as it is now (state and when it last changed), its comparison operator
//! and its tags, which the alarm's event may not carry.

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_cloudwatch::Client;
use medic_core::alarm_responder::{AlarmChanged, AlarmState};
use medic_core::alarm_responder::{AlarmFacts, AlarmNow};
use medic_core::scope::Tags;

use crate::error::classify;
use crate::ports::{AlarmInspector, PortResult};

#[derive(Debug, Clone)]
pub struct AwsAlarms {
    cloudwatch: Client,
}

impl AwsAlarms {
    pub fn new(cloudwatch: Client) -> Self {
        Self { cloudwatch }
    }
}

impl AlarmInspector for AwsAlarms {
    async fn alarm_facts(&self, change: &AlarmChanged) -> PortResult<AlarmFacts> {
        // Always read: medic acts only on an alarm that is still in the event's ALARM episode.
        // The tags are read beside it when the event names the alarm's ARN (alarm events do).
        let described = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(&change.alarm_name)
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send();
        let early_tags = async {
            match change.alarm_arn.as_deref() {
                Some(arn) => self.tags(arn).await.map(Some),
                None => Ok(None),
            }
        };
        let (described, early_tags) = tokio::join!(described, early_tags);
        let described = described.map_err(|e| classify("cloudwatch:DescribeAlarms", e))?;
        let early_tags = early_tags?;
        let name = Some(change.alarm_name.as_str());
        let metric_alarm = described.metric_alarms().iter().find(|a| a.alarm_name() == name);
        let composite_alarm = described.composite_alarms().iter().find(|a| a.alarm_name() == name);
        let comparison_operator = metric_alarm
            .and_then(|a| a.comparison_operator())
            .map(|op| op.as_str().to_owned())
            .or_else(|| change.comparison_operator.clone());
        let now = match (metric_alarm, composite_alarm) {
            (Some(a), _) => {
                alarm_now(a.state_value(), a.state_transitioned_timestamp().or(a.state_updated_timestamp()))
            }
            (None, Some(a)) => {
                alarm_now(a.state_value(), a.state_transitioned_timestamp().or(a.state_updated_timestamp()))
            }
            (None, None) => None,
        };
        if let Some(tags) = early_tags {
            return Ok(AlarmFacts { tags, comparison_operator, now });
        }
        let described_arn =
            metric_alarm.and_then(|a| a.alarm_arn()).or_else(|| composite_alarm.and_then(|a| a.alarm_arn()));
        let Some(arn) = described_arn else {
            // The alarm is gone and the event named no ARN: nothing to read tags from.
            return Ok(AlarmFacts { tags: vec![], comparison_operator, now });
        };
        Ok(AlarmFacts { tags: self.tags(arn).await?, comparison_operator, now })
    }
}

fn alarm_now(state: Option<&StateValue>, changed_at: Option<&aws_smithy_types::DateTime>) -> Option<AlarmNow> {
    let state = match state? {
        StateValue::Alarm => AlarmState::Alarm,
        StateValue::Ok => AlarmState::Ok,
        _ => AlarmState::InsufficientData,
    };
    // CloudWatch always sends a timestamp; without one the change cannot be placed, so it counts
    // as later than any event (no action).
    let changed_at_millis = changed_at.and_then(|t| t.to_millis().ok()).unwrap_or(i64::MAX / 4);
    Some(AlarmNow { state, changed_at_millis })
}

impl AwsAlarms {
    async fn tags(&self, arn: &str) -> PortResult<Tags> {
        let tags = self
            .cloudwatch
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| classify("cloudwatch:ListTagsForResource", e))?;
        Ok(tags.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect())
    }
}
