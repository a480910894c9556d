//! Settings read once at cold start, and the SDK configuration shared by every client.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use medic_core::policy::account_list;
use medic_core::{ConfigError, Policy};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Everything a function needs besides its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedicConfig {
    pub policy: Policy,
    /// DynamoDB table holding the idempotency ledger, cooldowns and breaker counts.
    pub ledger_table: String,
    /// SNS topic that receives every notice.
    pub topic_arn: String,
    /// How events from other accounts are reached.
    pub accounts: Accounts,
}

/// `MEDIC_MODE`: one account (the default), or one medic for an AWS Organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounts {
    /// Events come from medic's own account and are handled with the function's own credentials;
    /// ledger keys are as they always were.
    Single,
    /// Events from member accounts arrive on medic's central bus; medic acts in each through the
    /// member role it assumes there.
    Central(CentralSettings),
}

/// The settings of central mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralSettings {
    /// `MEDIC_HOME_ACCOUNT`: medic's own account, whose events use the function's credentials.
    pub home_account: String,
    /// `MEDIC_MEMBER_ROLE`: the member role's path and name (`medic/medic-remediation`).
    pub member_role: String,
    /// `MEDIC_EXTERNAL_ID`: sent with every AssumeRole when set.
    pub external_id: Option<String>,
    /// `MEDIC_ACCOUNTS`: the only accounts medic acts in (besides its own); empty: every account
    /// whose member role it can assume (the role trusts only medic's organisation).
    pub allowed: Vec<String>,
}

impl CentralSettings {
    /// Why medic may not act in `account` by its settings, if it may not.
    pub fn refuses(&self, account: &str) -> Option<String> {
        let listed = self.allowed.is_empty() || self.allowed.iter().any(|a| a == account);
        (!listed && account != self.home_account).then(|| {
            // Worded to follow "medic may not act in account <id>: ".
            format!("it is not in MEDIC_ACCOUNTS ({}), the accounts medic may act in", self.allowed.join(", "))
        })
    }
}

pub const DEFAULT_MEMBER_ROLE: &str = "medic/medic-remediation";

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
        if let Some(name) = ENDPOINT_URL_SETTINGS.iter().find(|name| lookup(name).is_some_and(|v| v.trim().is_empty()))
        {
            return Err(ConfigError {
                name: (*name).into(),
                value: String::new(),
                problem: "is set but empty, which the AWS SDK does not read as unset (it would fail every call): \
                          unset it, or give an endpoint URL"
                    .into(),
            });
        }
        let accounts = match lookup("MEDIC_MODE").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).as_deref() {
            None | Some("single") => Accounts::Single,
            Some("central") => {
                let home_account = required("MEDIC_HOME_ACCOUNT")?;
                if !medic_core::ids::is_account_id(&home_account) {
                    return Err(ConfigError {
                        name: "MEDIC_HOME_ACCOUNT".into(),
                        value: home_account,
                        problem: "must be a 12-digit account id".into(),
                    });
                }
                let optional = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
                let member_role = optional("MEDIC_MEMBER_ROLE").unwrap_or_else(|| DEFAULT_MEMBER_ROLE.to_owned());
                if member_role.starts_with('/') || member_role.contains(char::is_whitespace) {
                    return Err(ConfigError {
                        name: "MEDIC_MEMBER_ROLE".into(),
                        value: member_role,
                        problem: "must be the role's path and name without a leading slash (medic/medic-remediation)"
                            .into(),
                    });
                }
                Accounts::Central(CentralSettings {
                    home_account,
                    member_role,
                    external_id: optional("MEDIC_EXTERNAL_ID"),
                    allowed: account_list(optional("MEDIC_ACCOUNTS"), "MEDIC_ACCOUNTS")?,
                })
            }
            Some(other) => {
                return Err(ConfigError {
                    name: "MEDIC_MODE".into(),
                    value: other.into(),
                    problem: "must be single or central".into(),
                })
            }
        };
        Ok(Self {
            policy: Policy::from_lookup(&lookup)?,
            ledger_table: required("MEDIC_LEDGER_TABLE")?,
            topic_arn,
            accounts,
        })
    }
}

/// The SDK's endpoint overrides for every service medic calls: the global one and each service's.
const ENDPOINT_URL_SETTINGS: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_AUTO_SCALING",
    "AWS_ENDPOINT_URL_CLOUDWATCH",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
    "AWS_ENDPOINT_URL_RDS",
    "AWS_ENDPOINT_URL_ROUTE_53",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_LAMBDA",
];

/// The one HTTPS client every SDK client uses: rustls on ring, trusting the system's roots.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// Standard retry mode with bounded attempts, and timeouts well under the function's.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
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

/// JSON logs, one object per line, filtered by `RUST_LOG` (`info`, `debug`, or per target:
/// `info,medic_aws=debug`; unset or unreadable: `info`).
pub fn init_tracing() {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .finish()
        .with(filter);
    let _ = subscriber.try_init();
}

fn log_filter(rust_log: Option<&str>) -> Targets {
    rust_log
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
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

    #[test]
    fn given_central_mode_settings_when_loaded_then_accounts_are_checked_and_unlisted_ones_refused() {
        let base = |extra: &'static [(&'static str, &'static str)]| {
            move |name: &str| match name {
                "MEDIC_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:medic".into()),
                "MEDIC_LEDGER_TABLE" => Some("medic-ledger".into()),
                name => extra.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()),
            }
        };
        assert_eq!(MedicConfig::from_lookup(base(&[])).expect("single").accounts, Accounts::Single);
        let central = MedicConfig::from_lookup(base(&[
            ("MEDIC_MODE", "central"),
            ("MEDIC_HOME_ACCOUNT", "123456789012"),
            ("MEDIC_ACCOUNTS", "111111111111,222222222222"),
        ]))
        .expect("central");
        let Accounts::Central(settings) = central.accounts else { panic!("central mode") };
        assert_eq!(settings.member_role, DEFAULT_MEMBER_ROLE);
        assert_eq!(settings.refuses("111111111111"), None);
        assert_eq!(settings.refuses("123456789012"), None, "medic's own account is always reachable");
        assert!(settings.refuses("333333333333").is_some_and(|reason| reason.contains("not in MEDIC_ACCOUNTS")));
        let open = CentralSettings { allowed: vec![], ..settings };
        assert_eq!(open.refuses("333333333333"), None);
        for (extra, name) in [
            (&[("MEDIC_MODE", "org")][..], "MEDIC_MODE"),
            (&[("MEDIC_MODE", "central")][..], "MEDIC_HOME_ACCOUNT"),
            (&[("MEDIC_MODE", "central"), ("MEDIC_HOME_ACCOUNT", "12345")][..], "MEDIC_HOME_ACCOUNT"),
            (
                &[("MEDIC_MODE", "central"), ("MEDIC_HOME_ACCOUNT", "123456789012"), ("MEDIC_ACCOUNTS", "x")][..],
                "MEDIC_ACCOUNTS",
            ),
            (
                &[("MEDIC_MODE", "central"), ("MEDIC_HOME_ACCOUNT", "123456789012"), ("MEDIC_MEMBER_ROLE", "/medic/r")]
                    [..],
                "MEDIC_MEMBER_ROLE",
            ),
        ] {
            let extra: &'static [(&'static str, &'static str)] = extra;
            assert_eq!(MedicConfig::from_lookup(base(extra)).expect_err("invalid").name, name, "{extra:?}");
        }
    }

    #[test]
    fn given_rust_log_when_read_then_levels_per_target_and_info_when_unset_or_unreadable() {
        use tracing::Level;
        let per_target = log_filter(Some("warn,medic_aws=debug"));
        assert!(per_target.would_enable("medic_aws::engine", &Level::DEBUG));
        assert!(!per_target.would_enable("aws_smithy_runtime", &Level::INFO));
        for unset_or_unreadable in [None, Some("=!?")] {
            let filter = log_filter(unset_or_unreadable);
            assert!(filter.would_enable("medic_aws", &Level::INFO) && !filter.would_enable("medic_aws", &Level::DEBUG));
        }
    }

    #[test]
    fn given_an_endpoint_url_set_but_empty_when_loaded_then_init_fails_naming_it_instead_of_a_panic_at_the_first_call()
    {
        for name in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_AUTO_SCALING"] {
            let error = MedicConfig::from_lookup(|key| match key {
                "MEDIC_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:medic".into()),
                "MEDIC_LEDGER_TABLE" => Some("medic-ledger".into()),
                key if key == name => Some(" ".into()),
                _ => None,
            })
            .expect_err("an empty endpoint URL makes the SDK panic on every call");
            assert_eq!(error.name, name);
            assert!(error.problem.contains("unset it"), "{error}");
        }
    }
}
