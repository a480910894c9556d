//! The ledger in one DynamoDB table (partition key `pk`, TTL attribute `expires_at`), written
//! only with conditional writes so concurrent invocations cannot both win.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use medic_core::guard::{self, BreakerVerdict, Claim, Cooldown, LedgerStatus};
use medic_core::time::EpochSeconds;
use medic_core::{Action, Policy};

use crate::error::{classify, PortError};
use crate::ports::{Ledger, PortResult};

#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
    policy: Policy,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>, policy: &Policy) -> Self {
        Self { client, table: table.into(), policy: policy.clone() }
    }

    async fn get(&self, key: &str) -> PortResult<Option<std::collections::HashMap<String, AttributeValue>>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        Ok(output.item)
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .send()
            .await
            .map_err(|e| classify("dynamodb:DeleteItem", e))?;
        Ok(())
    }
}

/// One ledger item as the operator CLI reads it: every attribute medic writes, where present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerItem {
    pub key: String,
    pub status: Option<String>,
    pub outcome: Option<String>,
    pub completed_at: Option<EpochSeconds>,
    pub until: Option<EpochSeconds>,
    pub started_by: Option<String>,
    pub started_at: Option<EpochSeconds>,
    pub done: Option<bool>,
    pub members: Vec<String>,
    pub reason: Option<String>,
    pub expires_at: Option<EpochSeconds>,
}

impl DynamoLedger {
    /// Every item of the table (a paginated Scan): for the operator CLI, never for a function.
    pub async fn scan(&self) -> PortResult<Vec<LedgerItem>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("dynamodb:Scan", e))?;
            items.extend(page.items().iter().map(|item| LedgerItem {
                key: string_attr(item, "pk").unwrap_or_default().to_owned(),
                status: string_attr(item, "status").map(str::to_owned),
                outcome: string_attr(item, "outcome").map(str::to_owned),
                completed_at: number_attr(item, "completed_at"),
                until: number_attr(item, "until"),
                started_by: string_attr(item, "started_by").map(str::to_owned),
                started_at: number_attr(item, "started_at"),
                done: item.get("done").and_then(|v| v.as_bool().ok()).copied(),
                members: item.get("members").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default(),
                reason: string_attr(item, "reason").map(str::to_owned),
                expires_at: number_attr(item, "expires_at"),
            }));
            start = page.last_evaluated_key().filter(|key| !key.is_empty()).cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Turns the pause switch on with its reason (quoted in every notice while it is on).
    pub async fn pause(&self, reason: &str, now: EpochSeconds) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(guard::PAUSE_KEY))
            .item("reason", s(reason))
            .item("started_at", n(now))
            .send()
            .await
            .map_err(|e| classify("dynamodb:PutItem(pause)", e))?;
        Ok(())
    }

    /// Clears the pause switch.
    pub async fn resume(&self) -> PortResult<()> {
        self.delete(guard::PAUSE_KEY).await
    }
}

const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn number_attr(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn string_attr<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// `Ok(false)` when a conditional write lost; every other failure is classified.
/// A value unique to one conditional write, stored with it. When the answer to a write that
/// DynamoDB applied is lost (a reset, a timeout), the SDK sends the same request again and its
/// condition fails against the first: finding its own token tells that retry the write is its own.
fn write_token() -> String {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let count = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos}-{count}", std::process::id())
}

fn lost_condition<E>(operation: &str, result: Result<E, PortError>) -> PortResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(error) if error.code.as_deref() == Some(CONDITION_FAILED) => Ok(false),
        Err(error) => Err(error),
    }
    .map_err(|error: PortError| PortError { operation: operation.into(), ..error })
}

impl Ledger for DynamoLedger {
    async fn claim(&self, key: &str, now: EpochSeconds) -> PortResult<Claim> {
        let token = write_token();
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("write", s(&token))
            .item("status", s(LedgerStatus::InProgress.as_str()))
            .item("in_progress_until", n(now + self.policy.in_progress_seconds))
            .item("expires_at", n(guard::event_expiry(&self.policy, now)))
            .condition_expression("attribute_not_exists(pk) OR (#status = :in_progress AND in_progress_until < :now)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(LedgerStatus::InProgress.as_str()))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|e| classify("dynamodb:PutItem(claim)", e));
        if lost_condition("dynamodb:PutItem(claim)", written)? {
            return Ok(Claim::Claimed);
        }
        let Some(item) = self.get(key).await? else {
            // Deleted between our write and our read: the other claimant released it.
            return Err(PortError::retryable("dynamodb:GetItem(claim)", format!("claim on {key} released meanwhile")));
        };
        if string_attr(&item, "write") == Some(token.as_str()) {
            return Ok(Claim::Claimed);
        }
        if string_attr(&item, "status") == Some(LedgerStatus::Completed.as_str()) {
            let notified = item.get("notified").and_then(|v| v.as_bool().ok()).copied().unwrap_or(true);
            return Ok(Claim::Completed {
                outcome: string_attr(&item, "outcome").unwrap_or("null").to_owned(),
                pending_notice: if notified { None } else { string_attr(&item, "notice").map(str::to_owned) },
            });
        }
        Ok(Claim::InProgress)
    }

    async fn complete(&self, key: &str, outcome: &str, notice: Option<&str>, now: EpochSeconds) -> PortResult<()> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("status", s(LedgerStatus::Completed.as_str()))
            .item("outcome", s(outcome))
            .item("completed_at", n(now))
            .item("notified", AttributeValue::Bool(notice.is_none()))
            .item("expires_at", n(guard::event_expiry(&self.policy, now)));
        if let Some(notice) = notice {
            put = put.item("notice", s(notice));
        }
        put.send().await.map_err(|e| classify("dynamodb:PutItem(complete)", e))?;
        Ok(())
    }

    async fn mark_notified(&self, key: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression("SET notified = :true")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem(notified)", e))?;
        Ok(())
    }

    async fn release(&self, key: &str) -> PortResult<()> {
        self.delete(key).await
    }

    async fn cooldown_until(&self, key: &str, now: EpochSeconds) -> PortResult<Option<Cooldown>> {
        let Some(item) = self.get(key).await? else { return Ok(None) };
        let started_by = item.get("started_by").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        // Items written before intent and done were told apart have no `done`: they meant done.
        let done = item.get("done").and_then(|v| v.as_bool().ok()).copied().unwrap_or(true);
        let started_at = number_attr(&item, "started_at").unwrap_or_default();
        // An intent that no longer parses (written by another version) is as good as none: the
        // retry then goes on with the action it decided.
        let intent = string_attr(&item, "intent").and_then(|json| serde_json::from_str(json).ok());
        Ok(number_attr(&item, "until").filter(|until| *until > now).map(|until| Cooldown {
            until,
            started_by,
            done,
            started_at,
            intent,
        }))
    }

    async fn start_cooldown(
        &self,
        key: &str,
        until: EpochSeconds,
        now: EpochSeconds,
        started_by: &str,
        intent: Option<&Action>,
    ) -> PortResult<bool> {
        let token = write_token();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("write", s(&token))
            .item("until", n(until))
            .item("started_by", s(started_by))
            .item("started_at", n(now))
            .item("done", AttributeValue::Bool(false))
            .item("expires_at", n(until + 3600));
        if let Some(json) = intent.and_then(|action| serde_json::to_string(action).ok()) {
            put = put.item("intent", s(&json));
        }
        let written = put
            .condition_expression("attribute_not_exists(pk) OR #until <= :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            // The item that stood in the way comes back with the failure: no second read.
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(failed.item().and_then(|item| string_attr(item, "write")) == Some(token.as_str()))
                }
                _ => Err(classify("dynamodb:PutItem(cooldown)", error)),
            },
        }
    }

    async fn mark_done(&self, key: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression("SET done = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem(done)", e))?;
        Ok(())
    }

    async fn forget(&self, key: &str) -> PortResult<()> {
        self.delete(key).await
    }

    async fn breaker_acquire(
        &self,
        key: &str,
        member: &str,
        max: u32,
        expires_at: EpochSeconds,
    ) -> PortResult<BreakerVerdict> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression("ADD #members :members SET expires_at = :expires")
            .condition_expression(
                "attribute_not_exists(#members) OR size(#members) < :max OR contains(#members, :member)",
            )
            .expression_attribute_names("#members", "members")
            .expression_attribute_values(":members", AttributeValue::Ss(vec![member.to_owned()]))
            .expression_attribute_values(":member", s(member))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":expires", n(expires_at))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem(breaker)", e));
        match updated {
            Ok(output) => {
                let count = output
                    .attributes
                    .as_ref()
                    .and_then(|item| item.get("members"))
                    .and_then(|v| v.as_ss().ok())
                    .map_or(1, Vec::len);
                Ok(BreakerVerdict::Allowed { count: u32::try_from(count).unwrap_or(u32::MAX) })
            }
            Err(error) if error.code.as_deref() == Some(CONDITION_FAILED) => Ok(BreakerVerdict::Open { max }),
            Err(error) => Err(error),
        }
    }

    async fn remove_from_set(&self, key: &str, member: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression("DELETE #members :members")
            .expression_attribute_names("#members", "members")
            .expression_attribute_values(":members", AttributeValue::Ss(vec![member.to_owned()]))
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem(set remove)", e))?;
        Ok(())
    }

    async fn add_to_set(&self, key: &str, member: &str, expires_at: EpochSeconds) -> PortResult<Vec<String>> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression("ADD #members :member SET expires_at = :expires")
            .expression_attribute_names("#members", "members")
            .expression_attribute_values(":member", AttributeValue::Ss(vec![member.to_owned()]))
            .expression_attribute_values(":expires", n(expires_at))
            // ALL_NEW: an ADD of a member already there leaves the set as it was, and
            // UPDATED_NEW may then leave it out of the answer.
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem(set)", e))?;
        let members = updated.attributes.as_ref().and_then(|item| item.get("members")).and_then(|v| v.as_ss().ok());
        Ok(members.cloned().unwrap_or_else(|| vec![member.to_owned()]))
    }

    async fn set_members(&self, key: &str) -> PortResult<Vec<String>> {
        let item = self.get(key).await?;
        Ok(item.as_ref().and_then(|item| item.get("members")).and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default())
    }

    async fn pause_switch(&self) -> PortResult<Option<String>> {
        let item = self.get(guard::PAUSE_KEY).await?;
        Ok(item.map(|item| string_attr(&item, "reason").unwrap_or("no reason given").to_owned()))
    }
}
