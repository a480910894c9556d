//! What every event parser shares: the EventBridge envelope (aws_lambda_events' type, with what
//! medic requires of it), and [`MalformedEvent`], the error that says in words a human can fix
//! why an event cannot be acted on.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::{parse_timestamp, EpochSeconds};

/// An event medic cannot act on, with the reason in words a human can fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed event: {reason}")]
pub struct MalformedEvent {
    pub reason: String,
}

impl MalformedEvent {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

/// An EventBridge event, typed by aws_lambda_events, with what medic requires of every one and
/// the crate's type leaves optional: a non-empty `id` (the idempotency key) and a `time`.
#[derive(Debug, Clone)]
pub struct Delivered<D: Serialize + DeserializeOwned> {
    pub id: String,
    pub at: EpochSeconds,
    pub event: EventBridgeEvent<D>,
}

impl<D: Serialize + DeserializeOwned> Delivered<D> {
    pub fn account(&self) -> String {
        self.event.account.clone().unwrap_or_default()
    }

    pub fn region(&self) -> String {
        self.event.region.clone().unwrap_or_default()
    }
}

/// Parses `raw` as an EventBridge event about `what`.
pub(crate) fn eventbridge<D: Serialize + DeserializeOwned>(
    raw: &Value,
    what: &str,
) -> Result<Delivered<D>, MalformedEvent> {
    let event: EventBridgeEvent<D> = EventBridgeEvent::deserialize(raw).map_err(|error| {
        // chrono's own error names neither the field nor the value.
        match raw.get("time").and_then(Value::as_str) {
            Some(time) if parse_timestamp(time).is_none() => {
                MalformedEvent::new(format!("`time` `{time}` is not an RFC 3339 timestamp"))
            }
            _ => MalformedEvent::new(format!("{what}: {error}")),
        }
    })?;
    let id = match &event.id {
        None => return Err(MalformedEvent::new(format!("{what}: missing field `id`"))),
        Some(id) if id.trim().is_empty() => return Err(MalformedEvent::new("EventBridge `id` is empty")),
        Some(id) => id.clone(),
    };
    let Some(time) = event.time else {
        return Err(MalformedEvent::new(format!("{what}: missing field `time`")));
    };
    Ok(Delivered { id, at: time.timestamp(), event })
}

pub(crate) fn typed<T: DeserializeOwned>(raw: &Value, what: &str) -> Result<T, MalformedEvent> {
    T::deserialize(raw).map_err(|error| MalformedEvent::new(format!("{what}: {error}")))
}

pub(crate) fn string_field<'a>(
    object: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a str, MalformedEvent> {
    match object.get(name) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(MalformedEvent::new(format!("field `{name}` must be a string, got {}", json_kind(other)))),
        None => Err(MalformedEvent::new(format!("missing field `{name}`"))),
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
