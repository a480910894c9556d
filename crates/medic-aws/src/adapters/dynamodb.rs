//! The ledger in one DynamoDB table (partition key `pk`, TTL attribute `expires_at`), written
//! only with conditional writes so concurrent invocations cannot both win.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use medic_core::accounts::{account_pause_key, AccountRegion};
use medic_core::guard::{self, Claim, Cooldown, InFlight, InFlightEntry, LedgerStatus};
use medic_core::time::EpochSeconds;
use medic_core::{Action, Policy};

use crate::error::{classify, PortError};
use crate::ports::{GuardItems, Ledger, PortResult, Refusal, Take};

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
    policy: Policy,
    /// Central mode: what every key starts with ([`AccountRegion::ledger_prefix`]); empty in
    /// single-account mode, whose keys stay as they were.
    prefix: String,
    /// Central mode: the account's own pause switch, read beside medic's.
    account_pause: Option<String>,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>, policy: &Policy) -> Self {
        Self { client, table: table.into(), policy: policy.clone(), prefix: String::new(), account_pause: None }
    }

    /// The ledger a function is built with: medic's table through `home`, under `at`'s keys in
    /// central mode.
    pub fn for_function(home: &aws_config::SdkConfig, config: &crate::MedicConfig, at: Option<&AccountRegion>) -> Self {
        let ledger = Self::new(Client::new(home), config.ledger_table.clone(), &config.policy);
        match at {
            Some(at) => ledger.scoped(at),
            None => ledger,
        }
    }

    /// The ledger of one account and region in central mode: its keys apart from every other's,
    /// and its account's pause switch read beside medic's.
    pub fn scoped(self, at: &AccountRegion) -> Self {
        Self { prefix: at.ledger_prefix(), account_pause: Some(account_pause_key(&at.account)), ..self }
    }

    /// The stored key of ledger key `key`.
    fn pk(&self, key: &str) -> AttributeValue {
        AttributeValue::S(format!("{}{key}", self.prefix))
    }

    async fn get(&self, key: &str) -> PortResult<Option<Item>> {
        self.get_stored(self.pk(key)).await
    }

    async fn get_stored(&self, pk: AttributeValue) -> PortResult<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        Ok(output.item)
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        self.delete_stored(self.pk(key)).await
    }

    async fn delete_stored(&self, pk: AttributeValue) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk)
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

    /// Turns the pause switch on with its reason (quoted in every notice while it is on):
    /// medic's own, or in central mode one account's.
    pub async fn pause(&self, account: Option<&str>, reason: &str, now: EpochSeconds) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pause_key(account)))
            .item("reason", s(reason))
            .item("started_at", n(now))
            .send()
            .await
            .map_err(|e| classify("dynamodb:PutItem(pause)", e))?;
        Ok(())
    }

    /// Clears the pause switch: medic's own, or one account's.
    pub async fn resume(&self, account: Option<&str>) -> PortResult<()> {
        self.delete_stored(s(&pause_key(account))).await
    }
}

fn pause_key(account: Option<&str>) -> String {
    account.map_or_else(|| guard::PAUSE_KEY.to_owned(), account_pause_key)
}

const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn number_attr(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// A cooldown, lock or mark is written only where none is running.
const COOLDOWN_FREE: &str = "attribute_not_exists(pk) OR #until <= :now";

/// The item of a cooldown, lock or mark started now for event `started_by`, stamped with the
/// write's `token`, recording the action it is started for (`intent`) as not done yet.
fn cooldown_item(
    pk: AttributeValue,
    token: &str,
    until: EpochSeconds,
    now: EpochSeconds,
    started_by: &str,
    intent: Option<&Action>,
) -> Item {
    let mut item = HashMap::from([
        ("pk".to_owned(), pk),
        ("write".to_owned(), s(token)),
        ("until".to_owned(), n(until)),
        ("started_by".to_owned(), s(started_by)),
        ("started_at".to_owned(), n(now)),
        ("done".to_owned(), AttributeValue::Bool(false)),
        ("expires_at".to_owned(), n(until + 3600)),
    ]);
    if let Some(json) = intent.and_then(|action| serde_json::to_string(action).ok()) {
        item.insert("intent".to_owned(), s(&json));
    }
    item
}

/// The cooldown, lock or mark an item holds, running or not.
fn cooldown_of(item: &Item) -> Option<Cooldown> {
    Some(Cooldown {
        until: number_attr(item, "until")?,
        started_by: string_attr(item, "started_by").unwrap_or_default().to_owned(),
        // Items written before intent and done were told apart have no `done`: they meant done.
        done: item.get("done").and_then(|v| v.as_bool().ok()).copied().unwrap_or(true),
        started_at: number_attr(item, "started_at").unwrap_or_default(),
        // An intent that no longer parses (written by another version) is as good as none: the
        // retry then goes on with the action it decided.
        intent: string_attr(item, "intent").and_then(|json| serde_json::from_str(json).ok()),
    })
}

/// A group's replacements in flight, from its item (`version`, and `entries` by name).
fn in_flight_of(item: &Item) -> Option<InFlight> {
    let version = number_attr(item, "version")?;
    let entries = item.get("entries").and_then(|v| v.as_m().ok());
    let entries = entries.into_iter().flatten().filter_map(|(_, entry)| {
        let entry = entry.as_m().ok()?;
        Some(InFlightEntry {
            event: string_attr(entry, "event")?.to_owned(),
            instance_id: string_attr(entry, "instance_id")?.to_owned(),
            taken_at_ms: number_attr(entry, "taken_at_ms")?,
            applied_at_ms: number_attr(entry, "applied_at_ms"),
        })
    });
    Some(InFlight { version, entries: entries.collect() })
}

fn in_flight_entry(entry: &InFlightEntry) -> AttributeValue {
    let mut map = HashMap::from([
        ("event".to_owned(), s(&entry.event)),
        ("instance_id".to_owned(), s(&entry.instance_id)),
        ("taken_at_ms".to_owned(), n(entry.taken_at_ms)),
    ]);
    if let Some(applied) = entry.applied_at_ms {
        map.insert("applied_at_ms".to_owned(), n(applied));
    }
    AttributeValue::M(map)
}

fn built<T>(built: Result<T, aws_sdk_dynamodb::error::BuildError>) -> PortResult<T> {
    built.map_err(|e| PortError::permanent("dynamodb:TransactWriteItems", e.to_string()))
}

impl DynamoLedger {
    /// The items at the stored keys `pks` (up to 100) in one consistent read, unprocessed keys
    /// asked for again.
    async fn batch_get(&self, pks: Vec<AttributeValue>) -> PortResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut pending = Some(built(
            KeysAndAttributes::builder()
                .set_keys(Some(pks.into_iter().map(|pk| HashMap::from([("pk".to_owned(), pk)])).collect()))
                .consistent_read(true)
                .build(),
        )?)
        .filter(|request| !request.keys().is_empty());
        let mut rounds = 0;
        while let Some(request) = pending.take() {
            rounds += 1;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| classify("dynamodb:BatchGetItem", e))?;
            items.extend(output.responses.and_then(|mut r| r.remove(&self.table)).into_iter().flatten());
            pending = output.unprocessed_keys.and_then(|mut left| left.remove(&self.table));
            if pending.is_some() && rounds >= 3 {
                return Err(PortError::retryable("dynamodb:BatchGetItem", "keys left unprocessed three times"));
            }
        }
        Ok(items)
    }

    /// One write of the guard's transaction, stamped with the transaction's `token`.
    fn transact_item(&self, write: &Take<'_>, token: &str, now: EpochSeconds) -> PortResult<TransactWriteItem> {
        let (table, item) = (&self.table, TransactWriteItem::builder());
        Ok(match *write {
            Take::Cooldown { key, until, started_by, intent } => {
                let put = Put::builder()
                    .table_name(table)
                    .set_item(Some(cooldown_item(self.pk(key), token, until, now, started_by, intent)))
                    .condition_expression(COOLDOWN_FREE)
                    .expression_attribute_names("#until", "until")
                    .expression_attribute_values(":now", n(now))
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
                item.put(built(put.build())?).build()
            }
            Take::Slot { key, member, max, expires_at } => {
                let update = Update::builder()
                    .table_name(table)
                    .key("pk", self.pk(key))
                    .update_expression("ADD #members :members SET expires_at = :expires")
                    .condition_expression(
                        "attribute_not_exists(#members) OR size(#members) < :max OR contains(#members, :member)",
                    )
                    .expression_attribute_names("#members", "members")
                    .expression_attribute_values(":members", AttributeValue::Ss(vec![member.to_owned()]))
                    .expression_attribute_values(":member", s(member))
                    .expression_attribute_values(":max", n(max))
                    .expression_attribute_values(":expires", n(expires_at));
                item.update(built(update.build())?).build()
            }
            Take::InFlight { key, entry, read, prune } => {
                let mut update = Update::builder()
                    .table_name(table)
                    .key("pk", self.pk(key))
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_names("#entries", "entries")
                    .expression_attribute_names("#write", "write")
                    .expression_attribute_values(":next", n(read.unwrap_or(0) + 1))
                    .expression_attribute_values(":token", s(token))
                    .expression_attribute_values(":expires", n(now + guard::IN_FLIGHT_SECONDS + 3600))
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
                let set = "SET #version = :next, #write = :token, expires_at = :expires";
                update = match read {
                    None => update
                        .update_expression(format!("{set}, #entries = :entries"))
                        .condition_expression("attribute_not_exists(pk)")
                        .expression_attribute_values(
                            ":entries",
                            AttributeValue::M(HashMap::from([(entry.name(), in_flight_entry(entry))])),
                        ),
                    Some(version) => {
                        let mut expression = format!("{set}, #entries.#mine = :entry");
                        for (index, name) in prune.iter().enumerate() {
                            expression.push_str(if index == 0 { " REMOVE " } else { ", " });
                            expression.push_str(&format!("#entries.#p{index}"));
                            update = update.expression_attribute_names(format!("#p{index}"), name);
                        }
                        update
                            .update_expression(expression)
                            .condition_expression("#version = :read")
                            .expression_attribute_names("#mine", entry.name())
                            .expression_attribute_values(":entry", in_flight_entry(entry))
                            .expression_attribute_values(":read", n(version))
                    }
                };
                item.update(built(update.build())?).build()
            }
        })
    }
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
            .item("pk", self.pk(key))
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
            .item("pk", self.pk(key))
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
            .key("pk", self.pk(key))
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
        Ok(self.get(key).await?.as_ref().and_then(cooldown_of).filter(|cooldown| cooldown.until > now))
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
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(cooldown_item(self.pk(key), &token, until, now, started_by, intent)))
            .condition_expression(COOLDOWN_FREE)
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
            .key("pk", self.pk(key))
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

    async fn remove_from_set(&self, key: &str, member: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.pk(key))
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
            .key("pk", self.pk(key))
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
        let items = match &self.account_pause {
            // Central mode: medic's switch and the account's, in one request.
            Some(account) => self.batch_get(vec![s(guard::PAUSE_KEY), s(account)]).await?,
            None => self.get_stored(s(guard::PAUSE_KEY)).await?.into_iter().collect(),
        };
        let reason = |item: &Item| string_attr(item, "reason").unwrap_or("no reason given").to_owned();
        let medic = items.iter().find(|item| string_attr(item, "pk") == Some(guard::PAUSE_KEY));
        Ok(medic.or(items.first()).map(reason))
    }

    async fn read_guard(&self, keys: &[String], now: EpochSeconds) -> PortResult<GuardItems> {
        let mut unique: Vec<&String> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut read = GuardItems::default();
        for item in self.batch_get(unique.iter().map(|key| self.pk(key)).collect()).await? {
            let Some(key) = string_attr(&item, "pk").and_then(|pk| pk.strip_prefix(self.prefix.as_str())) else {
                continue;
            };
            if let Some(cooldown) = cooldown_of(&item).filter(|cooldown| cooldown.until > now) {
                read.cooldowns.insert(key.to_owned(), cooldown);
            }
            if let Some(members) = item.get("members").and_then(|v| v.as_ss().ok()) {
                read.sets.insert(key.to_owned(), members.clone());
            }
            if let Some(in_flight) = in_flight_of(&item) {
                read.in_flight.insert(key.to_owned(), in_flight);
            }
        }
        Ok(read)
    }

    async fn take(&self, writes: &[Take<'_>], now: EpochSeconds) -> PortResult<Result<(), Refusal>> {
        let token = write_token();
        let items =
            writes.iter().map(|write| self.transact_item(write, &token, now)).collect::<PortResult<Vec<_>>>()?;
        let written = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let error = match written {
            Ok(_) => return Ok(Ok(())),
            Err(error) => error,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) = error.as_service_error() else {
            return Err(classify("dynamodb:TransactWriteItems", error));
        };
        let reasons = canceled.cancellation_reasons();
        let failed: Vec<(usize, Option<&Item>)> = reasons
            .iter()
            .enumerate()
            .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
            .map(|(index, reason)| (index, reason.item()))
            .collect();
        if failed.is_empty()
            || reasons.iter().any(|r| !matches!(r.code(), None | Some("None" | "ConditionalCheckFailed")))
        {
            // TransactionConflict (another transaction on one of these items), throttling: the
            // retry decides again.
            return Err(classify("dynamodb:TransactWriteItems", error));
        }
        // Sent again after an answer was lost, the transaction fails against its own first
        // writes, which carry its token.
        let mine = |item: Option<&Item>| item.and_then(|item| string_attr(item, "write")) == Some(token.as_str());
        Ok(match failed.iter().find(|(_, item)| !mine(*item)) {
            None => Ok(()),
            Some((index, item)) => Err(Refusal { index: *index, running: item.and_then(cooldown_of) }),
        })
    }

    async fn mark_applied(&self, key: &str, entry: &str, at_ms: i64) -> PortResult<()> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.pk(key))
            .update_expression("SET #entries.#mine.applied_at_ms = :at")
            .condition_expression("attribute_exists(#entries.#mine)")
            .expression_attribute_names("#entries", "entries")
            .expression_attribute_names("#mine", entry)
            .expression_attribute_values(":at", n(at_ms))
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem(applied)", e));
        // An entry pruned meanwhile has nothing left to mark.
        lost_condition("dynamodb:UpdateItem(applied)", updated).map(|_| ())
    }

    async fn drop_in_flight(&self, key: &str, entry: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.pk(key))
            .update_expression("REMOVE #entries.#mine")
            .expression_attribute_names("#entries", "entries")
            .expression_attribute_names("#mine", entry)
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem(drop in flight)", e))?;
        Ok(())
    }
}
