//! One medic for an AWS Organization (central mode): where an event's resources are, and how the
//! ledger keeps one account's cooldowns, breaker windows, floors and pause switch apart from
//! another's.

use serde_json::Value;

use crate::guard::PAUSE_KEY;
use crate::ids::is_account_id;
use crate::time::EpochSeconds;

/// The account and region an event's resources live in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountRegion {
    pub account: String,
    pub region: String,
}

impl AccountRegion {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Self { account: account.into(), region: region.into() }
    }

    /// What every ledger key about this account's resources in this region starts with: group
    /// names and DB identifiers are unique only within one, so two accounts' `web` groups keep
    /// their own cooldowns, in-flight replacements and breaker windows.
    pub fn ledger_prefix(&self) -> String {
        format!("{}/{}/", self.account, self.region)
    }
}

/// A ledger key and the account and region it was written for, when it carries them
/// ([`AccountRegion::ledger_prefix`]): `(Some(where), the rest)`, else `(None, key)`.
pub fn split_ledger_key(key: &str) -> (Option<AccountRegion>, &str) {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(account), Some(region), Some(rest))
            if is_account_id(account) && !region.is_empty() && !region.contains('#') =>
        {
            (Some(AccountRegion::new(account, region)), rest)
        }
        _ => (None, key),
    }
}

/// The pause switch of one account, beside medic's own ([`PAUSE_KEY`]), which pauses every
/// account.
pub fn account_pause_key(account: &str) -> String {
    format!("{PAUSE_KEY}#{account}")
}

/// The key that makes a refused account's warning notice one per account per UTC day.
pub fn refusal_notice_key(account: &str, now: EpochSeconds) -> String {
    format!("account-refused#{account}#{}", now.div_euclid(86_400))
}

/// When the day of [`refusal_notice_key`] ends.
pub fn end_of_day(now: EpochSeconds) -> EpochSeconds {
    (now.div_euclid(86_400) + 1) * 86_400
}

/// The account and region of any event medic accepts, as it carries them: an EventBridge
/// envelope's `account` and `region` (a member's event forwarded to the central bus keeps its
/// own), a direct alarm action's `accountId` and `region`, an SNS alarm message's
/// `AWSAccountId` and the region of its `AlarmArn`. `None` when they cannot be read: the
/// function's own parser then names what is wrong.
pub fn origin(raw: &Value) -> Option<AccountRegion> {
    let text = |value: &Value, name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let (account, region) = if let Some(record) = raw.get("Records").and_then(|r| r.get(0)) {
        let message: Value = serde_json::from_str(record.get("Sns")?.get("Message")?.as_str()?).ok()?;
        let region = text(&message, "AlarmArn")?.split(':').nth(3)?.to_owned();
        (text(&message, "AWSAccountId")?, region)
    } else {
        (text(raw, "account").or_else(|| text(raw, "accountId"))?, text(raw, "region")?)
    };
    (is_account_id(&account) && !region.is_empty()).then_some(AccountRegion { account, region })
}

/// The AWS partition of `region`, for the member role's ARN.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_each_event_shape_when_its_origin_is_read_then_the_account_and_region_it_carries() {
        let sns_message = json!({
            "AWSAccountId": "222222222222",
            "AlarmArn": "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:web-cpu-high"
        })
        .to_string();
        let table = [
            (
                json!({"account": "111111111111", "region": "us-east-1", "source": "aws.ec2"}),
                Some(("111111111111", "us-east-1")),
            ),
            (
                json!({"accountId": "333333333333", "region": "us-west-2", "alarmData": {}}),
                Some(("333333333333", "us-west-2")),
            ),
            (json!({"Records": [{"Sns": {"Message": sns_message}}]}), Some(("222222222222", "eu-west-1"))),
            (json!({"account": "not-an-account", "region": "us-east-1"}), None),
            (json!({"account": "111111111111"}), None),
            (json!({"Records": [{"Sns": {"Message": "not json"}}]}), None),
            (json!([1, 2]), None),
        ];
        for (event, expected) in table {
            let expected = expected.map(|(account, region)| AccountRegion::new(account, region));
            assert_eq!(origin(&event), expected, "{event}");
        }
    }

    #[test]
    fn given_two_accounts_when_keyed_then_their_ledger_keys_and_pause_switches_differ() {
        let (a, b) = (AccountRegion::new("111111111111", "us-east-1"), AccountRegion::new("222222222222", "us-east-1"));
        assert_ne!(a.ledger_prefix(), b.ledger_prefix());
        assert_ne!(a.ledger_prefix(), AccountRegion::new("111111111111", "eu-west-1").ledger_prefix());
        assert_eq!(account_pause_key("111111111111"), "control#pause#111111111111");
    }

    #[test]
    fn given_times_in_one_utc_day_when_keyed_then_one_refusal_notice_key_until_the_day_ends() {
        let day = 20_000 * 86_400;
        assert_eq!(refusal_notice_key("1", day), refusal_notice_key("1", day + 86_399));
        assert_ne!(refusal_notice_key("1", day), refusal_notice_key("1", day + 86_400));
        assert_eq!(end_of_day(day + 5), day + 86_400);
        assert_eq!(
            (partition("us-east-1"), partition("cn-north-1"), partition("us-gov-west-1")),
            ("aws", "aws-cn", "aws-us-gov")
        );
    }
}
