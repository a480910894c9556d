//! Which clients an event is handled with. In single-account mode (the default) every event uses
//! the function's own. In central mode (`MEDIC_MODE=central`) the event's account and region
//! select them: medic assumes the member role in that account (AssumeRole once per account and
//! region per container, again only shortly before the credentials expire), builds the
//! function's clients for it once, and keeps that account's ledger keys apart. An account medic
//! may not act in is a skip with its reason and one warning notice per account per day, never an
//! error that Lambda would retry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_config::identity::IdentityCache;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use medic_core::accounts::{self, AccountRegion};
use medic_core::notice::{self, NoticeKind};
use medic_core::time::EpochSeconds;
use medic_core::{Outcome, Status};
use serde_json::Value;

use crate::adapters::dynamodb::DynamoLedger;
use crate::adapters::sns::SnsNotifier;
use crate::config::{Accounts, CentralSettings, MedicConfig};
use crate::engine::NOTICE_ID_ATTRIBUTE;
use crate::error::{classify, HandlerError, PortError};
use crate::ports::{Ledger, Notifier};

/// A function's clients and settings, built for the events of one account and region.
pub trait PerAccount: Sized + Send + Sync {
    /// The function's name, as in its notices and metrics.
    const NAME: &'static str;
    /// False for a function that reads and changes nothing in the member account (the notifier):
    /// it assumes no role there.
    const ACTS_IN_MEMBER: bool = true;

    /// Builds the function: its AWS reads and calls through `member` (the account and region the
    /// events come from), its ledger and topic through `home` (medic's own), the ledger's keys
    /// under `at`'s prefix in central mode (`None`: single-account mode, keys as they were).
    fn build(member: &SdkConfig, home: &SdkConfig, config: &MedicConfig, at: Option<&AccountRegion>) -> Self;
}

/// Credentials are assumed again once they expire within this many seconds.
pub const REFRESH_BEFORE_EXPIRY_SECONDS: u64 = 300;

/// An account refused for want of a usable role is tried again after this long in one container,
/// so that a storm of its events costs one AssumeRole, not one per event.
pub const REFUSAL_RECHECK_SECONDS: i64 = 300;

/// What an event is handled with.
#[derive(Debug)]
pub enum Reach<F> {
    Ready(Arc<F>),
    /// The account may not be acted in: the skip, already logged and (once a day) announced.
    Refused(Outcome),
}

/// The function for every account and region its events come from.
#[derive(Debug)]
pub enum Members<F> {
    /// Single-account mode: one function, with the function's own credentials, for every event.
    Single(Arc<F>),
    Central(Box<Central<F>>),
}

/// Central mode: the function of each account and region, built on first use.
#[derive(Debug)]
pub struct Central<F> {
    sdk: SdkConfig,
    config: MedicConfig,
    settings: CentralSettings,
    sts: aws_sdk_sts::Client,
    /// medic's own ledger and topic, for the refused accounts' notices.
    ledger: DynamoLedger,
    notifier: SnsNotifier,
    known: tokio::sync::Mutex<HashMap<AccountRegion, Known<F>>>,
}

#[derive(Debug)]
enum Known<F> {
    /// `role` is `None` in medic's own account, which uses the function's credentials.
    Ready {
        function: Arc<F>,
        role: Option<RoleCredentials>,
    },
    Refused {
        reason: String,
        recheck_at: EpochSeconds,
    },
}

/// Why a member's role could not be used.
enum Unusable {
    /// AWS refused (no such role, a trust policy that does not admit medic, a wrong external
    /// id): the account is refused.
    Refused(String),
    /// Throttled, timed out, unreachable: the event is retried.
    Failed(PortError),
}

impl<F: PerAccount> Members<F> {
    /// Reads the settings; builds the function in single-account mode, what builds one per
    /// account and region in central mode.
    pub async fn from_env() -> Result<Self, HandlerError> {
        let config = MedicConfig::from_env()?;
        Ok(Self::new(crate::load_sdk_config().await, config))
    }

    pub fn new(sdk: SdkConfig, config: MedicConfig) -> Self {
        match &config.accounts {
            Accounts::Single => Self::Single(Arc::new(F::build(&sdk, &sdk, &config, None))),
            Accounts::Central(settings) => Self::Central(Box::new(Central {
                sts: aws_sdk_sts::Client::new(&sdk),
                ledger: DynamoLedger::for_function(&sdk, &config, None),
                notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), config.topic_arn.clone()),
                settings: settings.clone(),
                sdk,
                config,
                known: tokio::sync::Mutex::default(),
            })),
        }
    }

    /// The function to handle `raw` with, or the skip of an account medic may not act in.
    pub async fn reach(&self, raw: &Value, now: EpochSeconds) -> Result<Reach<F>, HandlerError> {
        self.reach_at(raw, accounts::origin(raw).as_ref(), now).await
    }

    /// The function for the resources in `at`, or the skip of an account medic may not act in
    /// (naming `raw`, the event that needs it). Single-account mode has one function for all.
    pub async fn reach_at(
        &self,
        raw: &Value,
        at: Option<&AccountRegion>,
        now: EpochSeconds,
    ) -> Result<Reach<F>, HandlerError> {
        let central = match self {
            Self::Single(function) => return Ok(Reach::Ready(Arc::clone(function))),
            Self::Central(central) => central,
        };
        let Some(at) = at else {
            let reason =
                "central mode: the event does not name the account (12 digits) and region its resources are in";
            return Err(medic_core::MalformedEvent { reason: reason.into() }.into());
        };
        match central.member(at, now).await? {
            Ok(function) => Ok(Reach::Ready(function)),
            Err(reason) => central.refused(raw, at, &reason, now).await.map(Reach::Refused),
        }
    }

    /// Where a scheduled function (the reconciler) runs: single-account mode's one function
    /// (`None`); in central mode medic's own account and each of `MEDIC_ACCOUNTS`, in the
    /// function's region. Without `MEDIC_ACCOUNTS` only medic's own: the member accounts are
    /// known by their events, and listing an organisation's accounts needs the management account.
    pub fn sweep_targets(&self) -> Vec<Option<AccountRegion>> {
        let Self::Central(central) = self else { return vec![None] };
        let region = central.sdk.region().map(ToString::to_string).unwrap_or_default();
        let home = &central.settings.home_account;
        std::iter::once(home)
            .chain(central.settings.allowed.iter().filter(|account| *account != home))
            .map(|account| Some(AccountRegion::new(account.as_str(), region.as_str())))
            .collect()
    }
}

impl<F: PerAccount> Central<F> {
    /// The skip of an event from an account medic may not act in, and the account's warning
    /// notice if none went out today. The notice is claimed before it is sent and the claim given
    /// back if SNS refuses it, so the day's notice is never lost to a failed publish.
    async fn refused(
        &self,
        raw: &Value,
        at: &AccountRegion,
        reason: &str,
        now: EpochSeconds,
    ) -> Result<Outcome, HandlerError> {
        let policy = self.config.policy.for_account(&at.account);
        let text = |name: &str| raw.get(name).and_then(Value::as_str);
        let event =
            text("id").map_or_else(|| format!("account-refused:{}", at.account), |id| format!("eventbridge:{id}"));
        let resource = raw
            .get("resources")
            .and_then(|r| r.get(0))
            .and_then(Value::as_str)
            .map_or_else(|| format!("account/{}", at.account), str::to_owned);
        let mut outcome = Outcome {
            event,
            resource,
            status: Status::Skipped,
            action: None,
            label: Some("account-refused".into()),
            reason: format!("medic may not act in account {}: {reason}", at.account),
            account: Some(at.account.clone()),
            region: Some(at.region.clone()),
            severity: None,
            dry_run: policy.dry_run,
            notice: None,
        };
        let key = accounts::refusal_notice_key(&at.account, now);
        let ledger = &self.ledger;
        if ledger.start_cooldown(&key, accounts::end_of_day(now), now, &outcome.event, None).await? {
            let kind = NoticeKind::AccountRefused { account: &at.account, region: &at.region, reason };
            let what_happened = format!(
                "an event ({}) came from account {} in {}",
                text("detail-type").unwrap_or("no detail-type"),
                at.account,
                at.region
            );
            let mut built =
                notice::build(&kind, &what_happened, &notice::record(&outcome), &policy).from_account(Some(at));
            built.attributes.push((NOTICE_ID_ATTRIBUTE.to_owned(), key.clone()));
            if let Err(error) = self.notifier.publish(&built).await {
                if let Err(forgot) = ledger.forget(&key).await {
                    tracing::error!(key = %key, error = %forgot, "could not give back the claim of an account's refusal notice; it is not sent again today");
                }
                return Err(error.into());
            }
            outcome.severity = Some(built.severity);
            outcome.notice = Some(built.subject);
        }
        tracing::warn!(account = %at.account, region = %at.region, reason = %reason, "event from an account medic may not act in: skipped");
        crate::emf::emit(&crate::emf::decision_record(F::NAME, &outcome, 0.0, crate::engine::wall_clock_ms()));
        Ok(outcome)
    }

    /// The function for `at`, built on first use; `Err(reason)` when medic may not act there.
    async fn member(&self, at: &AccountRegion, now: EpochSeconds) -> Result<Result<Arc<F>, String>, PortError> {
        // One event at a time per container: the lock is never contended in Lambda, and keeps a
        // test's concurrent invocations from assuming one role twice.
        let mut known = self.known.lock().await;
        match known.get(at) {
            Some(Known::Ready { function, role: None }) => return Ok(Ok(Arc::clone(function))),
            Some(Known::Ready { function, role: Some(role) })
                if !role.expires_within(REFRESH_BEFORE_EXPIRY_SECONDS) =>
            {
                return Ok(Ok(Arc::clone(function)))
            }
            Some(Known::Refused { reason, recheck_at }) if *recheck_at > now => return Ok(Err(reason.clone())),
            _ => {}
        }
        if let Some(reason) = self.settings.refuses(&at.account) {
            known.insert(at.clone(), Known::Refused { reason: reason.clone(), recheck_at: i64::MAX });
            return Ok(Err(reason));
        }
        let region = Region::new(at.region.clone());
        if at.account == self.settings.home_account || !F::ACTS_IN_MEMBER {
            let own = self.sdk.to_builder().region(region).build();
            let function = Arc::new(F::build(&own, &self.sdk, &self.for_account(at), Some(at)));
            known.insert(at.clone(), Known::Ready { function: Arc::clone(&function), role: None });
            return Ok(Ok(function));
        }
        let credentials = match self.assume(at).await {
            Ok(credentials) => credentials,
            Err(Unusable::Failed(error)) => return Err(error),
            Err(Unusable::Refused(reason)) => {
                known.insert(
                    at.clone(),
                    Known::Refused { reason: reason.clone(), recheck_at: now + REFUSAL_RECHECK_SECONDS },
                );
                return Ok(Err(reason));
            }
        };
        if let Some(Known::Ready { function, role: Some(role) }) = known.get(at) {
            role.replace(credentials);
            return Ok(Ok(Arc::clone(function)));
        }
        let role = RoleCredentials(Arc::new(RwLock::new(credentials)));
        let member = self
            .sdk
            .to_builder()
            .region(region)
            .credentials_provider(SharedCredentialsProvider::new(role.clone()))
            // The role's credentials are cached here, per account and region; the SDK's own cache
            // would hold them past a refresh.
            .identity_cache(IdentityCache::no_cache())
            .build();
        let function = Arc::new(F::build(&member, &self.sdk, &self.for_account(at), Some(at)));
        known.insert(at.clone(), Known::Ready { function: Arc::clone(&function), role: Some(role) });
        Ok(Ok(function))
    }

    /// The settings for `at`: dry-run there if `MEDIC_DRY_RUN_ACCOUNTS` names it.
    fn for_account(&self, at: &AccountRegion) -> MedicConfig {
        MedicConfig { policy: self.config.policy.for_account(&at.account), ..self.config.clone() }
    }

    async fn assume(&self, at: &AccountRegion) -> Result<Credentials, Unusable> {
        let arn =
            format!("arn:{}:iam::{}:role/{}", accounts::partition(&at.region), at.account, self.settings.member_role);
        let answer = self
            .sts
            .assume_role()
            .role_arn(&arn)
            .role_session_name(format!("medic-{}", F::NAME))
            .set_external_id(self.settings.external_id.clone())
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            Err(error) => {
                let error = classify("sts:AssumeRole", error);
                return Err(if error.retryable {
                    Unusable::Failed(error)
                } else {
                    Unusable::Refused(format!("medic could not assume its member role {arn}: {}", error.message))
                });
            }
        };
        let Some(given) = output.credentials else {
            return Err(Unusable::Refused(format!("AssumeRole of {arn} returned no credentials")));
        };
        let expiry = SystemTime::try_from(given.expiration).ok();
        Ok(Credentials::new(
            given.access_key_id,
            given.secret_access_key,
            Some(given.session_token),
            expiry,
            "medic-member-role",
        ))
    }
}

/// A member role's credentials, shared by every client built for its account and region and
/// replaced in place when they are assumed again.
#[derive(Debug, Clone)]
struct RoleCredentials(Arc<RwLock<Credentials>>);

impl RoleCredentials {
    fn current(&self) -> Credentials {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn replace(&self, credentials: Credentials) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = credentials;
    }

    fn expires_within(&self, seconds: u64) -> bool {
        self.current().expiry().is_some_and(|expiry| {
            expiry.duration_since(SystemTime::now()).unwrap_or_default() < Duration::from_secs(seconds)
        })
    }
}

impl ProvideCredentials for RoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Ok(self.current()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(expires_in: Option<u64>) -> RoleCredentials {
        let expiry = expires_in.map(|seconds| SystemTime::now() + Duration::from_secs(seconds));
        RoleCredentials(Arc::new(RwLock::new(Credentials::new("AKID", "secret", None, expiry, "test"))))
    }

    #[test]
    fn given_role_credentials_when_checked_then_assumed_again_only_within_the_refresh_margin_of_expiry() {
        assert!(role(Some(REFRESH_BEFORE_EXPIRY_SECONDS - 10)).expires_within(REFRESH_BEFORE_EXPIRY_SECONDS));
        assert!(!role(Some(REFRESH_BEFORE_EXPIRY_SECONDS + 600)).expires_within(REFRESH_BEFORE_EXPIRY_SECONDS));
        assert!(!role(None).expires_within(REFRESH_BEFORE_EXPIRY_SECONDS), "no expiry: never refreshed");
        let shared = role(Some(10));
        let client_side = shared.clone();
        shared.replace(Credentials::new("AKID2", "secret", None, None, "test"));
        assert_eq!(client_side.current().access_key_id(), "AKID2", "every client sees the credentials assumed again");
    }
}
