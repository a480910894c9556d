//! Notices to one SNS topic, with message attributes for subscription filter policies.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use medic_core::notice::Notice;

use crate::error::{classify, PortError};
use crate::ports::{Notifier, PortResult};

#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self { client, topic_arn: topic_arn.into() }
    }
}

impl Notifier for SnsNotifier {
    async fn publish(&self, notice: &Notice) -> PortResult<()> {
        let mut publish =
            self.client.publish().topic_arn(&self.topic_arn).subject(&notice.subject).message(&notice.body);
        for (name, value) in &notice.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(if value.is_empty() { "-" } else { value })
                .build()
                .map_err(|e| PortError::permanent("sns:Publish", e.to_string()))?;
            publish = publish.message_attributes(name, attribute);
        }
        publish.send().await.map_err(|e| classify("sns:Publish", e))?;
        Ok(())
    }
}
