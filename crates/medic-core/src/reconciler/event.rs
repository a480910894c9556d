//! The EventBridge scheduled event that runs the reconciler.

use serde_json::Value;

use crate::envelope::{eventbridge, MalformedEvent};
use crate::time::EpochSeconds;

pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// One run of the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub event_id: String,
    pub at: EpochSeconds,
    pub account: String,
    pub region: String,
}

/// Parses an EventBridge Scheduler or rule `Scheduled Event` (`source` `aws.events` or
/// `aws.scheduler`).
pub fn parse_tick(raw: &Value) -> Result<Tick, MalformedEvent> {
    let delivered = eventbridge::<Value>(raw, SCHEDULED_EVENT)?;
    let event = &delivered.event;
    if !matches!(event.source.as_str(), "aws.events" | "aws.scheduler") || event.detail_type != SCHEDULED_EVENT {
        return Err(MalformedEvent::new(format!(
            "unsupported event: source `{}` with detail-type `{}` (the reconciler runs on `{SCHEDULED_EVENT}`)",
            event.source, event.detail_type
        )));
    }
    Ok(Tick { account: delivered.account(), region: delivered.region(), event_id: delivered.id, at: delivered.at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Value {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/reconciler/scheduled.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn given_the_scheduled_event_fixture_when_parsed_then_a_tick_at_its_time() {
        let tick = parse_tick(&fixture()).unwrap();
        assert_eq!(tick.at, crate::time::parse_timestamp("2026-11-21T09:20:00Z").unwrap());
        assert!(!tick.event_id.is_empty());
    }

    #[test]
    fn given_other_events_when_parsed_as_a_tick_then_error_names_the_problem() {
        let mut ec2 = fixture();
        ec2["source"] = "aws.ec2".into();
        let mut no_time = fixture();
        no_time["time"] = "soon".into();
        let cases = [
            (ec2, "unsupported event: source `aws.ec2`"),
            (no_time, "`time` `soon` is not an RFC 3339 timestamp"),
            (serde_json::json!([]), "Scheduled Event"),
        ];
        for (event, expected) in cases {
            let error = parse_tick(&event).expect_err("must be rejected").to_string();
            assert!(error.contains(expected), "{error} should contain {expected}");
        }
    }
}
