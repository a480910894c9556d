//! Settings read once at cold start, and the SDK configuration shared by every client.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use medic_core::{ConfigError, Policy};

/// Everything a function needs besides its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedicConfig {
    pub policy: Policy,
    /// DynamoDB table holding the idempotency ledger, cooldowns and breaker counts.
    pub ledger_table: String,
    /// SNS topic that receives every notice.
    pub topic_arn: String,
}

impl MedicConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &str| -> Result<String, ConfigError> {
            lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).ok_or_else(|| ConfigError {
                name: name.into(),
                value: String::new(),
                problem: "is required".into(),
            })
        };
        let topic_arn = required("MEDIC_TOPIC_ARN")?;
        if !topic_arn.starts_with("arn:") {
            return Err(ConfigError {
                name: "MEDIC_TOPIC_ARN".into(),
                value: topic_arn,
                problem: "must be an SNS topic ARN".into(),
            });
        }
        Ok(Self { policy: Policy::from_lookup(&lookup)?, ledger_table: required("MEDIC_LEDGER_TABLE")?, topic_arn })
    }
}

/// Standard retry mode with bounded attempts, and timeouts well under the function's.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(4))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await
}

/// JSON logs, one object per line, level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_missing_or_bad_settings_when_loaded_then_error_names_them() {
        let missing = MedicConfig::from_lookup(|_| None).expect_err("topic is required");
        assert_eq!(missing.to_string(), "invalid configuration: MEDIC_TOPIC_ARN=\"\": is required");
        let bad_topic = MedicConfig::from_lookup(|name| (name == "MEDIC_TOPIC_ARN").then(|| "medic".to_owned()))
            .expect_err("not an ARN");
        assert!(bad_topic.to_string().contains("must be an SNS topic ARN"));
        let config = MedicConfig::from_lookup(|name| match name {
            "MEDIC_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:medic".into()),
            "MEDIC_LEDGER_TABLE" => Some("medic-ledger".into()),
            "MEDIC_DRY_RUN" => Some("true".into()),
            _ => None,
        })
        .expect("valid");
        assert!(config.policy.dry_run);
        assert_eq!(config.ledger_table, "medic-ledger");
    }
}
