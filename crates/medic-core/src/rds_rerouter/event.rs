//! RDS events from EventBridge ("RDS DB Instance Event", "RDS DB Cluster Event") normalized into
//! a [`DbEvent`]. RDS events are best effort (late, out of order or missing), so the key is
//! SourceArn + EventID + Date, and `SourceIdentifier`'s optional `rds:` prefix is never keyed on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::{eventbridge, MalformedEvent};
use crate::time::parse_timestamp_millis;

pub const DB_INSTANCE_EVENT: &str = "RDS DB Instance Event";
pub const DB_CLUSTER_EVENT: &str = "RDS DB Cluster Event";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbSourceType {
    Instance,
    Cluster,
}

/// What an RDS EventID means to medic. Unknown ids are kept, and ignored with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "event_id", rename_all = "kebab-case")]
pub enum DbEventKind {
    FailoverStarted,
    FailoverToStandbyComplete,
    FailoverCompleted,
    FailoverNotAttempted,
    MultiAzActivationStarted,
    MultiAzActivationComplete,
    InstanceFailed,
    Shutdown,
    Restarted,
    ReplicationError,
    ReplicationResumed,
    ReplicationTerminated,
    ReplicationStopped,
    ReplicationReset,
    ReplicaCreationFailed,
    AuroraFailoverFailed,
    AuroraFailoverRestarted,
    AuroraFailoverFinished,
    AuroraFailoverStartedWithinAz,
    AuroraFailoverStartedAcrossAz,
    Unknown(String),
}

impl DbEventKind {
    pub fn from_event_id(event_id: &str) -> Self {
        match event_id {
            "RDS-EVENT-0013" => Self::FailoverStarted,
            "RDS-EVENT-0015" => Self::FailoverToStandbyComplete,
            "RDS-EVENT-0049" => Self::FailoverCompleted,
            "RDS-EVENT-0034" => Self::FailoverNotAttempted,
            "RDS-EVENT-0050" => Self::MultiAzActivationStarted,
            "RDS-EVENT-0051" => Self::MultiAzActivationComplete,
            "RDS-EVENT-0031" => Self::InstanceFailed,
            "RDS-EVENT-0004" => Self::Shutdown,
            "RDS-EVENT-0006" => Self::Restarted,
            "RDS-EVENT-0045" => Self::ReplicationError,
            "RDS-EVENT-0046" => Self::ReplicationResumed,
            "RDS-EVENT-0057" => Self::ReplicationTerminated,
            "RDS-EVENT-0062" => Self::ReplicationStopped,
            "RDS-EVENT-0063" => Self::ReplicationReset,
            "RDS-EVENT-0202" => Self::ReplicaCreationFailed,
            "RDS-EVENT-0069" => Self::AuroraFailoverFailed,
            "RDS-EVENT-0070" => Self::AuroraFailoverRestarted,
            "RDS-EVENT-0071" => Self::AuroraFailoverFinished,
            "RDS-EVENT-0072" => Self::AuroraFailoverStartedWithinAz,
            "RDS-EVENT-0073" => Self::AuroraFailoverStartedAcrossAz,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// One RDS event, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbEvent {
    pub source_arn: String,
    /// The DB instance or cluster identifier, without any `rds:` prefix.
    pub identifier: String,
    pub source_type: DbSourceType,
    pub event_id: String,
    pub kind: DbEventKind,
    pub message: String,
    pub categories: Vec<String>,
    pub occurred_at_millis: i64,
    pub account: String,
    pub region: String,
}

impl DbEvent {
    pub fn idempotency_key(&self) -> String {
        format!("rds:{}#{}@{}", self.source_arn, self.event_id, self.occurred_at_millis)
    }

    pub fn summary(&self) -> String {
        let what = match self.source_type {
            DbSourceType::Instance => "RDS instance",
            DbSourceType::Cluster => "RDS cluster",
        };
        format!("{what} {}: {} ({})", self.identifier, self.message.trim_end_matches('.'), self.event_id)
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Detail {
    #[serde(default)]
    event_categories: Vec<String>,
    source_type: String,
    source_arn: String,
    date: String,
    #[serde(default)]
    message: String,
    source_identifier: Option<String>,
    #[serde(rename = "EventID")]
    event_id: String,
}

/// Parses an EventBridge RDS instance or cluster event.
pub fn parse_db_event(raw: &Value) -> Result<DbEvent, MalformedEvent> {
    let malformed = |reason: String| MalformedEvent { reason };
    let source = raw.get("source").and_then(Value::as_str);
    let detail_type = raw.get("detail-type").and_then(Value::as_str);
    let expected_type = match (source, detail_type) {
        (Some("aws.rds"), Some(DB_INSTANCE_EVENT)) => DbSourceType::Instance,
        (Some("aws.rds"), Some(DB_CLUSTER_EVENT)) => DbSourceType::Cluster,
        _ => {
            return Err(malformed(format!(
                "not an RDS instance or cluster event: source {} with detail-type {}",
                source.map_or("(none)".to_owned(), |s| format!("`{s}`")),
                detail_type.map_or("(none)".to_owned(), |s| format!("`{s}`")),
            )))
        }
    };
    let delivered = eventbridge::<Detail>(raw, detail_type.unwrap_or_default())?;
    let (account, region) = (delivered.account(), delivered.region());
    let detail = delivered.event.detail;
    let source_type = match detail.source_type.as_str() {
        "DB_INSTANCE" => DbSourceType::Instance,
        "CLUSTER" | "DB_CLUSTER" => DbSourceType::Cluster,
        other => return Err(malformed(format!("detail.SourceType `{other}` is not DB_INSTANCE or CLUSTER"))),
    };
    if source_type != expected_type {
        return Err(malformed(format!(
            "detail.SourceType `{}` does not match detail-type `{}`",
            detail.source_type,
            detail_type.unwrap_or_default()
        )));
    }
    let arn_kind = match source_type {
        DbSourceType::Instance => ":db:",
        DbSourceType::Cluster => ":cluster:",
    };
    let Some((_, identifier)) = detail.source_arn.split_once(arn_kind) else {
        return Err(malformed(format!("detail.SourceArn `{}` is not an RDS {arn_kind} ARN", detail.source_arn)));
    };
    crate::ids::arn("detail.SourceArn", &detail.source_arn, "rds")?;
    crate::ids::db_identifier("detail.SourceArn's identifier", identifier)?;
    let identifier = identifier.to_owned();
    if let Some(given) = &detail.source_identifier {
        let given = given.strip_prefix("rds:").unwrap_or(given);
        if given != identifier {
            return Err(malformed(format!(
                "detail.SourceIdentifier `{given}` does not match SourceArn `{}`",
                detail.source_arn
            )));
        }
    }
    let occurred_at_millis = parse_timestamp_millis(&detail.date)
        .ok_or_else(|| malformed(format!("detail.Date `{}` is not a timestamp", detail.date)))?;
    Ok(DbEvent {
        kind: DbEventKind::from_event_id(&detail.event_id),
        source_arn: detail.source_arn,
        identifier,
        source_type,
        event_id: detail.event_id,
        message: detail.message,
        categories: detail.event_categories,
        occurred_at_millis,
        account,
        region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/rds-rerouter").join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn given_each_rds_file_when_parsed_then_kind_identifier_and_key() {
        let rows: [(&str, DbEventKind, DbSourceType, &str); 20] = [
            ("instance-failover-started.json", DbEventKind::FailoverStarted, DbSourceType::Instance, "orders-db"),
            (
                "instance-failover-standby-complete.json",
                DbEventKind::FailoverToStandbyComplete,
                DbSourceType::Instance,
                "orders-db",
            ),
            ("instance-failover-completed.json", DbEventKind::FailoverCompleted, DbSourceType::Instance, "orders-db"),
            (
                "instance-failover-not-attempted.json",
                DbEventKind::FailoverNotAttempted,
                DbSourceType::Instance,
                "orders-db",
            ),
            (
                "instance-multi-az-activation-started.json",
                DbEventKind::MultiAzActivationStarted,
                DbSourceType::Instance,
                "orders-db",
            ),
            (
                "instance-multi-az-activation-complete.json",
                DbEventKind::MultiAzActivationComplete,
                DbSourceType::Instance,
                "orders-db",
            ),
            ("instance-failed.json", DbEventKind::InstanceFailed, DbSourceType::Instance, "orders-db"),
            ("instance-shutdown.json", DbEventKind::Shutdown, DbSourceType::Instance, "orders-db"),
            ("instance-restarted.json", DbEventKind::Restarted, DbSourceType::Instance, "orders-db"),
            (
                "replica-replication-error.json",
                DbEventKind::ReplicationError,
                DbSourceType::Instance,
                "orders-db-replica-1",
            ),
            (
                "replica-replication-resumed.json",
                DbEventKind::ReplicationResumed,
                DbSourceType::Instance,
                "orders-db-replica-1",
            ),
            (
                "replica-replication-terminated.json",
                DbEventKind::ReplicationTerminated,
                DbSourceType::Instance,
                "orders-db-replica-1",
            ),
            (
                "replica-replication-stopped.json",
                DbEventKind::ReplicationStopped,
                DbSourceType::Instance,
                "orders-db-replica-1",
            ),
            (
                "replica-replication-reset.json",
                DbEventKind::ReplicationReset,
                DbSourceType::Instance,
                "orders-db-replica-1",
            ),
            (
                "replica-creation-failed.json",
                DbEventKind::ReplicaCreationFailed,
                DbSourceType::Instance,
                "orders-db-replica-2",
            ),
            ("cluster-failover-failed.json", DbEventKind::AuroraFailoverFailed, DbSourceType::Cluster, "orders-aurora"),
            (
                "cluster-failover-restarted.json",
                DbEventKind::AuroraFailoverRestarted,
                DbSourceType::Cluster,
                "orders-aurora",
            ),
            (
                "cluster-failover-finished.json",
                DbEventKind::AuroraFailoverFinished,
                DbSourceType::Cluster,
                "orders-aurora",
            ),
            (
                "cluster-failover-started-within-az.json",
                DbEventKind::AuroraFailoverStartedWithinAz,
                DbSourceType::Cluster,
                "orders-aurora",
            ),
            (
                "cluster-failover-started-across-az.json",
                DbEventKind::AuroraFailoverStartedAcrossAz,
                DbSourceType::Cluster,
                "orders-aurora",
            ),
        ];
        for (file, kind, source_type, identifier) in rows {
            let event = parse_db_event(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                (event.kind.clone(), event.source_type, event.identifier.as_str()),
                (kind, source_type, identifier),
                "{file}"
            );
            assert!(event.idempotency_key().starts_with(&format!("rds:{}#RDS-EVENT-", event.source_arn)), "{file}");
        }
        let unknown = parse_db_event(&fixture("instance-unknown-event-id.json")).unwrap();
        assert_eq!(unknown.kind, DbEventKind::Unknown("RDS-EVENT-0999".into()));
    }

    #[test]
    fn given_rds_prefix_on_identifier_when_parsed_then_same_key_as_without() {
        let mut with_prefix = fixture("instance-failed.json");
        with_prefix["detail"]["SourceIdentifier"] = serde_json::json!("rds:orders-db");
        let mut without = fixture("instance-failed.json");
        without["detail"]["SourceIdentifier"] = serde_json::json!("orders-db");
        assert_eq!(
            parse_db_event(&with_prefix).unwrap().idempotency_key(),
            parse_db_event(&without).unwrap().idempotency_key()
        );
    }

    #[test]
    fn given_malformed_rds_events_when_parsed_then_error_names_the_problem() {
        let mut wrong_type = fixture("instance-failed.json");
        wrong_type["detail"]["SourceType"] = serde_json::json!("CLUSTER");
        let mut mismatch = fixture("instance-failed.json");
        mismatch["detail"]["SourceIdentifier"] = serde_json::json!("rds:billing-db");
        let cases = [
            (fixture("malformed-missing-source-arn.json"), "missing field `SourceArn`"),
            (
                fixture("snapshot-event.json"),
                "not an RDS instance or cluster event: source `aws.rds` with detail-type `RDS DB Snapshot Event`",
            ),
            (wrong_type, "does not match detail-type"),
            (mismatch, "SourceIdentifier `billing-db` does not match SourceArn"),
        ];
        for (event, expected) in cases {
            let error = parse_db_event(&event).expect_err("must be rejected");
            assert!(error.to_string().contains(expected), "{error} should contain {expected}");
        }
    }
}
