//! The one notice format: a subject of at most 100 characters, a readable body followed by the
//! JSON record, and message attributes that subscription filter policies can route on.

use serde::Serialize;
use serde_json::json;

use crate::accounts::AccountRegion;
use crate::guard::Breaker;
use crate::plan::{Action, Alert, Severity};
use crate::policy::Policy;

pub const MAX_SUBJECT_CHARS: usize = 100;

/// A notice body stays under this many bytes, so that with its subject and attributes it is
/// within SNS's 256 KiB message limit, and, stored with its outcome, within DynamoDB's 400 KB
/// item limit.
pub const MAX_BODY_BYTES: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub subject: String,
    pub body: String,
    pub severity: Severity,
    /// SNS message attributes: severity, action, outcome, resource, environment, and the
    /// account and region where the event names them.
    pub attributes: Vec<(String, String)>,
}

impl Notice {
    /// The notice with the account and region of its resources as message attributes, for
    /// subscriptions that route one account's notices to its own team.
    pub fn from_account(mut self, origin: Option<&AccountRegion>) -> Self {
        if let Some(origin) = origin {
            self.attributes.push(("account".into(), origin.account.clone()));
            self.attributes.push(("region".into(), origin.region.clone()));
        }
        self
    }
}

/// What a notice is about, in the words the body needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind<'a> {
    /// A remediation was made (`done`) or would have been (dry-run).
    Action { action: &'a Action, reason: &'a str, done: bool },
    /// Nothing changed; a human must act.
    Alert(&'a Alert),
    /// `breaker` refused `action`: its limit of `max` actions per window is reached.
    BreakerOpen { action: &'a Action, breaker: Breaker, max: u32, window_seconds: i64 },
    /// The mutating call was refused for good.
    Failed { action: &'a Action, error: &'a str },
    /// An interrupted attempt recorded its intent to make a non-idempotent call, and AWS cannot
    /// tell whether it happened: medic does not repeat it.
    Unconfirmed { action: &'a Action },
    /// Every action a safety rule held back in `scope` since its critical notice of this window.
    Digest { scope: &'a str, scope_label: &'a str, held: &'a [String] },
    /// Central mode: an event came from an account medic may not act in (once per account and
    /// day).
    AccountRefused { account: &'a str, region: &'a str, reason: &'a str },
}

/// At most this many resources are listed one by one in a digest; the rest are counted.
pub const MAX_DIGEST_LINES: usize = 300;

/// `text` cut to at most `max_bytes` (on a character boundary), saying how much was left out.
pub fn fit(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes.saturating_sub(60);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes left out)", &text[..end], text.len() - end)
}

/// Builds the notice for `kind`. `what_happened` is the trigger's summary; `record` is the JSON
/// outcome appended to the body.
pub fn build(kind: &NoticeKind<'_>, what_happened: &str, record: &serde_json::Value, policy: &Policy) -> Notice {
    let dry = match (&policy.paused, policy.dry_run) {
        (Some(_), _) => "[PAUSED] ",
        (None, true) => "[DRY-RUN] ",
        (None, false) => "",
    };
    let (severity, scope_label, headline, action_name, outcome, did, why, check) = match kind {
        NoticeKind::Action { action, reason, done } => (
            if *done { action.done_severity() } else { Severity::Info },
            action.scope_label(),
            format!("{} ({})", action.describe(*done), first_clause(reason)),
            action.name().to_owned(),
            if *done { "acted" } else { "would-act" },
            format!("{}: {}", if *done { "medic called" } else { "medic would have called" }, action.api_call()),
            (*reason).to_owned(),
            if *done {
                action_advice(action)
            } else if policy.paused.is_some() {
                "Nothing was changed: medic is paused. Heal it by hand if needed; medic acts again on new events once the pause switch is cleared (README: Pause).".to_owned()
            } else {
                "Nothing was changed: medic runs with MEDIC_DRY_RUN=true. Heal it by hand if needed, and turn dry-run off once its decisions look right.".to_owned()
            },
        ),
        NoticeKind::Alert(alert) => (
            alert.severity,
            alert.scope_label.clone(),
            alert.headline.clone(),
            "notify".to_owned(),
            "alerted",
            "medic changed nothing".to_owned(),
            alert.reason.clone(),
            alert.advice.clone(),
        ),
        NoticeKind::BreakerOpen { action, breaker, max, window_seconds } => {
            let minutes = window_seconds / 60;
            let which = if *breaker == Breaker::Account { "account breaker" } else { "breaker" };
            (
                Severity::Critical,
                action.scope_label(),
                format!("{which} open (limit {max} per {minutes} min), left {} alone", action.resource()),
                action.name().to_owned(),
                "blocked",
                format!(
                    "medic refused to {} {}: it already took {max} mutating actions in {} within {minutes} minutes (counted over this window and the one before), its limit",
                    action.name(),
                    action.resource(),
                    breaker.counted_in(action)
                ),
                "the blast-radius circuit breaker stops medic from making a wide failure worse".to_owned(),
                "Many resources failing together usually means an Availability Zone problem or a bad deploy: check the AWS Health dashboard, recent deployments and the group's activity history before replacing anything by hand. medic acts again once fewer than the limit fall within the current and previous window.".to_owned(),
            )
        }
        NoticeKind::Unconfirmed { action } => (
            Severity::Critical,
            action.scope_label(),
            format!("could not confirm {} {}", action.name(), action.resource()),
            action.name().to_owned(),
            "failed",
            format!(
                "medic changed nothing now: an earlier attempt of this event recorded its intent to call {} and was interrupted before it recorded success, and AWS cannot tell whether the call happened",
                action.api_call()
            ),
            "a reboot, a stop, a promotion or a failover is never repeated blindly".to_owned(),
            format!("Check by hand whether it happened (CloudTrail, the resource's events) and finish it if not: {}.", action.resource()),
        ),
        NoticeKind::Digest { scope, scope_label, held } => (
            Severity::Critical,
            (*scope_label).to_owned(),
            format!("left {} more alone since the critical notice", held.len()),
            "digest".to_owned(),
            "blocked",
            format!(
                "medic changed nothing; since its critical notice about {scope} it held back these actions as well{}:\n- {}",
                if held.len() > MAX_DIGEST_LINES {
                    format!(" (the first {MAX_DIGEST_LINES} listed, and {} more)", held.len() - MAX_DIGEST_LINES)
                } else {
                    String::new()
                },
                held.iter().take(MAX_DIGEST_LINES).cloned().collect::<Vec<_>>().join("\n- "),
            ),
            "the circuit breaker or the percentage floor stays closed for the rest of the window; this digest names every resource left alone, once per scope and window".to_owned(),
            "Each resource above is still broken: heal the ones that matter by hand once the cause (AZ event, bad deploy) is known, or wait for medic to act again in a later window.".to_owned(),
        ),
        NoticeKind::AccountRefused { account, region, reason } => (
            Severity::Warning,
            format!("account {account}"),
            format!("cannot act in account {account} ({region})"),
            "notify".to_owned(),
            "skipped",
            format!("medic changed nothing in account {account}: {reason}"),
            "medic acts only in accounts whose member role it may assume and that its settings allow; every event from this account is skipped until that changes, and this notice is sent once per account per day".to_owned(),
            format!("If medic should heal account {account}: deploy the member stack there (README: Organisation deployment) and, when MEDIC_ACCOUNTS is set, add {account} to it. If not, remove the account's forwarding rules so its events stop reaching medic."),
        ),
        NoticeKind::Failed { action, error } => (
            Severity::Critical,
            action.scope_label(),
            format!("could not {} {}", action.name(), action.resource()),
            action.name().to_owned(),
            "failed",
            format!("medic tried {} and AWS refused: {error}", action.api_call()),
            "the call failed in a way a retry will not fix".to_owned(),
            "Fix the cause named in the error (permissions, a resource that changed meanwhile) and heal the resource by hand.".to_owned(),
        ),
    };
    let subject = truncate_subject(&format!("[{}] {dry}{scope_label}: {headline}", severity.as_str().to_uppercase()));
    let record_text = serde_json::to_string_pretty(record).unwrap_or_else(|_| record.to_string());
    let part = MAX_BODY_BYTES / 5 - 100;
    let (what_happened, did, why, check, record_text) =
        (fit(what_happened, part), fit(&did, part), fit(&why, part), fit(&check, part), fit(&record_text, part));
    let paused = policy
        .paused
        .as_ref()
        .map(|reason| format!("medic is paused ({reason}): it changes nothing until the pause switch is cleared.\n"))
        .unwrap_or_default();
    let body = format!(
        "{paused}What happened: {what_happened}.\nWhat medic did: {did}.\nWhy: {why}.\nWhat to check: {check}\n\nRecord:\n{record_text}\n"
    );
    let resource = match kind {
        NoticeKind::Action { action, .. }
        | NoticeKind::BreakerOpen { action, .. }
        | NoticeKind::Failed { action, .. }
        | NoticeKind::Unconfirmed { action } => action.resource().to_owned(),
        NoticeKind::Alert(alert) => alert.scope_label.clone(),
        NoticeKind::Digest { scope, .. } => (*scope).to_owned(),
        NoticeKind::AccountRefused { account, .. } => format!("account/{account}"),
    };
    Notice {
        subject,
        body,
        severity,
        attributes: vec![
            ("severity".into(), severity.as_str().into()),
            ("action".into(), action_name),
            ("outcome".into(), outcome.into()),
            ("resource".into(), resource),
            ("environment".into(), policy.environment.clone()),
        ],
    }
}

fn action_advice(action: &Action) -> String {
    match action {
        Action::ReplaceInstance { group, .. } => format!(
            "Auto Scaling launches a replacement within minutes; confirm it in the activity history of {group} and find out why the instance went down (console output, CloudTrail StopInstances/TerminateInstances)."
        ),
        Action::StartInstance { instance_id, .. } => format!(
            "Confirm {instance_id} passes its status checks and serves again, and find out who or what stopped it (CloudTrail StopInstances)."
        ),
        Action::ScaleGroup { group, .. } => format!(
            "Watch the alarm return to OK and the new capacity of {group} settle; repeated scaling in one direction is a capacity-planning signal."
        ),
        Action::RebootInstance { instance_id } => format!(
            "Confirm {instance_id} passes its instance status check after the reboot; if it fails again, look at its console output."
        ),
        Action::StopForRecovery { instance_id } => format!(
            "Confirm the instance healer started {instance_id} again and that it passes its system status check on the new host."
        ),
        Action::PromoteReplica { primary, replica, .. } => format!(
            "{replica} is now a standalone writer and {primary} is no longer its source; this cannot be undone. Check that writes reach {replica}, compare recent data against the application's own records for the loss window above, create a new read replica of {replica}, and find out why {primary} failed before deleting it."
        ),
        Action::PointWriterRecord { record_name, .. } => format!(
            "Clients resolving {record_name} reach the promoted writer once their DNS cache (the record's TTL) expires; to undo, UPSERT {record_name} back by hand. Restart connection pools that pinned the old address."
        ),
        Action::SetReaderWeight { reader, to: 0, from } => format!(
            "Reads now go to the other replicas of {}. medic puts {} back (weight from its medic:reader-weight tag, else 100; it had {from}) when RDS reports replication resumed; to undo by hand, UPSERT the record with SetIdentifier {} to weight {from}.",
            reader.record_name, reader.replica, reader.replica
        ),
        Action::SetReaderWeight { reader, .. } => format!(
            "Confirm {} serves current data (ReplicaLag near 0) now that it takes reads again.",
            reader.replica
        ),
        Action::RebootReplica { replica, .. } => format!(
            "Watch {replica} for RDS-EVENT-0046 (replication resumed): medic then puts it back in the reader set. If replication stays broken, rebuild the replica."
        ),
        Action::FailoverCluster { cluster, target } => format!(
            "Confirm {target} is the writer of {cluster} (RDS-EVENT-0071) and that the cluster endpoint answers writes; medic retries a failed failover once per 24 h, so a further failure needs a human."
        ),
    }
}

/// The reason's first clause, for the subject; the body carries all of it.
fn first_clause(reason: &str) -> &str {
    let end = [reason.find("; "), reason.find(": ")].into_iter().flatten().min().unwrap_or(reason.len());
    &reason[..end]
}

/// SNS subjects must be printable ASCII of at most 100 characters: anything else is replaced by
/// `?`, and a long subject is cut and marked with `...`.
pub fn truncate_subject(subject: &str) -> String {
    let ascii: String = subject.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    if ascii.len() <= MAX_SUBJECT_CHARS {
        return ascii;
    }
    format!("{}...", &ascii[..MAX_SUBJECT_CHARS - 3])
}

/// The JSON record for a notice body and the decision log, from any serializable outcome.
pub fn record<T: Serialize>(outcome: &T) -> serde_json::Value {
    serde_json::to_value(outcome).unwrap_or_else(|error| json!({"unserializable": error.to_string()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace() -> Action {
        Action::ReplaceInstance { group: "web-prod".into(), instance_id: "i-0abc".into() }
    }

    #[test]
    fn given_replacement_when_noticed_then_subject_severity_and_attributes() {
        let action = replace();
        let notice = build(
            &NoticeKind::Action { action: &action, reason: "stopped unexpectedly", done: true },
            "EC2 instance i-0abc entered state stopped",
            &json!({"status": "acted"}),
            &Policy { environment: "prod".into(), ..Policy::default() },
        );
        assert_eq!(notice.subject, "[WARNING] asg web-prod: replaced i-0abc (stopped unexpectedly)");
        assert!(notice.body.starts_with("What happened: EC2 instance i-0abc entered state stopped."));
        assert!(notice.body.contains("\"status\": \"acted\""));
        let attribute = |name: &str| notice.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(attribute("severity"), Some("warning"));
        assert_eq!(attribute("action"), Some("replace"));
        assert_eq!(attribute("outcome"), Some("acted"));
        assert_eq!(attribute("resource"), Some("i-0abc"));
        assert_eq!(attribute("environment"), Some("prod"));
    }

    #[test]
    fn given_dry_run_when_noticed_then_says_would_and_is_info() {
        let action = replace();
        let notice = build(
            &NoticeKind::Action { action: &action, reason: "stopped", done: false },
            "x",
            &json!({}),
            &Policy { dry_run: true, ..Policy::default() },
        );
        assert_eq!(notice.subject, "[INFO] [DRY-RUN] asg web-prod: would replace i-0abc (stopped)");
        assert!(notice.body.contains("medic would have called: autoscaling:SetInstanceHealth"));
        assert!(notice.body.contains("Nothing was changed: medic runs with MEDIC_DRY_RUN=true"));
    }

    #[test]
    fn rule12_given_a_digest_of_twenty_thousand_resources_when_noticed_then_it_fits_sns_and_says_how_many_more() {
        let held: Vec<String> = (0..20_000)
            .map(|n| format!("i-{n:017x}: would replace i-{n:017x} (3 of 6 out of service, over 34 %)"))
            .collect();
        let kind = NoticeKind::Digest { scope: "asg/web-prod", scope_label: "asg web-prod", held: &held };
        let record = serde_json::json!({"reason": "x".repeat(500_000)});

        let notice = build(&kind, &"y".repeat(500_000), &record, &Policy::default());

        assert!(notice.body.len() <= MAX_BODY_BYTES, "{} bytes", notice.body.len());
        assert!(notice.subject.contains("left 20000 more alone"), "{}", notice.subject);
        let left_out = format!("and {} more", 20_000 - MAX_DIGEST_LINES);
        assert!(notice.body.contains(&left_out), "the digest says how many it left out");
    }

    #[test]
    fn given_long_subject_when_truncated_then_at_most_100_chars() {
        let long = format!("[CRITICAL] asg {}: breaker open", "ä".repeat(200));
        let cut = truncate_subject(&long);
        assert_eq!(cut.len(), MAX_SUBJECT_CHARS);
        assert!(cut.is_ascii() && cut.ends_with("...") && cut.contains("asg ??"));
        assert_eq!(truncate_subject("short"), "short");
    }
}
