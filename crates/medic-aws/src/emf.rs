//! CloudWatch Embedded Metric Format: one JSON line per decision on stdout, which CloudWatch Logs
//! turns into metrics in the `Medic` namespace without any API call from the function.
//!
//! Metrics, by dimension set:
//! - Function, Action, Outcome: `Remediations` (1 when a mutating call was made), `DecisionLatency` (ms).
//! - Function, Reason: `Skipped` (1 when nothing was done, by reason label).
//! - Function: `Decisions` (always 1), `BreakerOpen` (1 when the breaker refused an action).
//! - Function, Account: `Decisions`, `Remediations`, `BreakerOpen` per account the event came
//!   from (`home` for the reconciler's sweeps of medic's own account); the record also carries
//!   `Region`.
//! - Function, Action: `TimeToHeal` (seconds from a remediation's call to the reconciler's first
//!   check that found it healed), written by the reconciler.

use medic_core::{Outcome, Status};
use serde_json::{json, Value};

pub const NAMESPACE: &str = "Medic";

/// The `Account` of a decision about medic's own account that no event named.
pub const HOME_ACCOUNT: &str = "home";

/// The EMF record of one decision.
pub fn decision_record(function: &str, outcome: &Outcome, latency_ms: f64, timestamp_ms: i64) -> Value {
    let skipped = matches!(outcome.status, Status::Skipped | Status::Duplicate);
    let reason = if skipped { outcome.label.as_deref().unwrap_or("unlabelled") } else { "none" };
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function", "Action", "Outcome"]],
                    "Metrics": [
                        {"Name": "Remediations", "Unit": "Count"},
                        {"Name": "DecisionLatency", "Unit": "Milliseconds"}
                    ]
                },
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function", "Reason"]],
                    "Metrics": [{"Name": "Skipped", "Unit": "Count"}]
                },
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        {"Name": "Decisions", "Unit": "Count"},
                        {"Name": "BreakerOpen", "Unit": "Count"}
                    ]
                },
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function", "Account"]],
                    "Metrics": [
                        {"Name": "Decisions", "Unit": "Count"},
                        {"Name": "Remediations", "Unit": "Count"},
                        {"Name": "BreakerOpen", "Unit": "Count"}
                    ]
                }
            ]
        },
        "Function": function,
        "Action": outcome.action.as_deref().unwrap_or("none"),
        "Outcome": outcome.status.as_str(),
        "Reason": reason,
        "Account": outcome.account.as_deref().unwrap_or(HOME_ACCOUNT),
        "Region": outcome.region.as_deref().unwrap_or(""),
        "Remediations": u8::from(outcome.status == Status::Acted),
        "DecisionLatency": (latency_ms * 1000.0).round() / 1000.0,
        "Skipped": u8::from(skipped),
        "Decisions": 1,
        "BreakerOpen": u8::from(outcome.status == Status::Blocked),
        "event": outcome.event,
    })
}

/// The EMF record of one healed remediation: `function` acted with `action` (its name).
pub fn time_to_heal_record(function: &str, action: &str, seconds: i64, timestamp_ms: i64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function", "Action"]],
                "Metrics": [{"Name": "TimeToHeal", "Unit": "Seconds"}]
            }]
        },
        "Function": function,
        "Action": action,
        "TimeToHeal": seconds,
    })
}

static SILENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops [`emit`] for the rest of the process: for the operator CLI, whose dry-run decisions are
/// no metrics and whose stdout is its answer.
pub fn silence() {
    SILENT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Writes the record as one line on stdout, where Lambda's log capture picks it up.
pub fn emit(record: &Value) {
    if !SILENT.load(std::sync::atomic::Ordering::Relaxed) {
        println!("{record}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Status, action: Option<&str>, label: Option<&str>) -> Outcome {
        Outcome {
            event: "eventbridge:e1".into(),
            resource: "i-1".into(),
            status,
            action: action.map(str::to_owned),
            label: label.map(str::to_owned),
            reason: "because".into(),
            account: Some("111111111111".into()),
            region: Some("eu-west-1".into()),
            severity: None,
            dry_run: false,
            notice: None,
        }
    }

    #[test]
    fn given_a_healed_remediation_when_recorded_then_time_to_heal_by_function_and_action() {
        let record = time_to_heal_record("instance-healer", "replace", 412, 1_795_252_000_000);
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Medic");
        assert_eq!(directive["Dimensions"], json!([["Function", "Action"]]));
        assert_eq!(directive["Metrics"][0], json!({"Name": "TimeToHeal", "Unit": "Seconds"}));
        assert_eq!(
            (record["Function"].as_str(), record["Action"].as_str()),
            (Some("instance-healer"), Some("replace"))
        );
        assert_eq!(record["TimeToHeal"], 412);
    }

    #[test]
    fn given_decisions_when_recorded_then_emf_metrics_and_dimensions_say_what_happened() {
        let rows = [
            (outcome(Status::Acted, Some("replace"), None), ("replace", "acted", "none"), (1, 0, 0)),
            (outcome(Status::Skipped, None, Some("grace-period")), ("none", "skipped", "grace-period"), (0, 1, 0)),
            (
                outcome(Status::Duplicate, Some("replace"), Some("duplicate")),
                ("replace", "duplicate", "duplicate"),
                (0, 1, 0),
            ),
            (
                outcome(Status::Blocked, Some("replace"), Some("breaker-open")),
                ("replace", "blocked", "none"),
                (0, 0, 1),
            ),
            (outcome(Status::WouldAct, Some("replace"), None), ("replace", "would-act", "none"), (0, 0, 0)),
        ];
        for (outcome, (action, status, reason), (remediations, skipped, breaker)) in rows {
            let record = decision_record("instance-healer", &outcome, 12.3456, 1_795_252_000_000);
            assert_eq!(record["_aws"]["Timestamp"], 1_795_252_000_000_i64);
            assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Medic");
            assert_eq!(
                (
                    record["Function"].as_str(),
                    record["Action"].as_str(),
                    record["Outcome"].as_str(),
                    record["Reason"].as_str()
                ),
                (Some("instance-healer"), Some(action), Some(status), Some(reason)),
                "{outcome:?}"
            );
            assert_eq!(
                (record["Remediations"].as_u64(), record["Skipped"].as_u64(), record["BreakerOpen"].as_u64()),
                (Some(remediations), Some(skipped), Some(breaker)),
                "{outcome:?}"
            );
            assert_eq!(record["DecisionLatency"].as_f64(), Some(12.346));
            assert_eq!(
                (record["Account"].as_str(), record["Region"].as_str()),
                (Some("111111111111"), Some("eu-west-1"))
            );
            // Every metric named in a directive is a number in the record, and every dimension a string.
            for directive in record["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
                for metric in directive["Metrics"].as_array().unwrap() {
                    assert!(record[metric["Name"].as_str().unwrap()].is_number(), "{metric}");
                }
                for dimension in directive["Dimensions"][0].as_array().unwrap() {
                    assert!(record[dimension.as_str().unwrap()].is_string(), "{dimension}");
                }
            }
        }
        let sweep = Outcome { account: None, region: None, ..outcome(Status::Acted, Some("start"), None) };
        assert_eq!(decision_record("reconciler", &sweep, 1.0, 0)["Account"], HOME_ACCOUNT);
    }
}
