//! The dead-letter queue (SQS): its depth for the reconciler, and taking, returning and deleting
//! messages for `medic redrive`.

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use medic_core::time::EpochSeconds;

use crate::error::classify;
use crate::ports::{DeadLetter, DeadLetterQueue, PortResult};

#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    /// Up to `max` (1–10) messages, hidden from other readers for `visibility_seconds` (0: only
    /// looked at).
    pub async fn receive(&self, max: i32, visibility_seconds: i32) -> PortResult<Vec<DeadLetter>> {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10))
            .visibility_timeout(visibility_seconds)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| classify("sqs:ReceiveMessage", e))?;
        Ok(received
            .messages()
            .iter()
            .map(|message| DeadLetter {
                id: message.message_id().unwrap_or_default().to_owned(),
                receipt: message.receipt_handle().unwrap_or_default().to_owned(),
                body: message.body().unwrap_or_default().to_owned(),
                sent_at: message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|millis| millis.parse::<i64>().ok())
                    .map(|millis| millis / 1000),
                attributes: message
                    .message_attributes()
                    .map(|attributes| {
                        let mut pairs: Vec<(String, String)> = attributes
                            .iter()
                            .filter_map(|(name, value)| Some((name.clone(), value.string_value()?.to_owned())))
                            .collect();
                        pairs.sort();
                        pairs
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Deletes a message taken with [`Self::receive`].
    pub async fn delete(&self, receipt: &str) -> PortResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| classify("sqs:DeleteMessage", e))?;
        Ok(())
    }

    /// Makes a taken message visible again at once (it was not redriven).
    pub async fn put_back(&self, receipt: &str) -> PortResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| classify("sqs:ChangeMessageVisibility", e))?;
        Ok(())
    }
}

impl DeadLetterQueue for SqsDeadLetters {
    async fn depth(&self) -> PortResult<(i64, Option<DeadLetter>)> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| classify("sqs:GetQueueAttributes", e))?;
        let count = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or_default();
        if count == 0 {
            return Ok((0, None));
        }
        let sample = self.receive(10, 0).await?;
        let oldest = sample.into_iter().min_by_key(|m| m.sent_at.unwrap_or(EpochSeconds::MAX));
        Ok((count, oldest.map(|m| DeadLetter { receipt: String::new(), ..m })))
    }
}
