//! `medic`, the operator CLI. It reads and writes only what the functions do (the ledger, the
//! dead-letter queue) and decides only through their libraries: `explain` runs a function's own
//! handler in dry-run against a read-only view of the ledger, and `redrive` hands each message
//! back to the function it came from.

pub mod explain;
pub mod redrive;
pub mod stack;
pub mod status;

use clap::{Args, Parser, Subcommand};

pub use stack::Resources;

#[derive(Debug, Parser)]
#[command(
    name = "medic",
    version,
    about = "Operate medic: what it did, pause it, redrive its dead letters, explain a decision"
)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: Command,
}

/// Where medic's resources are: a stack's outputs, or each one given (a flag wins over the stack).
#[derive(Debug, Clone, Default, Args)]
pub struct Target {
    /// The medic CloudFormation stack; its outputs name the ledger table, notice topic, dead-letter
    /// queue and functions.
    #[arg(long, global = true, env = "MEDIC_STACK")]
    pub stack: Option<String>,
    /// The ledger table (output `LedgerTableName`).
    #[arg(long, global = true, env = "MEDIC_LEDGER_TABLE")]
    pub table: Option<String>,
    /// The notice topic (output `NoticeTopicArn`); `explain` only names it.
    #[arg(long, global = true, env = "MEDIC_TOPIC_ARN")]
    pub topic_arn: Option<String>,
    /// The dead-letter queue (output `DeadLetterQueueUrl`).
    #[arg(long, global = true, env = "MEDIC_DLQ_URL")]
    pub dlq_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// What medic did and decided: actions, skips by reason, breakers, cooldowns, open
    /// remediations and how they converge, the pause switch.
    Status {
        /// How far back, as 90s, 30m, 24h or 7d.
        #[arg(long, default_value = "24h")]
        since: String,
        /// One JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Turn the pause switch on: every function runs as in dry-run and names the pause.
    Pause {
        /// Who and why; quoted in every notice while medic is paused.
        #[arg(long)]
        reason: String,
        /// Central mode: pause medic in this member account only.
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
    },
    /// Turn the pause switch off.
    Resume {
        /// Central mode: the switch of this member account (`pause --account`).
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
    },
    /// Hand each dead-letter message back to the function it came from, one by one.
    Redrive {
        /// Say what each message would do; redrive nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also redrive events older than the ledger's retention whose decision is an action that
        /// is not idempotent (a redrive after the record expired could act twice).
        #[arg(long)]
        force: bool,
    },
    /// Parse an event, read AWS (read-only), and print the decision, what the guard says and the
    /// notice that would be sent, without claiming, acting or publishing.
    Explain {
        /// The event, as a JSON file.
        event: std::path::PathBuf,
        /// The function to ask (default: the one the event is for).
        #[arg(long, value_enum)]
        function: Option<explain::Function>,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A duration as `90s`, `30m`, `24h`, `7d` or plain seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => (&text[..at], unit),
        _ => (text, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        other => return Err(format!("`{text}`: unknown unit `{other}` (use s, m, h or d)")),
    };
    number
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n * scale)
        .ok_or_else(|| format!("`{text}` is not a duration like 90s, 30m, 24h or 7d"))
}

/// Runs one command and returns what it prints; an error is the message for stderr.
pub async fn run(cli: Cli, sdk: &aws_config::SdkConfig, now: medic_core::time::EpochSeconds) -> Result<String, String> {
    let policy = medic_core::Policy::from_lookup(|name| std::env::var(name).ok()).map_err(|e| e.to_string())?;
    let resources = Resources::resolve(&cli.target, sdk).await.map_err(|e| e.to_string())?;
    let ledger = || -> Result<medic_aws::adapters::dynamodb::DynamoLedger, String> {
        Ok(medic_aws::adapters::dynamodb::DynamoLedger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            resources.table()?,
            &policy,
        ))
    };
    match cli.command {
        Command::Status { since, json } => {
            let since = now - parse_duration(&since)?;
            let items = ledger()?.scan().await.map_err(|e| e.to_string())?;
            let checker = reconciler::AwsReconciler::from_sdk_config(
                sdk,
                medic_aws::MedicConfig {
                    policy: policy.clone(),
                    ledger_table: resources.table()?.to_owned(),
                    topic_arn: resources.topic_arn(),
                    accounts: medic_aws::config::Accounts::Single,
                },
                None,
            );
            let (judged, _) = checker.convergence(now).await.map_err(|e| e.to_string())?;
            let report = status::summarize(&items, &judged, &policy, now, since);
            Ok(if json { to_json(&report) } else { status::render(&report) })
        }
        Command::Pause { reason, account } => {
            if reason.trim().is_empty() {
                return Err("--reason must say who paused medic and why: it is quoted in every notice".into());
            }
            let account = checked_account(account.as_deref())?;
            ledger()?.pause(account, reason.trim(), now).await.map_err(|e| e.to_string())?;
            Ok(match account {
                None => format!("medic is paused ({}): every function runs as in dry-run until `medic resume`\n", reason.trim()),
                Some(account) => format!(
                    "medic is paused in account {account} ({}): it runs as in dry-run there until `medic resume --account {account}`\n",
                    reason.trim()
                ),
            })
        }
        Command::Resume { account } => {
            let account = checked_account(account.as_deref())?;
            ledger()?.resume(account).await.map_err(|e| e.to_string())?;
            Ok(match account {
                None => "medic is running: the pause switch is off\n".into(),
                Some(account) => format!("medic is running in account {account}: its pause switch is off\n"),
            })
        }
        Command::Redrive { dry_run, force } => {
            let invoker = redrive::LambdaInvoker(aws_sdk_lambda::Client::new(sdk));
            let options = redrive::Options { dry_run, force, now };
            let lines = redrive::redrive(sdk, &resources, &policy, options, &invoker).await?;
            Ok(redrive::render(&lines))
        }
        Command::Explain { event, function, json } => {
            let text = std::fs::read_to_string(&event).map_err(|e| format!("{}: {e}", event.display()))?;
            let event: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", event.display()))?;
            let function = match function {
                Some(function) => function,
                None => explain::Function::detect(&event)?,
            };
            let explanation = explain::explain(sdk, &resources, &policy, event, function, now).await?;
            Ok(if json { to_json(&explanation) } else { explanation.render() })
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).map_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"), |text| text + "\n")
}

/// `--account`, checked to be an account id before it names a ledger key.
fn checked_account(account: Option<&str>) -> Result<Option<&str>, String> {
    match account {
        Some(account) if !medic_core::ids::is_account_id(account) => {
            Err(format!("--account {account:?} is not a 12-digit account id"))
        }
        account => Ok(account),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_durations_when_parsed_then_seconds_or_a_clear_error() {
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("3w").unwrap_err().contains("unknown unit `w`"));
        assert!(parse_duration("x5s").unwrap_err().contains("not a duration"));
    }
}
