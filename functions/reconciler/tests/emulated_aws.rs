//! The reconciler against moto server over HTTP, through the real SDK clients. Each test's world
//! lives in an AWS account of its own (the sweep lists whole accounts), and the remediations it
//! checks are made by the real functions (instance healer) before it runs. moto replaces nothing
//! that is marked Unhealthy, so a test simulates the replacement, or its absence, in the world.
//!
//! Run with `make test` (it starts moto and sets `AWS_ENDPOINT_URL`); plain `cargo test` skips
//! these because they are `#[ignore]`d.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use medic_aws::adapters::dynamodb::DynamoLedger;
use medic_aws::config::{Accounts, CentralSettings, DEFAULT_MEMBER_ROLE};
use medic_aws::ports::Ledger;
use medic_aws::{MedicConfig, Members};
use medic_core::watch::WATCHES_KEY;
use medic_core::{guard, Policy, Status};
use medic_testbench::{in_account, member_role_arn, now, post_fault, unique, unique_account, World, MANAGED};
use reconciler::{AwsReconciler, DeadLetterSettings, Report};
use serde_json::{json, Value};

fn tick() -> Value {
    json!({
        "version": "0", "id": unique("tick"), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-21T09:20:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/medic-reconciler"], "detail": {}
    })
}

fn reconciler(world: &World, policy: Policy) -> AwsReconciler {
    AwsReconciler::from_sdk_config(&world.sdk, world.config(policy), None)
}

async fn reconcile(world: &World, at: i64) -> Report {
    reconciler(world, Policy::default()).handle(tick(), at).await.unwrap()
}

fn ledger(world: &World) -> DynamoLedger {
    DynamoLedger::new(aws_sdk_dynamodb::Client::new(&world.sdk), world.table.clone(), &Policy::default())
}

async fn open_watches(world: &World) -> usize {
    ledger(world).set_members(WATCHES_KEY).await.unwrap().len()
}

fn state_change(instance_id: &str) -> Value {
    json!({
        "version": "0", "id": unique("event"), "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": "123456789012", "time": "2026-11-21T09:15:02Z", "region": "us-east-1",
        "resources": [], "detail": {"instance-id": instance_id, "state": "stopped"}
    })
}

/// The instance healer replaces a stopped member: the remediation the reconciler then checks.
async fn healer_replaces(world: &World, instance_id: &str, at: i64) {
    world.stop(instance_id).await;
    let healer = instance_healer::AwsHealer::from_sdk_config(&world.sdk, world.config(Policy::default()));
    let outcome = instance_healer::handle(&healer, state_change(instance_id), at).await.unwrap();
    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
}

/// What medic's own stop for recovery leaves: the instance stopped by a StopInstances call, and
/// the recovery mark in the ledger.
async fn stopped_by_medic_for_recovery(world: &World, instance_id: &str) {
    world.stop(instance_id).await;
    let mark = guard::recovery_mark_key(instance_id);
    assert!(ledger(world).start_cooldown(&mark, now() + 3_600, now(), "event#eventbridge:alarm", None).await.unwrap());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_medic_stopped_an_instance_for_recovery_and_the_stop_event_was_missed_when_the_sweep_runs_then_started() {
    let world = World::in_own_account("sweepstart").await;
    let instance = world.standalone(&[MANAGED]).await;
    stopped_by_medic_for_recovery(&world, &instance).await;

    let report = reconcile(&world, now()).await;

    assert_eq!(world.ec2_state(&instance).await, "running");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].status, Status::Acted);
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].2.contains("reconciler's sweep found standalone instance"), "{}", notices[0].2);
    assert_eq!(open_watches(&world).await, 1, "the start is watched until it heals");

    let again = reconcile(&world, now()).await;
    assert!(again.findings.is_empty(), "a running instance is no finding: {again:?}");
    assert_eq!(again.healed.len(), 1, "{again:?}");
    assert_eq!(again.healed[0].action, "start");
    assert_eq!(open_watches(&world).await, 0);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_standalone_instance_ec2_stopped_and_no_event_arrived_when_the_sweep_runs_then_started_once() {
    let world = World::in_own_account("sweepec2").await;
    let instance = world.standalone(&[MANAGED]).await;
    let unmanaged = world.standalone(&[("team", "web")]).await;
    world.stop_by_ec2(&instance).await;
    world.stop_by_ec2(&unmanaged).await;

    let report = reconcile(&world, now()).await;

    assert_eq!(report.findings.len(), 1, "only the opted-in instance: {report:?}");
    assert_eq!(report.findings[0].status, Status::Acted, "{report:?}");
    assert_eq!(world.ec2_state(&instance).await, "running");
    assert_eq!(world.ec2_state(&unmanaged).await, "stopped");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].2.contains("stopped (Server.InternalError) with no event handled"), "{}", notices[0].2);
}

/// Central mode with medic's own account `home`'s and the member accounts `allowed`.
async fn central(home: &World, allowed: &[&str]) -> Members<AwsReconciler> {
    let settings = CentralSettings {
        home_account: home.own_account().await,
        member_role: DEFAULT_MEMBER_ROLE.to_owned(),
        external_id: None,
        allowed: allowed.iter().map(|a| (*a).to_owned()).collect(),
    };
    let config = MedicConfig { accounts: Accounts::Central(settings), ..home.config(Policy::default()) };
    Members::new(home.sdk.clone(), config)
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn org_given_a_standalone_instance_ec2_stopped_in_a_member_account_when_the_central_run_sweeps_then_started_there_and_named(
) {
    let home = World::in_own_account("orgsweep").await;
    let (listed, unlisted, roleless) = (unique_account(), unique_account(), unique_account());
    post_fault("no-role", &json!({"arn": member_role_arn(&roleless)})).await;
    let mut stopped = Vec::new();
    for account in [&listed, &unlisted] {
        let world = World::with_sdk("orgsweep", in_account(account, "us-east-1").await).await;
        let instance = world.standalone(&[MANAGED]).await;
        world.stop_by_ec2(&instance).await;
        stopped.push((world, instance));
    }

    let report = reconciler::reconcile(&central(&home, &[&listed, &roleless]).await, tick(), now()).await.unwrap();

    let found: Vec<(Status, Option<&str>)> = report.findings.iter().map(|f| (f.status, f.account.as_deref())).collect();
    let expected = [(Status::Acted, Some(listed.as_str())), (Status::Skipped, Some(roleless.as_str()))];
    assert_eq!(found, expected, "a listed account without the role is a skip, named: {report:?}");
    assert_eq!(stopped[0].0.ec2_state(&stopped[0].1).await, "running", "started in the listed member account");
    assert_eq!(stopped[1].0.ec2_state(&stopped[1].1).await, "stopped", "an account not in MEDIC_ACCOUNTS is not swept");
    let notices = home.notices().await;
    assert_eq!(notices.len(), 2, "{notices:?}");
    let refused = format!("[WARNING] account {roleless}: cannot act in account {roleless} (us-east-1)");
    assert!(notices.iter().any(|(subject, _, _)| *subject == refused), "{notices:?}");
    let acted = notices.iter().find(|(subject, _, _)| *subject != refused).unwrap();
    assert!(acted.2.contains(&format!("\"account\": \"{listed}\"")), "{}", acted.2);

    let again = reconciler::reconcile(&central(&home, &[&listed]).await, tick(), now()).await.unwrap();
    assert!(again.findings.is_empty(), "{again:?}");
    assert_eq!(again.healed.iter().map(|h| h.account.as_deref()).collect::<Vec<_>>(), [Some(listed.as_str())]);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_an_instance_a_person_stopped_when_the_sweep_runs_then_left_stopped_and_nothing_sent() {
    let world = World::in_own_account("sweepperson").await;
    let instance = world.standalone(&[MANAGED]).await;
    world.stop(&instance).await;

    let report = reconcile(&world, now()).await;

    assert!(report.findings.is_empty(), "{report:?}");
    assert_eq!(world.ec2_state(&instance).await, "stopped");
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_member_ec2_reports_impaired_when_the_sweep_runs_then_replaced_through_auto_scaling_once() {
    let world = World::in_own_account("sweepimpaired").await;
    let (group, instances) = world.group(3, 0, &[MANAGED]).await;
    world.impair(&instances[1], "system").await;

    let report = reconcile(&world, now()).await;

    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].status, Status::Acted, "{report:?}");
    assert_eq!(world.health(&instances[1]).await, "UNHEALTHY");
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].0.contains(&format!("asg {group}: replaced {}", instances[1])), "{}", notices[0].0);
    assert!(notices[0].2.contains("failed its EC2 system status check"), "{}", notices[0].2);

    world.set_healthy(&instances[1]).await;
    let again = reconcile(&world, now()).await;
    assert_eq!(again.findings.len(), 1, "{again:?}");
    assert_eq!(again.findings[0].status, Status::Duplicate, "the same impairment is one finding: {again:?}");
    assert_eq!(world.health(&instances[1]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_the_stop_event_and_a_sweep_racing_on_one_failure_when_both_run_then_one_start() {
    let world = World::in_own_account("sweeprace").await;
    let instance = world.standalone(&[MANAGED]).await;
    stopped_by_medic_for_recovery(&world, &instance).await;
    let healer = instance_healer::AwsHealer::from_sdk_config(&world.sdk, world.config(Policy::default()));
    let sweeper = reconciler(&world, Policy::default());

    let (event, sweep) =
        tokio::join!(instance_healer::handle(&healer, state_change(&instance), now()), sweeper.handle(tick(), now()));

    let event = event.unwrap();
    let sweep = sweep.unwrap();
    let acted = [event.status]
        .into_iter()
        .chain(sweep.findings.iter().map(|o| o.status))
        .filter(|s| *s == Status::Acted)
        .count();
    assert_eq!(acted, 1, "event: {event:?}\nsweep: {sweep:?}");
    assert_eq!(world.ec2_state(&instance).await, "running");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_replacement_auto_scaling_carried_out_when_reconciled_then_healed_and_the_watch_closed() {
    let world = World::in_own_account("healreplace").await;
    let (group, instances) = world.group(2, 0, &[MANAGED]).await;
    healer_replaces(&world, &instances[0], now()).await;
    world.notices().await;
    // What Auto Scaling does with an Unhealthy instance, which moto does not: terminate it and
    // launch another in its place.
    world
        .autoscaling()
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&instances[0])
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();

    let report = reconcile(&world, now()).await;

    assert_eq!(report.healed.len(), 1, "{report:?}");
    let healed = &report.healed[0];
    assert_eq!((healed.function.as_str(), healed.action.as_str()), ("instance-healer", "replace"));
    assert!(healed.seconds < 60, "{healed:?}");
    assert_eq!(open_watches(&world).await, 0);
    assert!(world.notices().await.is_empty(), "healing sends nothing");
    let _ = group;
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_replacement_the_group_cannot_launch_when_past_its_deadline_then_one_critical_escalation() {
    let world = World::in_own_account("healnot").await;
    let (group, instances) = world.group(2, 0, &[MANAGED]).await;
    let started = now();
    healer_replaces(&world, &instances[0], started).await;
    world.notices().await;

    let within = reconcile(&world, started + 60).await;
    assert_eq!((within.waiting, within.findings.len()), (1, 0), "{within:?}");

    let late = started + Policy::default().launch_margin_seconds + 1;
    let report = reconcile(&world, late).await;

    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].status, Status::Alerted);
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let (subject, severity, body) = &notices[0];
    assert_eq!(severity, "critical");
    assert!(subject.contains(&format!("replace of {} did not heal", instances[0])), "{subject}");
    assert!(body.contains(&format!("{group} has 1 of 2 desired instances in service")), "{body}");
    assert!(body.contains("describe-scaling-activities"), "{body}");
    assert_eq!(world.health(&instances[0]).await, "UNHEALTHY", "never a second attempt");
    assert_eq!(open_watches(&world).await, 0);

    let after = reconcile(&world, late + 300).await;
    assert!(after.findings.is_empty(), "{after:?}");
    let much_later = reconcile(&world, late + 300 + 2 * Policy::default().launch_margin_seconds).await;
    assert!(much_later.findings.is_empty(), "the shortage it escalated is not reported again: {much_later:?}");
    assert!(world.notices().await.is_empty(), "one escalation");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_start_that_fell_back_to_stopped_when_past_its_deadline_then_escalated() {
    let world = World::in_own_account("healstart").await;
    let instance = world.standalone(&[MANAGED]).await;
    stopped_by_medic_for_recovery(&world, &instance).await;
    let started = now();
    let first = reconcile(&world, started).await;
    assert_eq!(first.findings[0].status, Status::Acted, "{first:?}");
    world.notices().await;
    world.stop(&instance).await;

    let report = reconcile(&world, started + medic_core::reconciler::INSTANCE_SECONDS + 1).await;

    let escalations: Vec<_> = report.findings.iter().filter(|o| o.status == Status::Alerted).collect();
    assert_eq!(escalations.len(), 1, "{report:?}");
    let notices = world.notices().await;
    assert!(
        notices.iter().any(|(s, sev, b)| sev == "critical"
            && s.contains("did not heal")
            && b.contains(&format!("{instance} is stopped"))),
        "{notices:?}"
    );
    assert_eq!(world.ec2_state(&instance).await, "stopped", "the person's stop after it is respected");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_messages_in_the_dead_letter_queue_when_reconciled_then_a_warning_with_count_and_redrive_command_once() {
    let world = World::in_own_account("dlq").await;
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    let dlq = sqs.create_queue().queue_name(format!("{}-dlq", world.name)).send().await.unwrap().queue_url.unwrap();
    for n in 0..3 {
        sqs.send_message().queue_url(&dlq).message_body(format!("{{\"n\": {n}}}")).send().await.unwrap();
    }
    let settings = DeadLetterSettings::from_lookup(|name| match name {
        "MEDIC_DLQ_URL" => Some(dlq.clone()),
        "MEDIC_STACK_NAME" => Some("medic-prod".into()),
        _ => None,
    });
    let watcher = AwsReconciler::from_sdk_config(&world.sdk, world.config(Policy::default()), settings);

    let report = watcher.handle(tick(), now()).await.unwrap();

    assert_eq!(report.findings.len(), 1, "{report:?}");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let (subject, severity, body) = &notices[0];
    assert_eq!(severity, "warning");
    assert!(subject.contains("3 events in medic's dead-letter queue"), "{subject}");
    assert!(body.contains("the oldest was sent at"), "{body}");
    assert!(body.contains("`medic redrive --stack medic-prod --dry-run`"), "{body}");

    watcher.handle(tick(), now()).await.unwrap();
    assert!(world.notices().await.is_empty(), "the same backlog is reported once a day");
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages],
        "3",
        "looking takes nothing out"
    );
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_a_group_short_of_desired_with_no_remediation_of_medics_when_past_its_time_then_one_critical_notice() {
    let world = World::in_own_account("short").await;
    let (group, instances) = world.group(2, 0, &[MANAGED]).await;
    world
        .autoscaling()
        .set_instance_health()
        .instance_id(&instances[1])
        .health_status("Unhealthy")
        .send()
        .await
        .unwrap();
    let first_seen = now();

    let first = reconcile(&world, first_seen).await;
    assert!(first.findings.is_empty(), "short, but not for long yet: {first:?}");

    let late = first_seen + Policy::default().launch_margin_seconds + 1;
    let report = reconcile(&world, late).await;
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].status, Status::Alerted);
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].1, "critical");
    assert!(notices[0].0.contains(&format!("{group}: 1 of 2 in service for 10 min")), "{}", notices[0].0);

    let again = reconcile(&world, late + 300).await;
    assert_eq!(again.findings[0].status, Status::Duplicate, "{again:?}");
    assert!(world.notices().await.is_empty());

    world.set_healthy(&instances[1]).await;
    let recovered = reconcile(&world, late + 600).await;
    assert!(recovered.findings.is_empty(), "{recovered:?}");
    assert!(ledger(&world).set_members(medic_core::reconciler::SHORT_GROUPS_KEY).await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_more_findings_than_a_run_may_decide_when_reconciled_twice_then_the_second_run_takes_the_rest() {
    let world = World::in_own_account("bounded").await;
    let mut instances = Vec::new();
    for _ in 0..3 {
        let instance = world.standalone(&[MANAGED]).await;
        stopped_by_medic_for_recovery(&world, &instance).await;
        instances.push(instance);
    }
    let policy = Policy { sweep_max_findings: 2, ..Policy::default() };

    let first = reconciler(&world, policy.clone()).handle(tick(), now()).await.unwrap();
    assert_eq!((first.findings.len(), first.deferred), (2, 1), "{first:?}");

    let second = reconciler(&world, policy).handle(tick(), now()).await.unwrap();
    assert_eq!((second.findings.len(), second.deferred), (1, 0), "{second:?}");
    assert_eq!(second.findings[0].status, Status::Acted);
    for instance in &instances {
        assert_eq!(world.ec2_state(instance).await, "running", "{instance}");
    }
}

/// Makes `action` through the real adapter, records its watch as the engine does, and returns
/// when it was made.
async fn act_and_watch(world: &World, action: &medic_core::Action) -> i64 {
    use medic_aws::ports::Remediator;
    let sdk = &world.sdk;
    let applied = match action {
        medic_core::Action::PromoteReplica { .. }
        | medic_core::Action::RebootReplica { .. }
        | medic_core::Action::FailoverCluster { .. } => {
            medic_aws::adapters::rds::AwsRds::new(aws_sdk_rds::Client::new(sdk)).apply(action).await
        }
        medic_core::Action::PointWriterRecord { .. } | medic_core::Action::SetReaderWeight { .. } => {
            medic_aws::adapters::route53::AwsDns::new(aws_sdk_route53::Client::new(sdk)).apply(action).await
        }
        _ => medic_aws::adapters::instances::AwsInstances::new(world.autoscaling(), world.ec2()).apply(action).await,
    };
    applied.unwrap();
    let at = now();
    let watch = medic_core::watch::Watch {
        function: "test".into(),
        event: format!("event#{}", unique("e")),
        action: action.clone(),
        started_at: at,
    };
    ledger(world).add_to_set(WATCHES_KEY, &watch.member(), at + 3_600).await.unwrap();
    at
}

/// Reconciles past every deadline: one remediation, healed or escalated with what is seen.
async fn judged(world: &World, at: i64) -> Result<(), String> {
    let report = reconcile(world, at + 7_200).await;
    let notices = world.notices().await;
    if report.healed.len() == 1 && notices.is_empty() {
        return Ok(());
    }
    let escalation: Vec<&(String, String, String)> =
        notices.iter().filter(|(_, severity, body)| severity == "critical" && body.contains(" not healed.")).collect();
    assert_eq!((report.healed.len(), escalation.len()), (0, 1), "{report:?}\n{notices:?}");
    Err(escalation[0].2.clone())
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_each_instance_and_group_action_when_its_effect_holds_or_is_undone_then_healed_or_escalated() {
    let world = World::in_own_account("convergeec2").await;
    let (group, _) = world.group(2, 0, &[MANAGED]).await;
    let instance = world.standalone(&[MANAGED]).await;

    let scale = medic_core::Action::ScaleGroup { group: group.clone(), from: 2, to: 3 };
    let at = act_and_watch(&world, &scale).await;
    assert_eq!(judged(&world, at).await, Ok(()), "scale-out reached 3");
    let at = act_and_watch(&world, &scale).await;
    world
        .autoscaling()
        .set_desired_capacity()
        .auto_scaling_group_name(&group)
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    let seen = judged(&world, at).await.unwrap_err();
    assert!(seen.contains(&format!("{group} has 2 in service (desired now 2, medic set 3)")), "{seen}");

    let reboot = medic_core::Action::RebootInstance { instance_id: instance.clone() };
    let at = act_and_watch(&world, &reboot).await;
    assert_eq!(judged(&world, at).await, Ok(()), "running after the reboot");

    let recover = medic_core::Action::StopForRecovery { instance_id: instance.clone() };
    let at = act_and_watch(&world, &recover).await;
    let seen = judged(&world, at).await.unwrap_err();
    assert!(seen.contains(&format!("{instance} is stopped")), "never started again: {seen}");
    let at = act_and_watch(&world, &recover).await;
    world.ec2().start_instances().instance_ids(&instance).send().await.unwrap();
    assert_eq!(judged(&world, at).await, Ok(()), "started again on new hardware");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_each_database_and_record_action_when_its_effect_holds_or_is_undone_then_healed_or_escalated() {
    use medic_core::plan::ReaderRecord;
    use medic_core::Action;
    let world = World::in_own_account("convergerds").await;
    let stack = world.db_stack(&[("us-east-1b", Some(3.0)), ("us-east-1c", Some(4.0))]).await;
    let (promoted, broken) = (&stack.replicas[0], &stack.replicas[1]);

    let promote =
        Action::PromoteReplica { primary: stack.primary.clone(), replica: promoted.clone(), backup_retention_days: 1 };
    let at = act_and_watch(&world, &promote).await;
    assert_eq!(judged(&world, at).await, Ok(()), "a standalone, available writer");

    let endpoint = world.db(promoted).await.endpoint;
    let writer = Action::PointWriterRecord {
        primary: stack.primary.clone(),
        zone_id: stack.zone_id.clone(),
        record_name: stack.writer_record.clone(),
        endpoint: endpoint.clone(),
        ttl: 60,
        health_check_id: None,
    };
    let at = act_and_watch(&world, &writer).await;
    assert_eq!(judged(&world, at).await, Ok(()), "the writer record resolves to it");
    let at = act_and_watch(&world, &writer).await;
    world.upsert_cname(&stack.zone_id, &stack.writer_record, "someone-else.example", None).await;
    let seen = judged(&world, at).await.unwrap_err();
    assert!(seen.contains("→ someone-else.example"), "{seen}");

    let reader = ReaderRecord {
        primary: stack.primary.clone(),
        replica: broken.clone(),
        zone_id: stack.zone_id.clone(),
        record_name: stack.reader_record.clone(),
        endpoint: world.db(broken).await.endpoint,
        ttl: 60,
        health_check_id: None,
    };
    let out = Action::SetReaderWeight { reader: reader.clone(), from: 100, to: 0 };
    let at = act_and_watch(&world, &out).await;
    assert_eq!(judged(&world, at).await, Ok(()), "out of the reader set");
    let at = act_and_watch(&world, &out).await;
    world.upsert_cname(&stack.zone_id, &stack.reader_record, &reader.endpoint, Some((broken, 100))).await;
    let seen = judged(&world, at).await.unwrap_err();
    assert!(seen.contains(&format!("weight for {broken} is 100")), "{seen}");

    let (cluster, members) = world.aurora(&["us-east-1b"]).await;
    let failover = Action::FailoverCluster { cluster: cluster.clone(), target: members[1].clone() };
    let at = act_and_watch(&world, &failover).await;
    assert_eq!(judged(&world, at).await, Ok(()), "the chosen reader writes");
    let back = Action::FailoverCluster { cluster: cluster.clone(), target: members[0].clone() };
    let at = act_and_watch(&world, &failover).await;
    act_and_watch(&world, &back).await;
    let report = reconcile(&world, at + 7_200).await;
    let notices = world.notices().await;
    assert_eq!(report.healed.len(), 1, "the failover back healed: {report:?}");
    assert!(
        notices.iter().any(|(_, _, b)| b.contains(" not healed.") && b.contains(&format!("{cluster}'s writer is {}", members[0]))),
        "the first failover, undone, is escalated: {notices:?}"
    );
    let reboot = Action::RebootReplica { primary: stack.primary.clone(), replica: broken.clone() };
    let at = act_and_watch(&world, &reboot).await;
    assert_eq!(judged(&world, at).await, Ok(()), "available after its reboot");
    let at = act_and_watch(&world, &reboot).await;
    // moto cannot stop a replica; moto_faults reports it failed.
    medic_testbench::post_fault("db-status", &json!({"id": broken, "status": "failed"})).await;
    let report = reconcile(&world, at + 7_200).await;
    let notices = world.notices().await;
    assert!(report.healed.is_empty(), "{report:?}");
    assert!(
        notices.iter().any(|(_, _, b)| b.contains(" not healed.") && b.contains(&format!("{broken} is failed"))),
        "{notices:?}"
    );
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_replicas_in_the_wrong_place_in_their_reader_set_when_swept_then_one_taken_out_and_one_put_back() {
    let world = World::in_own_account("sweepreplicas").await;
    let stack = world.db_stack(&[("us-east-1b", None), ("us-east-1c", None), ("us-east-1d", None)]).await;
    let (broken, caught_up, lagging) = (&stack.replicas[0], &stack.replicas[1], &stack.replicas[2]);
    medic_testbench::post_fault("db-status", &json!({"id": broken, "status": "storage-full"})).await;
    for (replica, lag) in [(caught_up, 2.0), (lagging, 900.0)] {
        let endpoint = world.db(replica).await.endpoint;
        world.upsert_cname(&stack.zone_id, &stack.reader_record, &endpoint, Some((replica, 0))).await;
        world.put_lag(replica, "ReplicaLag", lag).await;
    }

    let report = reconcile(&world, now()).await;

    let acted: Vec<(&str, Option<&str>)> =
        report.findings.iter().map(|o| (o.resource.as_str(), o.action.as_deref())).collect();
    assert_eq!(acted.len(), 2, "{report:?}");
    assert!(acted.contains(&(broken.as_str(), Some("reader-out"))), "{report:?}");
    assert!(acted.contains(&(caught_up.as_str(), Some("reader-in"))), "{report:?}");
    assert_eq!(world.record(&stack.zone_id, &stack.reader_record, Some(broken)).await.1, Some(0));
    assert_eq!(world.record(&stack.zone_id, &stack.reader_record, Some(caught_up)).await.1, Some(100));
    assert_eq!(world.record(&stack.zone_id, &stack.reader_record, Some(lagging)).await.1, Some(0), "still lagging");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices
            .iter()
            .any(|(_, _, b)| b.contains(&format!("found replica {broken} storage-full while in its reader set"))),
        "{notices:?}"
    );

    let again = reconcile(&world, now()).await;
    assert!(again.findings.iter().all(|o| o.status == Status::Duplicate || o.action.is_none()), "{again:?}");
    assert!(world.notices().await.is_empty(), "nothing twice");
}
