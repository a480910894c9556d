//! What medic is allowed to do, read once at cold start from the environment and validated.

use serde::Serialize;

/// Which resources medic may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Only resources tagged `medic:managed=true` (the default).
    Tagged,
    /// Everything not tagged `medic:managed=false`.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// `dev` or `prod`; carried into every notice so subscriptions can route on it.
    pub environment: String,
    pub scope: Scope,
    /// Everything runs except the mutating call; notices say "would have".
    pub dry_run: bool,
    /// Central mode: accounts medic runs in dry-run whatever `dry_run` says.
    pub dry_run_accounts: Vec<String>,
    /// Set for one invocation while an operator's pause switch is on (with its reason): medic
    /// then runs as in dry-run and names the pause in every notice. Never read from settings.
    pub paused: Option<String>,
    /// Per-resource, per-action quiet period after an action.
    pub cooldown_seconds: i64,
    /// Quiet period per group after medic scaled it out, and after it scaled it in.
    pub scale_out_cooldown_seconds: i64,
    pub scale_in_cooldown_seconds: i64,
    /// Blast radius: at most this many mutating actions per scope (ASG, or account for
    /// standalone instances) per window.
    pub breaker_max_actions: u32,
    pub breaker_window_seconds: i64,
    /// At most this many mutating actions in the whole account (each member account, in central
    /// mode) per window, whatever their scopes; unset: `ACCOUNT_BREAKER_FACTOR` times
    /// `breaker_max_actions` (`account_breaker_max`).
    pub account_breaker_max_actions: Option<u32>,
    /// Alarm responder: send an info notice when an alarm returns to OK (never a change).
    pub notify_on_ok: bool,
    /// How long idempotency records live; EventBridge retries for 24 h, so at least 25 h.
    pub ledger_ttl_seconds: i64,
    /// How long a claimed event stays claimed if the invocation that claimed it dies; just
    /// over the function timeout, so Lambda's first retry can take the claim over.
    pub in_progress_seconds: i64,
    /// RDS rerouter: promote only a replica whose latest ReplicaLag is at most this.
    pub max_promote_lag_seconds: i64,
    /// RDS rerouter: a terminal primary status must hold on a second read at least this long
    /// after the first before medic promotes (0: the second read follows at once).
    pub promote_confirm_seconds: i64,
    /// RDS rerouter: prefer replicas and Aurora readers in this Availability Zone.
    pub preferred_az: Option<String>,
    /// How long after a scope's critical notice the digest of every action held back since goes
    /// out (a burst is over by then). A held-back event waits for it: Retryable, and Lambda
    /// retries it a minute later.
    pub digest_delay_seconds: i64,
    /// Never more than this percentage of a group's desired capacity out of service at once
    /// (Cluster API's `maxUnhealthy`): past it, medic replaces nothing and tells a human.
    pub max_unhealthy_percent: i64,
    /// Alarm responder: only alarms whose names start with this are the deployment's own; others
    /// (on a shared alarm topic) are skipped without a call.
    pub alarm_name_prefix: Option<String>,
    /// Notifier: this many launch failures of one group within 15 minutes escalate to one
    /// critical notice.
    pub launch_failure_threshold: u32,
    /// Reconciler: at most this many findings (sweep findings, escalations) are decided per run;
    /// the rest wait for the next run, which starts with them (those handled are duplicates).
    pub sweep_max_findings: u32,
    /// Reconciler: beyond a group's health-check grace period, how long a replacement or scaling
    /// may take to launch and boot before medic escalates it (and how long a group may stay short).
    pub launch_margin_seconds: i64,
}

pub const MIN_LEDGER_TTL_HOURS: i64 = 25;

/// A setting that is present but unusable. Cold start fails loudly instead of running unsafely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {name}={value:?}: {problem}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub problem: String,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            environment: "dev".into(),
            scope: Scope::Tagged,
            dry_run: false,
            dry_run_accounts: Vec::new(),
            paused: None,
            cooldown_seconds: 600,
            scale_out_cooldown_seconds: 300,
            scale_in_cooldown_seconds: 600,
            notify_on_ok: false,
            breaker_max_actions: 3,
            breaker_window_seconds: 900,
            account_breaker_max_actions: None,
            ledger_ttl_seconds: MIN_LEDGER_TTL_HOURS * 3600,
            in_progress_seconds: 60,
            max_promote_lag_seconds: 30,
            promote_confirm_seconds: 60,
            preferred_az: None,
            alarm_name_prefix: None,
            max_unhealthy_percent: 34,
            digest_delay_seconds: 60,
            launch_failure_threshold: 3,
            sweep_max_findings: 20,
            launch_margin_seconds: 600,
        }
    }
}

impl Policy {
    /// Reads `MEDIC_*` settings through `lookup` (pass `|name| std::env::var(name).ok()`).
    /// Unset or empty settings take their defaults; set but invalid ones are errors.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let environment = match get("MEDIC_ENVIRONMENT") {
            None => defaults.environment,
            Some(value) if value == "dev" || value == "prod" => value,
            Some(value) => return Err(invalid("MEDIC_ENVIRONMENT", &value, "must be dev or prod")),
        };
        let scope = match get("MEDIC_SCOPE").as_deref() {
            None | Some("tagged") => Scope::Tagged,
            Some("all") => Scope::All,
            Some(value) => return Err(invalid("MEDIC_SCOPE", value, "must be tagged or all")),
        };
        let flag = |name: &str| match get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(value) => Err(invalid(name, value, "must be true or false")),
        };
        let dry_run = flag("MEDIC_DRY_RUN")?;
        let dry_run_accounts = account_list(get("MEDIC_DRY_RUN_ACCOUNTS"), "MEDIC_DRY_RUN_ACCOUNTS")?;
        let notify_on_ok = flag("MEDIC_NOTIFY_ON_OK")?;
        let number = |name: &str, default: i64, min: i64, max: i64| -> Result<i64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => match value.parse::<i64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(invalid(name, &value, &format!("must be a whole number from {min} to {max}"))),
                },
            }
        };
        let ledger_ttl_hours =
            number("MEDIC_LEDGER_TTL_HOURS", defaults.ledger_ttl_seconds / 3600, MIN_LEDGER_TTL_HOURS, 24 * 90)?;
        let breaker_max_actions = number("MEDIC_BREAKER_MAX_ACTIONS", defaults.breaker_max_actions.into(), 1, 1000)?;
        let account_breaker_max_actions = match get("MEDIC_ACCOUNT_BREAKER_MAX_ACTIONS") {
            None => None,
            Some(_) => u32::try_from(number("MEDIC_ACCOUNT_BREAKER_MAX_ACTIONS", 0, 1, 10_000)?).ok(),
        };
        Ok(Self {
            environment,
            scope,
            dry_run,
            dry_run_accounts,
            paused: None,
            notify_on_ok,
            cooldown_seconds: number("MEDIC_COOLDOWN_SECONDS", defaults.cooldown_seconds, 0, 86_400)?,
            scale_out_cooldown_seconds: number(
                "MEDIC_SCALE_OUT_COOLDOWN_SECONDS",
                defaults.scale_out_cooldown_seconds,
                0,
                86_400,
            )?,
            scale_in_cooldown_seconds: number(
                "MEDIC_SCALE_IN_COOLDOWN_SECONDS",
                defaults.scale_in_cooldown_seconds,
                0,
                86_400,
            )?,
            breaker_max_actions: u32::try_from(breaker_max_actions).unwrap_or(defaults.breaker_max_actions),
            breaker_window_seconds: number(
                "MEDIC_BREAKER_WINDOW_SECONDS",
                defaults.breaker_window_seconds,
                60,
                86_400,
            )?,
            account_breaker_max_actions,
            ledger_ttl_seconds: ledger_ttl_hours * 3600,
            in_progress_seconds: number("MEDIC_IN_PROGRESS_SECONDS", defaults.in_progress_seconds, 10, 900)?,
            max_promote_lag_seconds: number(
                "MEDIC_MAX_PROMOTE_LAG_SECONDS",
                defaults.max_promote_lag_seconds,
                0,
                3600,
            )?,
            promote_confirm_seconds: number("MEDIC_PROMOTE_CONFIRM_SECONDS", defaults.promote_confirm_seconds, 0, 120)?,
            preferred_az: get("MEDIC_PREFERRED_AZ"),
            alarm_name_prefix: get("MEDIC_ALARM_NAME_PREFIX"),
            // Lambda retries a failed invoke twice, about one and three minutes later: a wait
            // beyond two minutes would outlast them.
            digest_delay_seconds: number("MEDIC_DIGEST_DELAY_SECONDS", defaults.digest_delay_seconds, 0, 120)?,
            max_unhealthy_percent: number("MEDIC_MAX_UNHEALTHY_PERCENT", defaults.max_unhealthy_percent, 1, 100)?,
            launch_failure_threshold: u32::try_from(number(
                "MEDIC_LAUNCH_FAILURE_THRESHOLD",
                defaults.launch_failure_threshold.into(),
                1,
                100,
            )?)
            .unwrap_or(defaults.launch_failure_threshold),
            sweep_max_findings: u32::try_from(number(
                "MEDIC_SWEEP_MAX_FINDINGS",
                defaults.sweep_max_findings.into(),
                1,
                500,
            )?)
            .unwrap_or(defaults.sweep_max_findings),
            launch_margin_seconds: number("MEDIC_LAUNCH_MARGIN_SECONDS", defaults.launch_margin_seconds, 0, 3_600)?,
        })
    }
}

/// Unset, the account-wide cap is this many times the per-scope one.
pub const ACCOUNT_BREAKER_FACTOR: u32 = 10;

impl Policy {
    /// The account-wide breaker's limit per window.
    pub fn account_breaker_max(&self) -> u32 {
        self.account_breaker_max_actions
            .unwrap_or_else(|| self.breaker_max_actions.saturating_mul(ACCOUNT_BREAKER_FACTOR))
    }

    /// The policy for actions in `account`: dry-run if the account is one of `dry_run_accounts`.
    pub fn for_account(&self, account: &str) -> Policy {
        let mut policy = self.clone();
        policy.dry_run |= self.dry_run_accounts.iter().any(|listed| listed == account);
        policy
    }
}

/// A comma-separated list of 12-digit account ids (unset: none).
pub fn account_list(value: Option<String>, name: &str) -> Result<Vec<String>, ConfigError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let accounts: Vec<String> = value.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
    match accounts.iter().find(|a| !crate::ids::is_account_id(a)) {
        Some(bad) => Err(invalid(name, &value, &format!("`{bad}` is not a 12-digit account id"))),
        None => Ok(accounts),
    }
}

fn invalid(name: &str, value: &str, problem: &str) -> ConfigError {
    ConfigError { name: name.into(), value: value.into(), problem: problem.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn policy_from(pairs: &[(&str, &str)]) -> Result<Policy, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Policy::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn given_no_settings_when_loaded_then_safe_defaults() {
        let policy = policy_from(&[]).expect("defaults are valid");
        assert_eq!(policy, Policy::default());
        assert_eq!(policy.scope, Scope::Tagged);
        assert!(policy.ledger_ttl_seconds >= 25 * 3600);
    }

    #[test]
    fn given_valid_settings_when_loaded_then_applied() {
        let policy = policy_from(&[
            ("MEDIC_ENVIRONMENT", "prod"),
            ("MEDIC_SCOPE", "all"),
            ("MEDIC_DRY_RUN", "TRUE"),
            ("MEDIC_BREAKER_MAX_ACTIONS", "2"),
            ("MEDIC_LEDGER_TTL_HOURS", "48"),
            ("MEDIC_MAX_PROMOTE_LAG_SECONDS", "5"),
            ("MEDIC_PREFERRED_AZ", " us-east-1b "),
        ])
        .expect("valid");
        assert_eq!(policy.environment, "prod");
        assert_eq!(policy.scope, Scope::All);
        assert!(policy.dry_run);
        assert_eq!(policy.breaker_max_actions, 2);
        assert_eq!(policy.ledger_ttl_seconds, 48 * 3600);
        assert_eq!(policy.max_promote_lag_seconds, 5);
        assert_eq!(policy.preferred_az.as_deref(), Some("us-east-1b"));
    }

    #[test]
    fn given_the_account_cap_set_or_unset_when_loaded_then_set_or_ten_times_the_scope_cap() {
        let unset = policy_from(&[("MEDIC_BREAKER_MAX_ACTIONS", "4")]).expect("valid");
        assert_eq!(unset.account_breaker_max(), 40);
        let set = policy_from(&[("MEDIC_ACCOUNT_BREAKER_MAX_ACTIONS", "12")]).expect("valid");
        assert_eq!(set.account_breaker_max(), 12);
        let error = policy_from(&[("MEDIC_ACCOUNT_BREAKER_MAX_ACTIONS", "0")]).unwrap_err();
        assert_eq!(error.name, "MEDIC_ACCOUNT_BREAKER_MAX_ACTIONS");
    }

    #[test]
    fn given_dry_run_accounts_when_a_policy_is_made_for_an_account_then_only_those_run_dry() {
        let policy = policy_from(&[("MEDIC_DRY_RUN_ACCOUNTS", "111111111111, 222222222222")]).expect("valid");
        assert_eq!(policy.dry_run_accounts, ["111111111111", "222222222222"]);
        assert!(policy.for_account("222222222222").dry_run);
        assert!(!policy.for_account("333333333333").dry_run);
        let everywhere = Policy { dry_run: true, ..policy };
        assert!(everywhere.for_account("333333333333").dry_run);
    }

    #[test]
    fn given_invalid_settings_when_loaded_then_error_names_setting_and_rule() {
        let cases = [
            (("MEDIC_DRY_RUN", "yes"), "MEDIC_DRY_RUN=\"yes\": must be true or false"),
            (("MEDIC_SCOPE", "everything"), "must be tagged or all"),
            (("MEDIC_ENVIRONMENT", "staging"), "must be dev or prod"),
            (("MEDIC_LEDGER_TTL_HOURS", "24"), "MEDIC_LEDGER_TTL_HOURS=\"24\": must be a whole number from 25"),
            (("MEDIC_BREAKER_MAX_ACTIONS", "0"), "must be a whole number from 1 to 1000"),
            (("MEDIC_COOLDOWN_SECONDS", "ten"), "MEDIC_COOLDOWN_SECONDS"),
            (("MEDIC_MAX_PROMOTE_LAG_SECONDS", "-1"), "must be a whole number from 0 to 3600"),
            (("MEDIC_DRY_RUN_ACCOUNTS", "111111111111, prod"), "`prod` is not a 12-digit account id"),
        ];
        for ((name, value), expected) in cases {
            let error = policy_from(&[(name, value)]).expect_err("must be rejected");
            assert!(error.to_string().contains(expected), "{error} should contain {expected}");
        }
    }
}
