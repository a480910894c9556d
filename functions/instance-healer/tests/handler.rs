//! The handler with in-memory ports: every `events/instance-healer` file, and the failure paths
//! moto cannot produce (throttling, SNS down). AWS behaviour itself is in `emulated_aws.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::path::PathBuf;

use instance_healer::{handle, Healer};
use lambda_runtime::Diagnostic;
use medic_aws::fakes::{FakeInstances, MemoryLedger, MemoryNotifier};
use medic_aws::{HandlerError, PortError};
use medic_core::fleet::{InstanceFacts, InstanceObservation};
use medic_core::scope::MANAGED_TAG;
use medic_core::{Outcome, Policy, Status};
use serde_json::Value;

const NOW: i64 = 1_795_252_502 + 3600;

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn asg_member(state: &str) -> InstanceObservation {
    medic_aws::fakes::asg_member(state, NOW)
}

/// A standalone opted-in instance that EC2 itself stopped (`Server.ScheduledStop`).
fn standalone(state: &str) -> InstanceObservation {
    stopped_because(state, "Server.ScheduledStop")
}

fn stopped_because(state: &str, reason: &str) -> InstanceObservation {
    InstanceObservation {
        instance: Some(InstanceFacts {
            state: state.into(),
            tags: tags(&[(MANAGED_TAG, "true")]),
            launched_at: Some(NOW),
            state_reason: Some(reason.into()),
            auto_recovery: false,
        }),
        member: None,
        stopped_by_medic: false,
    }
}

fn healer(observation: InstanceObservation) -> Healer<FakeInstances, MemoryLedger, MemoryNotifier> {
    Healer {
        instances: FakeInstances { observation, ..FakeInstances::default() },
        ledger: MemoryLedger::default(),
        notifier: MemoryNotifier::default(),
        policy: Policy::default(),
    }
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/instance-healer").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn calls(healer: &Healer<FakeInstances, MemoryLedger, MemoryNotifier>) -> Vec<String> {
    healer.instances.calls.lock().unwrap().clone()
}

enum Expect {
    Outcome(Status, &'static str),
    Error(&'static str),
}

#[tokio::test]
async fn given_each_event_file_when_handled_then_expected_outcome() {
    let table: [(&str, InstanceObservation, Expect); 8] = [
        (
            "asg-instance-stopped.json",
            asg_member("stopped"),
            Expect::Outcome(Status::Acted, "replace i-0a1b2c3d4e5f67890"),
        ),
        (
            "asg-instance-terminated.json",
            asg_member("terminated"),
            Expect::Outcome(Status::Acted, "replace i-0a1b2c3d4e5f67891"),
        ),
        (
            "standalone-instance-stopped.json",
            standalone("stopped"),
            Expect::Outcome(Status::Acted, "start i-0fedcba9876543210"),
        ),
        ("standalone-instance-terminated.json", standalone("terminated"), Expect::Outcome(Status::Alerted, "")),
        ("instance-running.json", asg_member("running"), Expect::Outcome(Status::Skipped, "")),
        (
            "malformed-missing-instance-id.json",
            asg_member("stopped"),
            Expect::Error("malformed event: EC2 Instance State-change Notification: missing field `instance-id`"),
        ),
        ("malformed-unknown-state.json", asg_member("stopped"), Expect::Error("unknown variant `rebooting`")),
        (
            "malformed-wrong-source.json",
            asg_member("stopped"),
            Expect::Error("unsupported event: source `aws.s3` with detail-type `Object Created`"),
        ),
    ];
    let mut files: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/instance-healer"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    files.sort();
    let mut covered: Vec<String> = table.iter().map(|(name, _, _)| (*name).to_owned()).collect();
    covered.sort();
    assert_eq!(files, covered, "every events/instance-healer file needs a row");

    for (name, observation, expect) in table {
        let healer = healer(observation);
        let result = handle(&healer, fixture(name), NOW).await;
        match (expect, result) {
            (Expect::Outcome(status, action_call), Ok(outcome)) => {
                assert_eq!(outcome.status, status, "{name}: {outcome:?}");
                let made = calls(&healer);
                if action_call.is_empty() {
                    assert!(
                        !made.iter().any(|c| c.starts_with("replace") || c.starts_with("start")),
                        "{name}: {made:?}"
                    );
                } else {
                    assert!(made.contains(&action_call.to_owned()), "{name}: {made:?}");
                }
            }
            (Expect::Error(message), Err(error)) => {
                let diagnostic = Diagnostic::from(error);
                assert_eq!(diagnostic.error_type, "NonRetryable", "{name}");
                assert!(diagnostic.error_message.contains(message), "{name}: {}", diagnostic.error_message);
                assert!(calls(&healer).is_empty(), "{name}: a malformed event makes no AWS call");
            }
            (_, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn given_running_instance_when_handled_then_no_aws_call_at_all() {
    let healer = healer(asg_member("running"));
    let outcome = handle(&healer, fixture("instance-running.json"), NOW).await.unwrap();
    assert_eq!(outcome.label.as_deref(), Some("state-needs-no-healing"));
    assert!(calls(&healer).is_empty());
    assert!(healer.ledger.calls.lock().unwrap().is_empty());
    assert!(healer.notifier.subjects().is_empty());
}

#[tokio::test]
async fn given_throttled_remediation_when_handled_then_retryable_error_and_claim_released() {
    let mut healer = healer(asg_member("stopped"));
    healer.instances.apply_error = Some(PortError {
        code: Some("Throttling".into()),
        ..PortError::retryable("autoscaling:SetInstanceHealth", "Throttling (HTTP 400): Rate exceeded")
    });

    let error = handle(&healer, fixture("asg-instance-stopped.json"), NOW).await.unwrap_err();

    assert!(error.is_retryable());
    assert_eq!(Diagnostic::from(error).error_type, "Retryable");
    assert!(
        healer.ledger.keys().iter().all(|k| !k.starts_with("event#") && !k.starts_with("cooldown#")),
        "{:?}",
        healer.ledger.keys()
    );
    // The retry is not mistaken for a duplicate and not blocked by a cooldown.
    healer.instances.apply_error = None;
    let retried = handle(&healer, fixture("asg-instance-stopped.json"), NOW).await.unwrap();
    assert_eq!(retried.status, Status::Acted);
}

#[tokio::test]
async fn given_refused_remediation_when_handled_then_failed_outcome_and_critical_notice() {
    let mut healer = healer(asg_member("stopped"));
    healer.instances.apply_error = Some(PortError::permanent(
        "autoscaling:SetInstanceHealth",
        "ValidationError (HTTP 400): instance not in group",
    ));

    let outcome = handle(&healer, fixture("asg-instance-stopped.json"), NOW).await.unwrap();

    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(healer.notifier.subjects(), ["[CRITICAL] asg web-prod: could not replace i-0a1b2c3d4e5f67890"]);
}

#[tokio::test]
async fn given_sns_down_when_handled_then_retryable_and_the_retry_delivers_the_notice_without_acting_twice() {
    let healer = healer(asg_member("stopped"));
    healer.notifier.fail_with(Some(PortError::retryable("sns:Publish", "InternalError (HTTP 500)")));

    let first: Result<Outcome, HandlerError> = handle(&healer, fixture("asg-instance-stopped.json"), NOW).await;
    assert!(first.unwrap_err().is_retryable());
    assert_eq!(calls(&healer).iter().filter(|c| c.starts_with("replace")).count(), 1);

    healer.notifier.fail_with(None);
    let retry = handle(&healer, fixture("asg-instance-stopped.json"), NOW).await.unwrap();

    assert_eq!(retry.status, Status::Duplicate);
    assert_eq!(calls(&healer).iter().filter(|c| c.starts_with("replace")).count(), 1, "acted once");
    assert_eq!(
        healer.notifier.subjects(),
        ["[WARNING] asg web-prod: replaced i-0a1b2c3d4e5f67890 (stopped unexpectedly)"]
    );
    let third = handle(&healer, fixture("asg-instance-stopped.json"), NOW).await.unwrap();
    assert_eq!(third.status, Status::Duplicate);
    assert_eq!(healer.notifier.subjects().len(), 1, "delivered once");
}

#[tokio::test]
async fn given_event_claimed_by_a_running_invocation_when_delivered_then_retryable_and_nothing_done() {
    use medic_aws::ports::Ledger;
    let healer = healer(asg_member("stopped"));
    let key = medic_core::guard::event_key("eventbridge:7bf73129-1428-4cd3-a780-95db273d1602");
    healer.ledger.claim(&key, NOW).await.unwrap();

    let error = handle(&healer, fixture("asg-instance-stopped.json"), NOW).await.unwrap_err();

    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("another invocation is handling it"), "{error}");
    let acted: Vec<String> = calls(&healer).into_iter().filter(|c| !c.starts_with("observe")).collect();
    assert!(acted.is_empty(), "read beside the claim, but no action: {acted:?}");
    assert!(healer.notifier.subjects().is_empty());
}

#[tokio::test]
async fn rule13_given_a_hostile_instance_id_when_handled_then_non_retryable_naming_it_and_no_aws_call() {
    let healer = healer(standalone("stopped"));
    let mut event = fixture("standalone-instance-stopped.json");
    event["detail"]["instance-id"] = Value::from("i-../../etc/passwd\"; DROP");

    let error = handle(&healer, event, NOW).await.unwrap_err();

    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "NonRetryable");
    assert!(
        diagnostic.error_message.contains("detail.instance-id `i-../../etc/passwd"),
        "{}",
        diagnostic.error_message
    );
    assert!(calls(&healer).is_empty(), "{:?}", calls(&healer));
    assert!(healer.ledger.calls.lock().unwrap().is_empty(), "nothing claimed for a bad id");
}

#[tokio::test]
async fn rule1_given_a_standalone_instance_stopped_by_a_person_or_its_os_when_handled_then_info_notice_and_no_call() {
    for reason in ["Client.UserInitiatedShutdown", "Client.InstanceInitiatedShutdown"] {
        let healer = healer(stopped_because("stopped", reason));

        let outcome = handle(&healer, fixture("standalone-instance-stopped.json"), NOW).await.unwrap();

        assert_eq!((outcome.status, outcome.severity), (Status::Alerted, Some(medic_core::Severity::Info)), "{reason}");
        assert!(!calls(&healer).iter().any(|c| c.starts_with("start")), "{reason}: {:?}", calls(&healer));
        assert_eq!(
            healer.notifier.subjects(),
            ["[INFO] ec2 i-0fedcba9876543210: stopped by a user: left alone"],
            "{reason}"
        );
        assert!(healer.notifier.sent.lock().unwrap()[0].body.contains(reason), "{reason}: the notice names the reason");
    }
}

#[tokio::test]
async fn rule2_given_medic_stopped_an_instance_for_recovery_when_its_stop_arrives_under_a_full_breaker_then_started() {
    use medic_aws::ports::Ledger;
    use medic_core::{guard, Action};
    let mut healer = healer(stopped_because("stopped", "Client.UserInitiatedShutdown"));
    healer.policy.breaker_max_actions = 1;
    // The alarm responder's stop for recovery: its mark and its breaker slot, in the shared ledger.
    let stop = Action::StopForRecovery { instance_id: "i-0fedcba9876543210".into() };
    let key = guard::recovery_mark_key("i-0fedcba9876543210");
    assert!(healer.ledger.start_cooldown(&key, NOW + 3600, NOW - 60, "event#alarm", None).await.unwrap());
    let window = guard::breaker_key(&stop.breaker_scope(), NOW, healer.policy.breaker_window_seconds);
    let slot = guard::breaker_member("event#alarm", &stop);
    let take = medic_aws::ports::Take::Slot { key: &window, member: &slot, max: 1, expires_at: NOW + 1800 };
    healer.ledger.take(&[take], NOW).await.unwrap().unwrap();
    // A start of the same instance a little earlier would hold a cooldown too.
    healer
        .ledger
        .start_cooldown("cooldown#i-0fedcba9876543210#start", NOW + 300, NOW - 300, "event#x", None)
        .await
        .unwrap();

    let outcome = handle(&healer, fixture("standalone-instance-stopped.json"), NOW).await.unwrap();

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert!(calls(&healer).contains(&"start i-0fedcba9876543210".to_owned()), "{:?}", calls(&healer));
    assert!(outcome.reason.contains("medic stopped it"), "{}", outcome.reason);
    assert!(!healer.ledger.keys().contains(&key), "the start used the recovery mark up: {:?}", healer.ledger.keys());
}
