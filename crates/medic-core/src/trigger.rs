//! Raw event JSON → a normalized [`Trigger`], whichever function it is for. Each function's event
//! types and parser live in its own module; this one only names them together for the engine.

use serde_json::Value;

use crate::accounts::AccountRegion;
use crate::alarm_responder::AlarmChanged;
use crate::envelope::{json_kind, string_field, MalformedEvent};
use crate::instance_healer::{self, InstanceStateChanged, EC2_STATE_CHANGE};
use crate::notifier::{AsgActivity, HealthEvent, NoticeEvent};
use crate::rds_rerouter::DbEvent;
use crate::reconciler::Finding;

/// A normalized event: what happened, to what, and the key that makes handling it idempotent.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    InstanceStateChanged(InstanceStateChanged),
    AlarmChanged(AlarmChanged),
    DbEvent(DbEvent),
    AsgActivity(AsgActivity),
    Health(HealthEvent),
    /// A finding of the reconciler, and in central mode the account and region it was found in
    /// (`None` in single-account mode).
    Reconcile(Finding, Option<AccountRegion>),
}

impl Trigger {
    /// The ledger key: the same event delivered twice yields the same key.
    pub fn idempotency_key(&self) -> String {
        match self {
            Self::InstanceStateChanged(change) => format!("eventbridge:{}", change.event_id),
            Self::AlarmChanged(change) => change.idempotency_key(),
            Self::DbEvent(event) => event.idempotency_key(),
            Self::AsgActivity(activity) => format!("eventbridge:{}", activity.event_id),
            Self::Health(event) => format!("eventbridge:{}", event.event_id),
            Self::Reconcile(finding, _) => finding.idempotency_key(),
        }
    }

    /// The resource the event is about, for logs, notices and cooldown keys.
    pub fn resource(&self) -> &str {
        match self {
            Self::InstanceStateChanged(change) => &change.instance_id,
            Self::AlarmChanged(change) => &change.alarm_name,
            Self::DbEvent(event) => &event.identifier,
            Self::AsgActivity(activity) => &activity.group,
            Self::Health(event) => &event.arn,
            Self::Reconcile(finding, _) => finding.resource(),
        }
    }

    /// The account and region of the event's resources; for the reconciler's findings, where it
    /// found them in central mode (`None` in single-account mode).
    pub fn origin(&self) -> Option<AccountRegion> {
        let (account, region) = match self {
            Self::InstanceStateChanged(change) => (&change.account, &change.region),
            Self::AlarmChanged(change) => (&change.account, &change.region),
            Self::DbEvent(event) => (&event.account, &event.region),
            Self::AsgActivity(activity) => (&activity.account, &activity.region),
            Self::Health(event) => (&event.account, &event.region),
            Self::Reconcile(_, at) => return at.clone(),
        };
        Some(AccountRegion::new(account.as_str(), region.as_str()))
    }

    /// A short description of what happened, for notices.
    pub fn summary(&self) -> String {
        match self {
            Self::InstanceStateChanged(change) => {
                format!("EC2 instance {} entered state {}", change.instance_id, change.state)
            }
            Self::AlarmChanged(change) => change.summary(),
            Self::DbEvent(event) => event.summary(),
            Self::AsgActivity(activity) => activity.summary(),
            Self::Health(event) => event.summary(),
            Self::Reconcile(finding, _) => finding.summary(),
        }
    }
}

impl From<NoticeEvent> for Trigger {
    fn from(event: NoticeEvent) -> Self {
        match event {
            NoticeEvent::AsgActivity(activity) => Self::AsgActivity(activity),
            NoticeEvent::Health(event) => Self::Health(event),
        }
    }
}

/// Parses any event medic accepts. Unknown sources and detail-types are rejected, never guessed.
pub fn parse_event(raw: &Value) -> Result<Trigger, MalformedEvent> {
    let object = raw
        .as_object()
        .ok_or_else(|| MalformedEvent::new(format!("expected a JSON object, got {}", json_kind(raw))))?;
    let source = string_field(object, "source")?;
    let detail_type = string_field(object, "detail-type")?;
    match (source, detail_type) {
        ("aws.ec2", EC2_STATE_CHANGE) => instance_healer::parse_state_change(raw).map(Trigger::InstanceStateChanged),
        _ => Err(MalformedEvent::new(format!("unsupported event: source `{source}` with detail-type `{detail_type}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::states::Ec2State;
    use serde_json::json;

    fn state_change(detail: Value) -> Value {
        json!({
            "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": EC2_STATE_CHANGE, "source": "aws.ec2", "account": "123456789012",
            "time": "2026-11-21T09:15:02Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0a1b2c3d4e5f67890"],
            "detail": detail
        })
    }

    #[test]
    fn given_state_change_when_parsed_then_trigger_keyed_on_event_id() {
        let trigger =
            parse_event(&state_change(json!({"instance-id": "i-0a1b2c3d4e5f67890", "state": "shutting-down"})));
        let Ok(Trigger::InstanceStateChanged(change)) = trigger else {
            panic!("expected a state change, got {trigger:?}");
        };
        assert_eq!(change.state, Ec2State::ShuttingDown);
        assert_eq!(change.occurred_at, 1_795_252_502);
        assert_eq!(
            Trigger::InstanceStateChanged(change).idempotency_key(),
            "eventbridge:7bf73129-1428-4cd3-a780-95db273d1602"
        );
    }

    #[test]
    fn given_bad_events_when_parsed_then_error_names_the_problem() {
        let mut no_time = state_change(json!({"instance-id": "i-0a1b2c3d4e5f67890", "state": "stopped"}));
        no_time["time"] = json!("yesterday");
        let cases = [
            (json!([1, 2]), "expected a JSON object, got an array"),
            (json!({"detail-type": EC2_STATE_CHANGE}), "missing field `source`"),
            (json!({"source": 7, "detail-type": "x"}), "field `source` must be a string, got a number"),
            (json!({"source": "aws.s3", "detail-type": "Object Created"}), "unsupported event: source `aws.s3`"),
            (state_change(json!({"state": "stopped"})), "missing field `instance-id`"),
            (
                state_change(json!({"instance-id": "i-0a1b2c3d4e5f67890", "state": "melted"})),
                "unknown variant `melted`",
            ),
            (state_change(json!({"instance-id": "vol-123", "state": "stopped"})), "is not an EC2 instance id"),
            (no_time, "`time` `yesterday` is not an RFC 3339 timestamp"),
        ];
        for (event, expected) in cases {
            let error = parse_event(&event).expect_err("must be rejected");
            assert!(error.to_string().contains(expected), "{error} should contain {expected}");
        }
    }
}

#[cfg(test)]
mod no_panic {
    //! Property: any JSON at all gives a `Trigger` or a `MalformedEvent`, never a panic. A small
    //! deterministic generator (no extra crates) builds random values and mutates a real event.

    use super::*;
    use serde_json::json;

    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const WORDS: [&str; 10] = [
        "aws.ec2",
        EC2_STATE_CHANGE,
        "stopped",
        "i-0abc1234",
        "",
        "Z",
        "ü—\u{0}",
        "2026-11-21T09:15:02Z",
        "detail",
        "instance-id",
    ];

    fn value(rng: &mut Lcg, depth: u32) -> Value {
        match rng.below(if depth > 3 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => json!(rng.next() as i64 - (1 << 30)),
            3 => json!(f64::from(u32::try_from(rng.below(1000)).unwrap_or(0)) / 7.0),
            4 => Value::String(WORDS[usize::try_from(rng.below(10)).unwrap_or(0)].to_owned()),
            5 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
            _ => Value::Object(
                (0..rng.below(5))
                    .map(|_| (WORDS[usize::try_from(rng.below(10)).unwrap_or(0)].to_owned(), value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn given_arbitrary_json_when_parsed_then_never_panics() {
        let mut rng = Lcg(0x5eed);
        for _ in 0..20_000 {
            let value = value(&mut rng, 0);
            let _ = parse_event(&value);
            let _ = crate::alarm_responder::parse_alarm_event(&value);
            let _ = crate::rds_rerouter::parse_db_event(&value);
        }
    }

    #[test]
    fn given_alarm_fixtures_with_one_field_replaced_when_parsed_then_never_panics() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/alarm-responder");
        let fixtures: Vec<Value> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap())
            .collect();
        let mut rng = Lcg(7);
        for _ in 0..5_000 {
            let index = usize::try_from(rng.below(fixtures.len() as u64)).unwrap_or(0);
            let mut event = fixtures[index].clone();
            let replacement = value(&mut rng, 1);
            for key in ["detail", "alarmData", "Records", "state", "source", "time"] {
                if rng.below(3) == 0 && event.get(key).is_some() {
                    event[key] = replacement.clone();
                }
            }
            if let Some(state) = event.pointer_mut("/detail/state/timestamp") {
                *state = value(&mut rng, 2);
            }
            let _ = crate::alarm_responder::parse_alarm_event(&event);
        }
    }

    #[test]
    fn given_real_event_with_one_field_replaced_when_parsed_then_never_panics() {
        let mut rng = Lcg(42);
        let paths: [&[&str]; 8] = [
            &["id"],
            &["source"],
            &["detail-type"],
            &["time"],
            &["detail"],
            &["detail", "instance-id"],
            &["detail", "state"],
            &["resources"],
        ];
        for _ in 0..20_000 {
            let mut event = json!({
                "version": "0", "id": "e", "detail-type": EC2_STATE_CHANGE, "source": "aws.ec2",
                "account": "1", "time": "2026-11-21T09:15:02Z", "region": "us-east-1", "resources": [],
                "detail": {"instance-id": "i-0abc1234", "state": "stopped"}
            });
            let path = paths[usize::try_from(rng.below(8)).unwrap_or(0)];
            let replacement = value(&mut rng, 1);
            let mut target = &mut event;
            for key in &path[..path.len() - 1] {
                target = &mut target[*key];
            }
            target[path[path.len() - 1]] = replacement;
            let _ = parse_event(&event);
        }
    }
}
