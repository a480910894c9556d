//! `medic status`: what the ledger says medic did and decided, and how each open remediation
//! converges (read through the reconciler's own check).

use std::collections::BTreeMap;

use medic_aws::adapters::dynamodb::LedgerItem;
use medic_core::accounts;
use medic_core::guard::{self, PAUSE_KEY};
use medic_core::reconciler::Convergence;
use medic_core::time::{format_timestamp, EpochSeconds};
use medic_core::watch::Watch;
use medic_core::{Outcome, Policy, Status};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub now: EpochSeconds,
    /// The start of the period the decisions are from.
    pub since: EpochSeconds,
    pub paused: Option<Paused>,
    /// Central mode: the member accounts whose own pause switch is on.
    pub paused_accounts: Vec<PausedAccount>,
    /// Every decision of the period but the skips (acted, would act, alerted, blocked, failed),
    /// newest first.
    pub decisions: Vec<Decided>,
    /// Skips and duplicates of the period, by reason label.
    pub skips: BTreeMap<String, usize>,
    pub breakers: Vec<Breaker>,
    pub cooldowns: Vec<CooldownInForce>,
    pub remediations: Vec<Remediation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paused {
    pub reason: String,
    pub since: Option<EpochSeconds>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PausedAccount {
    pub account: String,
    pub reason: String,
    pub since: Option<EpochSeconds>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decided {
    pub at: EpochSeconds,
    pub status: String,
    pub action: Option<String>,
    pub resource: String,
    pub reason: String,
    pub event: String,
}

/// A breaker window with actions in it; `open` once it holds `max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breaker {
    pub scope: String,
    pub window_start: EpochSeconds,
    pub window_end: EpochSeconds,
    pub count: usize,
    pub max: u32,
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CooldownInForce {
    pub resource: String,
    pub action: String,
    pub until: EpochSeconds,
    pub started_at: Option<EpochSeconds>,
    /// The action succeeded (otherwise only its intent is recorded: in progress or interrupted).
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remediation {
    pub function: String,
    pub action: String,
    pub resource: String,
    pub started_at: EpochSeconds,
    /// `healed` (the next reconciler run records it), `waiting` or `overdue`.
    pub state: String,
    pub deadline: Option<EpochSeconds>,
    /// What is seen instead, when overdue.
    pub seen: Option<String>,
}

/// The report, from the ledger's items and the reconciler's judgement of the open watches.
pub fn summarize(
    items: &[LedgerItem],
    judged: &[(Watch, Convergence)],
    policy: &Policy,
    now: EpochSeconds,
    since: EpochSeconds,
) -> StatusReport {
    let mut report = StatusReport {
        now,
        since,
        paused: None,
        paused_accounts: Vec::new(),
        decisions: Vec::new(),
        skips: BTreeMap::new(),
        breakers: Vec::new(),
        cooldowns: Vec::new(),
        remediations: Vec::new(),
    };
    let account_pause = format!("{PAUSE_KEY}#");
    for item in items {
        // Central mode keeps each member account's items under its account and region: shown
        // with them, as in `210987654321/eu-west-1/asg/web`.
        let (place, key) = accounts::split_ledger_key(&item.key);
        let placed =
            |name: &str| place.as_ref().map_or_else(|| name.to_owned(), |p| format!("{}{name}", p.ledger_prefix()));
        let reason = || item.reason.clone().unwrap_or_else(|| "no reason given".into());
        if key == PAUSE_KEY {
            report.paused = Some(Paused { reason: reason(), since: item.started_at });
        } else if let Some(account) = key.strip_prefix(&account_pause) {
            report.paused_accounts.push(PausedAccount {
                account: account.to_owned(),
                reason: reason(),
                since: item.started_at,
            });
        } else if key.starts_with("event#") {
            let (Some(at), Some(outcome)) = (item.completed_at, item.outcome.as_deref()) else { continue };
            let Ok(outcome) = serde_json::from_str::<Outcome>(outcome) else { continue };
            if at < since {
                continue;
            }
            if matches!(outcome.status, Status::Skipped | Status::Duplicate) {
                *report.skips.entry(outcome.label.clone().unwrap_or_else(|| "unlabelled".into())).or_default() += 1;
            } else {
                report.decisions.push(Decided {
                    at,
                    status: outcome.status.as_str().to_owned(),
                    action: outcome.action,
                    resource: placed(&outcome.resource),
                    reason: outcome.reason,
                    event: outcome.event,
                });
            }
        } else if let Some(rest) = key.strip_prefix("breaker#") {
            let Some((scope, start)) = rest.rsplit_once('#') else { continue };
            let Ok(window_start) = start.parse::<EpochSeconds>() else { continue };
            let window_end = window_start + policy.breaker_window_seconds;
            if window_end <= now || item.members.is_empty() {
                continue;
            }
            let count = item.members.len();
            let max = guard::Breaker::of_scope(scope).max(policy);
            report.breakers.push(Breaker {
                scope: placed(scope),
                window_start,
                window_end,
                count,
                max,
                open: count >= max as usize,
            });
        } else if let Some(rest) = key.strip_prefix("cooldown#") {
            let (Some((resource, action)), Some(until)) = (rest.rsplit_once('#'), item.until) else { continue };
            if until > now {
                report.cooldowns.push(CooldownInForce {
                    resource: placed(resource),
                    action: action.to_owned(),
                    until,
                    started_at: item.started_at,
                    done: item.done.unwrap_or(true),
                });
            }
        }
    }
    report.paused_accounts.sort_by(|a, b| a.account.cmp(&b.account));
    report.decisions.sort_by(|a, b| b.at.cmp(&a.at).then(a.event.cmp(&b.event)));
    report.breakers.sort_by(|a, b| a.scope.cmp(&b.scope).then(a.window_start.cmp(&b.window_start)));
    report.cooldowns.sort_by(|a, b| a.until.cmp(&b.until).then(a.resource.cmp(&b.resource)));
    for (watch, convergence) in judged {
        let (state, deadline, seen) = match convergence {
            Convergence::Healed { .. } => ("healed", None, None),
            Convergence::Waiting { deadline } => ("waiting", Some(*deadline), None),
            Convergence::Overdue { deadline, seen } => ("overdue", Some(*deadline), Some(seen.clone())),
        };
        report.remediations.push(Remediation {
            function: watch.function.clone(),
            action: watch.action.name().to_owned(),
            resource: watch.action.resource().to_owned(),
            started_at: watch.started_at,
            state: state.to_owned(),
            deadline,
            seen,
        });
    }
    report
}

/// The report as readable tables.
pub fn render(report: &StatusReport) -> String {
    let mut text = String::new();
    match &report.paused {
        Some(paused) => {
            let since = paused.since.map_or(String::new(), |s| format!(" since {}", format_timestamp(s)));
            text.push_str(&format!("PAUSED{since}: {} (every function runs as in dry-run)\n", paused.reason));
        }
        None => text.push_str("not paused\n"),
    }
    for paused in &report.paused_accounts {
        let since = paused.since.map_or(String::new(), |s| format!(" since {}", format_timestamp(s)));
        text.push_str(&format!(
            "account {} PAUSED{since}: {} (runs as in dry-run there)\n",
            paused.account, paused.reason
        ));
    }
    text.push_str(&format!("\nDecisions since {} ({}):\n", format_timestamp(report.since), report.decisions.len()));
    text.push_str(&table(
        &["TIME", "OUTCOME", "ACTION", "RESOURCE", "REASON"],
        report
            .decisions
            .iter()
            .map(|d| {
                vec![
                    format_timestamp(d.at),
                    d.status.clone(),
                    d.action.clone().unwrap_or_else(|| "-".into()),
                    d.resource.clone(),
                    clip(&d.reason, 90),
                ]
            })
            .collect(),
    ));
    text.push_str("\nSkips by reason:\n");
    text.push_str(&table(
        &["REASON", "COUNT"],
        report.skips.iter().map(|(label, count)| vec![label.clone(), count.to_string()]).collect(),
    ));
    text.push_str("\nBreaker windows:\n");
    text.push_str(&table(
        &["SCOPE", "WINDOW", "ACTIONS", "STATE"],
        report
            .breakers
            .iter()
            .map(|b| {
                vec![
                    b.scope.clone(),
                    format!("{} – {}", format_timestamp(b.window_start), format_timestamp(b.window_end)),
                    format!("{}/{}", b.count, b.max),
                    if b.open { "OPEN".into() } else { "closed".into() },
                ]
            })
            .collect(),
    ));
    text.push_str("\nCooldowns in force:\n");
    text.push_str(&table(
        &["RESOURCE", "ACTION", "UNTIL", "STATE"],
        report
            .cooldowns
            .iter()
            .map(|c| {
                vec![
                    c.resource.clone(),
                    c.action.clone(),
                    format_timestamp(c.until),
                    if c.done { "done".into() } else { "in progress or interrupted".into() },
                ]
            })
            .collect(),
    ));
    text.push_str("\nOpen remediations:\n");
    text.push_str(&table(
        &["FUNCTION", "ACTION", "RESOURCE", "STARTED", "STATE", "DEADLINE", "SEEN"],
        report
            .remediations
            .iter()
            .map(|r| {
                vec![
                    r.function.clone(),
                    r.action.clone(),
                    r.resource.clone(),
                    format_timestamp(r.started_at),
                    r.state.clone(),
                    r.deadline.map_or_else(|| "-".into(), format_timestamp),
                    r.seen.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect(),
    ));
    text
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max - 1).collect();
    clipped.push('…');
    clipped
}

/// Left-aligned columns; `(none)` for an empty table.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return "  (none)\n".to_owned();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}", width = *width)).collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut text = line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        text.push_str(&line(row));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_core::Action;

    fn event(key: &str, at: EpochSeconds, outcome: serde_json::Value) -> LedgerItem {
        LedgerItem {
            key: format!("event#{key}"),
            status: Some("COMPLETED".into()),
            outcome: Some(outcome.to_string()),
            completed_at: Some(at),
            ..LedgerItem::default()
        }
    }

    #[test]
    fn given_a_central_ledger_when_summarized_then_member_accounts_pauses_breakers_and_cooldowns_are_shown_with_their_account(
    ) {
        let now: EpochSeconds = 1_000_000;
        let policy = Policy::default();
        let window = now - now.rem_euclid(policy.breaker_window_seconds);
        let items = vec![
            LedgerItem {
                key: accounts::account_pause_key("210987654321"),
                reason: Some("migration, bob".into()),
                started_at: Some(now - 60),
                ..LedgerItem::default()
            },
            LedgerItem {
                key: format!("210987654321/eu-west-1/breaker#asg/web#{window}"),
                members: vec!["a".into(), "b".into(), "c".into()],
                ..LedgerItem::default()
            },
            LedgerItem {
                key: "310987654321/us-east-1/cooldown#i-1#replace".into(),
                until: Some(now + 500),
                done: Some(true),
                ..LedgerItem::default()
            },
        ];

        let report = summarize(&items, &[], &policy, now, now - 86_400);

        assert_eq!(report.paused, None, "medic's own switch is off");
        let paused: Vec<(&str, &str)> =
            report.paused_accounts.iter().map(|p| (p.account.as_str(), p.reason.as_str())).collect();
        assert_eq!(paused, [("210987654321", "migration, bob")]);
        let breakers: Vec<(&str, bool)> = report.breakers.iter().map(|b| (b.scope.as_str(), b.open)).collect();
        assert_eq!(breakers, [("210987654321/eu-west-1/asg/web", true)]);
        assert_eq!(report.cooldowns[0].resource, "310987654321/us-east-1/i-1");
        let text = render(&report);
        assert!(text.contains("account 210987654321 PAUSED since"), "{text}");
    }

    #[test]
    fn given_ledger_items_when_summarized_then_each_kind_lands_in_its_table() {
        let now: EpochSeconds = 1_000_000;
        let policy = Policy::default();
        let window = now - now.rem_euclid(policy.breaker_window_seconds);
        let items = vec![
            LedgerItem {
                key: PAUSE_KEY.into(),
                reason: Some("AZ incident, alice".into()),
                started_at: Some(now - 60),
                ..LedgerItem::default()
            },
            event(
                "e1",
                now - 100,
                serde_json::json!({"event": "e1", "resource": "i-1", "status": "acted", "action": "replace", "reason": "replaced", "dry_run": false}),
            ),
            event(
                "e2",
                now - 50,
                serde_json::json!({"event": "e2", "resource": "i-2", "status": "skipped", "label": "grace-period", "reason": "in grace", "dry_run": false}),
            ),
            event(
                "old",
                now - 100_000,
                serde_json::json!({"event": "old", "resource": "i-3", "status": "acted", "reason": "long ago", "dry_run": false}),
            ),
            LedgerItem {
                key: format!("breaker#asg/web#{window}"),
                members: vec!["a".into(), "b".into(), "c".into()],
                ..LedgerItem::default()
            },
            LedgerItem { key: "breaker#asg/web#10".into(), members: vec!["a".into()], ..LedgerItem::default() },
            LedgerItem {
                key: format!("breaker#{}#{window}", guard::ACCOUNT_SCOPE),
                members: vec!["a".into(), "b".into(), "c".into()],
                ..LedgerItem::default()
            },
            LedgerItem {
                key: "cooldown#i-1#replace".into(),
                until: Some(now + 500),
                done: Some(true),
                ..LedgerItem::default()
            },
            LedgerItem { key: "cooldown#i-9#replace".into(), until: Some(now - 1), ..LedgerItem::default() },
        ];
        let watch = Watch {
            function: "instance-healer".into(),
            event: "event#e1".into(),
            action: Action::ReplaceInstance { group: "web".into(), instance_id: "i-1".into() },
            started_at: now - 100,
        };
        let judged = vec![(watch, Convergence::Overdue { deadline: now - 1, seen: "web has 1 of 2".into() })];

        let report = summarize(&items, &judged, &policy, now, now - 86_400);

        assert_eq!(report.paused.as_ref().map(|p| p.reason.as_str()), Some("AZ incident, alice"));
        assert_eq!(report.decisions.len(), 1, "{:?}", report.decisions);
        assert_eq!(report.decisions[0].action.as_deref(), Some("replace"));
        assert_eq!(report.skips.get("grace-period"), Some(&1));
        let breakers: Vec<(&str, usize, u32, bool)> =
            report.breakers.iter().map(|b| (b.scope.as_str(), b.count, b.max, b.open)).collect();
        assert_eq!(breakers, [("account-wide", 3, 30, false), ("asg/web", 3, 3, true)]);
        assert_eq!(report.cooldowns.len(), 1);
        assert_eq!(report.remediations[0].state, "overdue");
        let text = render(&report);
        assert!(text.starts_with("PAUSED since"), "{text}");
        assert!(text.contains("asg/web") && text.contains("3/3") && text.contains("OPEN"), "{text}");
        assert!(text.contains("web has 1 of 2"), "{text}");
    }
}
