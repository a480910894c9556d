//! What every event parser shares: the EventBridge envelope, and [`MalformedEvent`], the error
//! that says in words a human can fix why an event cannot be acted on.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

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

/// The EventBridge envelope shared by every `aws.*` source.
#[derive(Debug, Clone, Deserialize)]
pub struct EventBridgeEnvelope<D> {
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: String,
    pub time: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: D,
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
