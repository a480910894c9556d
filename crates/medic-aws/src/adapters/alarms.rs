//! CloudWatch: an alarm's comparison operator and tags, which the alarm's event may not carry.

use aws_sdk_cloudwatch::types::AlarmType;
use aws_sdk_cloudwatch::Client;
use medic_core::alarm::AlarmChanged;
use medic_core::responder::AlarmFacts;
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
        // The SNS shape carries the operator and the ARN: only the tags are missing.
        if let (Some(operator), Some(arn)) = (&change.comparison_operator, &change.alarm_arn) {
            return Ok(AlarmFacts { tags: self.tags(arn).await?, comparison_operator: Some(operator.clone()) });
        }
        let described = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(&change.alarm_name)
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(|e| classify("cloudwatch:DescribeAlarms", e))?;
        let metric_alarm =
            described.metric_alarms().iter().find(|a| a.alarm_name() == Some(change.alarm_name.as_str()));
        let comparison_operator = metric_alarm.and_then(|a| a.comparison_operator()).map(|op| op.as_str().to_owned());
        let described_arn = metric_alarm.and_then(|a| a.alarm_arn()).or_else(|| {
            described
                .composite_alarms()
                .iter()
                .find(|a| a.alarm_name() == Some(change.alarm_name.as_str()))
                .and_then(|a| a.alarm_arn())
        });
        let Some(arn) = change.alarm_arn.as_deref().or(described_arn) else {
            // The alarm is gone and the event named no ARN: nothing to read tags from.
            return Ok(AlarmFacts { tags: vec![], comparison_operator });
        };
        Ok(AlarmFacts { tags: self.tags(arn).await?, comparison_operator })
    }
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
