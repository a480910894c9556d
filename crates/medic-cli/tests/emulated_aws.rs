//! The operator CLI against moto server over HTTP, through the real SDK clients: each command run
//! as `medic` runs it (parsed from its arguments), its output asserted, and what it changed (or did
//! not) read back from the emulated AWS.
//!
//! Run with `make test` (it starts moto and sets `AWS_ENDPOINT_URL`); plain `cargo test` skips
//! these because they are `#[ignore]`d.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::path::PathBuf;

use clap::Parser;
use medic_aws::adapters::dynamodb::DynamoLedger;
use medic_aws::ports::Ledger;
use medic_core::accounts::AccountRegion;
use medic_core::{Policy, Status};
use medic_testbench::{now, unique, World, MANAGED};
use serde_json::{json, Value};

async fn medic(world: &World, args: &[&str], at: i64) -> Result<String, String> {
    let mut argv = vec!["medic", "--table", &world.table, "--topic-arn", &world.topic_arn];
    argv.extend_from_slice(args);
    let cli = medic_cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    medic_cli::run(cli, &world.sdk, at).await
}

fn ledger(world: &World) -> DynamoLedger {
    DynamoLedger::new(aws_sdk_dynamodb::Client::new(&world.sdk), world.table.clone(), &Policy::default())
}

fn state_change(instance_id: &str) -> Value {
    json!({
        "version": "0", "id": unique("event"), "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": "123456789012", "time": "2026-11-21T09:15:02Z", "region": "us-east-1",
        "resources": [], "detail": {"instance-id": instance_id, "state": "stopped"}
    })
}

fn write_event(world: &World, event: &Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{}.json", world.name, unique("event")));
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_medic_running_when_paused_and_resumed_then_the_switch_in_the_ledger_follows_and_says_why() {
    let world = World::new("clipause").await;

    let paused = medic(&world, &["pause", "--reason", "AZ incident, alice"], now()).await.unwrap();

    assert!(paused.contains("medic is paused (AZ incident, alice)"), "{paused}");
    assert_eq!(ledger(&world).pause_switch().await.unwrap().as_deref(), Some("AZ incident, alice"));
    let status = medic(&world, &["status"], now()).await.unwrap();
    assert!(status.starts_with("PAUSED since"), "{status}");
    assert!(status.contains("AZ incident, alice"), "{status}");

    let resumed = medic(&world, &["resume"], now()).await.unwrap();

    assert!(resumed.contains("the pause switch is off"), "{resumed}");
    assert_eq!(ledger(&world).pause_switch().await.unwrap(), None);
    let refused = medic(&world, &["pause", "--reason", "  "], now()).await.unwrap_err();
    assert!(refused.contains("--reason must say who paused medic and why"), "{refused}");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn org_given_central_mode_when_one_account_is_paused_then_only_its_ledger_sees_the_switch() {
    let world = World::new("cliorg").await;
    let (paused_account, other) = ("111111111111", "222222222222");
    let in_account = |account: &str| ledger(&world).scoped(&AccountRegion::new(account, "eu-west-1"));

    let paused =
        medic(&world, &["pause", "--reason", "migration, bob", "--account", paused_account], now()).await.unwrap();

    assert!(paused.contains("medic is paused in account 111111111111 (migration, bob)"), "{paused}");
    assert_eq!(in_account(paused_account).pause_switch().await.unwrap().as_deref(), Some("migration, bob"));
    assert_eq!(in_account(other).pause_switch().await.unwrap(), None);
    assert_eq!(ledger(&world).pause_switch().await.unwrap(), None, "medic's own switch stays off");
    medic(&world, &["resume", "--account", paused_account], now()).await.unwrap();
    assert_eq!(in_account(paused_account).pause_switch().await.unwrap(), None);
    let refused = medic(&world, &["pause", "--reason", "x", "--account", "prod"], now()).await.unwrap_err();
    assert!(refused.contains("not a 12-digit account id"), "{refused}");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_stack_name_when_a_command_runs_then_its_outputs_name_the_table() {
    let world = World::new("clistack").await;
    let stack = format!("{}-stack", world.name);
    let template = json!({
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": format!("{}-placeholder", world.name)}}},
        "Outputs": {
            "LedgerTableName": {"Value": world.table},
            "NoticeTopicArn": {"Value": world.topic_arn},
            "InstanceHealerFunctionArn": {"Value": HEALER_ARN}
        }
    });
    aws_sdk_cloudformation::Client::new(&world.sdk)
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let cli = medic_cli::Cli::try_parse_from(["medic", "--stack", &stack, "pause", "--reason", "deploy, bob"]).unwrap();

    medic_cli::run(cli, &world.sdk, now()).await.unwrap();

    assert_eq!(ledger(&world).pause_switch().await.unwrap().as_deref(), Some("deploy, bob"));
    let resources = medic_cli::Resources::resolve(
        &medic_cli::Target { stack: Some(stack.clone()), ..medic_cli::Target::default() },
        &world.sdk,
    )
    .await
    .unwrap();
    assert!(resources.is_medic_function(&format!("{HEALER_ARN}:$LATEST")), "{resources:?}");
    assert!(!resources.is_medic_function("arn:aws:lambda:us-east-1:123456789012:function:someone-elses"));
    let missing = medic_cli::Cli::try_parse_from(["medic", "status"]).unwrap();
    let error = medic_cli::run(missing, &world.sdk, now()).await.unwrap_err();
    assert_eq!(error, "no ledger table: give --stack or --table");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_replacement_and_a_skip_when_status_is_asked_then_tables_and_json_say_what_medic_did() {
    let world = World::new("clistatus").await;
    let (group, instances) = world.group(2, 0, &[MANAGED]).await;
    let unmanaged = world.standalone(&[("team", "web")]).await;
    let healer = instance_healer::AwsHealer::from_sdk_config(&world.sdk, world.config(Policy::default()));
    world.stop(&instances[0]).await;
    let acted = instance_healer::handle(&healer, state_change(&instances[0]), now()).await.unwrap();
    assert_eq!(acted.status, Status::Acted);
    world.stop(&unmanaged).await;
    let skipped = instance_healer::handle(&healer, state_change(&unmanaged), now()).await.unwrap();
    assert_eq!(skipped.status, Status::Skipped);

    let table = medic(&world, &["status", "--since", "1h"], now()).await.unwrap();

    assert!(table.starts_with("not paused"), "{table}");
    assert!(table.contains("acted") && table.contains("replace") && table.contains(&instances[0]), "{table}");
    assert!(table.contains("out-of-scope  1"), "{table}");
    assert!(table.contains(&format!("asg/{group}")), "{table}");
    assert!(table.contains("waiting"), "{table}");

    let report: Value = serde_json::from_str(&medic(&world, &["status", "--json"], now()).await.unwrap()).unwrap();

    assert_eq!(report["paused"], Value::Null);
    assert_eq!(report["decisions"][0]["action"], "replace");
    assert_eq!(report["skips"]["out-of-scope"], 1);
    assert_eq!(report["breakers"][0]["count"], 1);
    assert_eq!(report["cooldowns"][0]["resource"], instances[0].as_str());
    assert_eq!(report["remediations"][0]["function"], "instance-healer");
    assert_eq!(report["remediations"][0]["state"], "waiting");

    let later: Value =
        serde_json::from_str(&medic(&world, &["status", "--json", "--since", "1h"], now() + 7_200).await.unwrap())
            .unwrap();
    assert_eq!(later["decisions"], json!([]), "older than --since");
    assert_eq!(later["remediations"][0]["state"], "overdue");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_an_event_when_explained_then_the_decision_guard_and_notice_without_claiming_acting_or_publishing() {
    let world = World::new("cliexplain").await;
    let (_, instances) = world.group(3, 0, &[MANAGED]).await;
    world.stop(&instances[1]).await;
    let event = state_change(&instances[1]);
    let file = write_event(&world, &event);

    let text = medic(&world, &["explain", file.to_str().unwrap()], now()).await.unwrap();

    assert!(text.starts_with("function: instance-healer\n"), "{text}");
    assert!(text.contains(&format!("decision: would-act [replace] {}", instances[1])), "{text}");
    assert!(text.contains("notice:   [INFO] [DRY-RUN]"), "{text}");
    assert_eq!(world.health(&instances[1]).await, "HEALTHY", "nothing acted");
    assert!(world.notices().await.is_empty(), "nothing published");
    let key = medic_core::guard::event_key(&format!("eventbridge:{}", event["id"].as_str().unwrap()));
    assert_eq!(ledger(&world).set_members(&key).await.unwrap(), Vec::<String>::new());
    assert!(ledger(&world)
        .cooldown_until(&format!("cooldown#{}#replace", instances[1]), now())
        .await
        .unwrap()
        .is_none());

    let json: Value =
        serde_json::from_str(&medic(&world, &["explain", "--json", file.to_str().unwrap()], now()).await.unwrap())
            .unwrap();
    assert_eq!(json["function"], "instance-healer");
    assert_eq!(json["decision"]["status"], "would-act");
    assert_eq!(json["notices"][0]["severity"], "info");

    let other = write_event(&world, &json!({"source": "aws.s3", "detail-type": "Object Created"}));
    let refused = medic(&world, &["explain", other.to_str().unwrap()], now()).await.unwrap_err();
    assert!(refused.contains("no medic function accepts this event (source `aws.s3`"), "{refused}");
    let named = medic(&world, &["explain", "--function", "notifier", other.to_str().unwrap()], now()).await.unwrap();
    assert!(named.contains("error:    malformed event"), "{named}");
}

async fn dead_letter_queue(world: &World) -> String {
    aws_sdk_sqs::Client::new(&world.sdk)
        .create_queue()
        .queue_name(format!("{}-dlq", world.name))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

async fn send(world: &World, queue: &str, body: &Value, target: Option<&str>) {
    let mut message =
        aws_sdk_sqs::Client::new(&world.sdk).send_message().queue_url(queue).message_body(body.to_string());
    if let Some(target) = target {
        message = message.message_attributes(
            "TARGET_ARN",
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(target)
                .build()
                .unwrap(),
        );
    }
    message.send().await.unwrap();
}

async fn depth(world: &World, queue: &str) -> String {
    let attributes = aws_sdk_sqs::Client::new(&world.sdk)
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages].clone()
}

const HEALER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:medic-InstanceHealer";
const REROUTER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:medic-RdsRerouter";

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_dead_letters_of_each_kind_when_redriven_dry_then_each_says_what_it_would_do_and_all_stay() {
    let world = World::new("cliredrive").await;
    let queue = dead_letter_queue(&world).await;
    let (_, instances) = world.group(2, 0, &[MANAGED]).await;
    world.stop(&instances[0]).await;
    send(&world, &queue, &state_change(&instances[0]), Some(HEALER_ARN)).await;
    let on_failure = json!({
        "version": "1.0", "timestamp": "2026-11-21T09:15:05.000Z",
        "requestContext": {"requestId": "r1", "functionArn": format!("{HEALER_ARN}:$LATEST"), "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": state_change(&instances[0]),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Retryable", "errorMessage": "throttled"}
    });
    send(&world, &queue, &on_failure, None).await;
    send(&world, &queue, &json!({"Type": "Notification", "TopicArn": world.topic_arn, "Message": "x"}), None).await;

    let text = medic(&world, &["--dlq-url", &queue, "redrive", "--dry-run"], now()).await.unwrap();

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("would-redrive")).count(), 2, "{text}");
    assert!(text.contains("from an EventBridge rule to instance-healer: decision: would-act [replace]"), "{text}");
    assert!(text.contains("from the function's on-failure destination to instance-healer"), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("kept") && l.contains("SNS could not deliver")), "{text}");
    assert_eq!(depth(&world, &queue).await, "3", "a dry run takes nothing out");
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_an_old_dead_letter_whose_decision_may_not_be_repeated_when_redriven_then_refused_unless_forced() {
    let world = World::new("cliold").await;
    let queue = dead_letter_queue(&world).await;
    let stack = world.db_stack(&[("us-east-1b", Some(3.0))]).await;
    world.fail_db(&stack.primary).await;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/rds-rerouter/instance-failed.json");
    let mut failed: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let arn = format!("arn:aws:rds:us-east-1:123456789012:db:{}", stack.primary);
    failed["id"] = json!(unique("event"));
    failed["detail"]["SourceArn"] = json!(arn);
    failed["detail"]["SourceIdentifier"] = json!(stack.primary);
    send(&world, &queue, &failed, Some(REROUTER_ARN)).await;
    let past_retention = now() + Policy::default().ledger_ttl_seconds + 3_600;

    let refused = medic(&world, &["--dlq-url", &queue, "redrive"], past_retention).await.unwrap();

    assert!(refused.starts_with("refused"), "{refused}");
    assert!(refused.contains("past the ledger's retention (25 h)"), "{refused}");
    assert!(refused.contains("redrive with --force"), "{refused}");
    assert_eq!(depth(&world, &queue).await, "1");
    assert_eq!(world.db(&stack.replicas[0]).await.backup_retention_days, 0, "nothing promoted");

    let recent = medic(&world, &["--dlq-url", &queue, "redrive", "--dry-run"], now()).await.unwrap();
    assert!(recent.starts_with("would-redrive"), "within the retention it is not refused: {recent}");

    // moto cannot run a Lambda function: the forced redrive gets as far as the Invoke call, which
    // fails, and the message goes back (the runtime tier redrives through the real bootstraps).
    let forced = medic(&world, &["--dlq-url", &queue, "redrive", "--force"], past_retention).await.unwrap();
    assert!(forced.starts_with("failed"), "{forced}");
    assert!(forced.contains("the message is back in the queue"), "{forced}");
    assert_eq!(depth(&world, &queue).await, "1");
}
