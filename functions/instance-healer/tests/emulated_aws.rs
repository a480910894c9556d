//! The instance healer against moto server over HTTP, through the real SDK clients. Every test
//! builds its own uniquely named world, runs the handler, and reads the result back from the
//! emulated AWS: the instance's health in Auto Scaling, its EC2 state, the SQS queue subscribed to
//! the notice topic, and the ledger table.
//!
//! Run with `make test` (it starts moto and sets `AWS_ENDPOINT_URL`); plain `cargo test` skips
//! these because they are `#[ignore]`d.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as AsgTag};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag as Ec2Tag, TagSpecification};
use instance_healer::{handle, AwsHealer};
use medic_aws::MedicConfig;
use medic_core::{Outcome, Policy, Status};
use serde_json::{json, Value};

const IMAGE_ID: &str = "ami-12c6146b";

struct World {
    sdk: SdkConfig,
    name: String,
    table: String,
    topic_arn: String,
    queue_url: String,
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let salt = nanos ^ (std::process::id() << 12) ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37);
    format!("{prefix}{:06x}", salt & 0xff_ffff)
}

async fn sdk() -> SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| v.starts_with("http://127.0.0.1")),
        "AWS_ENDPOINT_URL must point at moto on loopback: run these tests with `make test`"
    );
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

impl World {
    /// Ledger table, notice topic and an SQS inbox subscribed to it.
    async fn new(prefix: &str) -> Self {
        let sdk = sdk().await;
        let name = unique(prefix);
        let table = format!("{name}-ledger");
        aws_sdk_dynamodb::Client::new(&sdk)
            .create_table()
            .table_name(&table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
        let sns = aws_sdk_sns::Client::new(&sdk);
        let topic_arn = sns.create_topic().name(format!("{name}-notices")).send().await.unwrap().topic_arn.unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue_url = sqs.create_queue().queue_name(format!("{name}-inbox")).send().await.unwrap().queue_url.unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
        Self { sdk, name, table, topic_arn, queue_url }
    }

    fn healer(&self, policy: Policy) -> AwsHealer {
        let config = MedicConfig { policy, ledger_table: self.table.clone(), topic_arn: self.topic_arn.clone() };
        AwsHealer::from_sdk_config(&self.sdk, config)
    }

    fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.sdk)
    }

    fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    /// An Auto Scaling group of `size` instances; its tags propagate to the instances.
    async fn group(&self, size: i32, grace_seconds: i32, tags: &[(&str, &str)]) -> (String, Vec<String>) {
        let group = format!("{}-web", self.name);
        let template = format!("{}-lt", self.name);
        self.ec2()
            .create_launch_template()
            .launch_template_name(&template)
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(IMAGE_ID)
                    .instance_type(InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut create = self
            .autoscaling()
            .create_auto_scaling_group()
            .auto_scaling_group_name(&group)
            .launch_template(
                LaunchTemplateSpecification::builder().launch_template_name(&template).version("$Latest").build(),
            )
            .min_size(1)
            .max_size(size + 2)
            .desired_capacity(size)
            .availability_zones("us-east-1a")
            .health_check_type("EC2")
            .health_check_grace_period(grace_seconds);
        for (key, value) in tags {
            create = create.tags(
                AsgTag::builder()
                    .resource_id(&group)
                    .resource_type("auto-scaling-group")
                    .key(*key)
                    .value(*value)
                    .propagate_at_launch(true)
                    .build(),
            );
        }
        create.send().await.unwrap();
        // moto's CreateAutoScalingGroup turns a grace period of 0 into 300; its update keeps 0.
        self.autoscaling()
            .update_auto_scaling_group()
            .auto_scaling_group_name(&group)
            .health_check_grace_period(grace_seconds)
            .send()
            .await
            .unwrap();
        let described =
            self.autoscaling().describe_auto_scaling_groups().auto_scaling_group_names(&group).send().await.unwrap();
        let instances = described.auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|i| i.instance_id().unwrap().to_owned())
            .collect::<Vec<_>>();
        assert_eq!(instances.len(), usize::try_from(size).unwrap());
        (group, instances)
    }

    /// One instance in no group.
    async fn standalone(&self, tags: &[(&str, &str)]) -> String {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (key, value) in tags {
            spec = spec.tags(Ec2Tag::builder().key(*key).value(*value).build());
        }
        let run = self
            .ec2()
            .run_instances()
            .image_id(IMAGE_ID)
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec.build())
            .send()
            .await
            .unwrap();
        run.instances()[0].instance_id().unwrap().to_owned()
    }

    async fn stop(&self, instance_id: &str) {
        self.ec2().stop_instances().instance_ids(instance_id).send().await.unwrap();
    }

    /// Stops the instance, then delivers its state-change event to a fresh healer.
    async fn stop_and_deliver(&self, instance_id: &str, policy: Policy) -> Outcome {
        self.stop(instance_id).await;
        handle(&self.healer(policy), state_change(instance_id, "stopped"), now()).await.unwrap()
    }

    async fn health(&self, instance_id: &str) -> String {
        let described =
            self.autoscaling().describe_auto_scaling_instances().instance_ids(instance_id).send().await.unwrap();
        described.auto_scaling_instances()[0].health_status().unwrap().to_ascii_uppercase()
    }

    async fn set_healthy(&self, instance_id: &str) {
        self.autoscaling()
            .set_instance_health()
            .instance_id(instance_id)
            .health_status("Healthy")
            .send()
            .await
            .unwrap();
    }

    async fn ec2_state(&self, instance_id: &str) -> String {
        let described = self.ec2().describe_instances().instance_ids(instance_id).send().await.unwrap();
        let instance = &described.reservations()[0].instances()[0];
        instance.state().unwrap().name().unwrap().as_str().to_owned()
    }

    /// Every notice that reached the SQS inbox so far: (subject, severity attribute, body).
    async fn notices(&self) -> Vec<(String, String, String)> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut notices = Vec::new();
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = received.messages();
            if messages.is_empty() {
                return notices;
            }
            for message in messages {
                let envelope: Value = serde_json::from_str(message.body().unwrap()).unwrap();
                notices.push((
                    envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                    envelope["MessageAttributes"]["severity"]["Value"].as_str().unwrap_or_default().to_owned(),
                    envelope["Message"].as_str().unwrap_or_default().to_owned(),
                ));
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// The ledger record of an event (status attribute), read back from DynamoDB.
    async fn ledger_status(&self, outcome: &Outcome) -> Option<String> {
        let item = aws_sdk_dynamodb::Client::new(&self.sdk)
            .get_item()
            .table_name(&self.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(medic_core::guard::event_key(&outcome.event)))
            .send()
            .await
            .unwrap()
            .item?;
        item.get("status").and_then(|v| v.as_s().ok()).cloned()
    }
}

fn state_change(instance_id: &str, state: &str) -> Value {
    json!({
        "version": "0",
        "id": unique("event"),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-11-21T09:15:02Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}")],
        "detail": {"instance-id": instance_id, "state": state}
    })
}

const MANAGED: (&str, &str) = ("medic:managed", "true");

fn now() -> i64 {
    medic_aws::now_epoch_seconds()
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_tagged_asg_when_instance_stopped_then_marked_unhealthy_and_warning_notice() {
    let world = World::new("stopped").await;
    let (group, instances) = world.group(3, 0, &[MANAGED]).await;

    let outcome = world.stop_and_deliver(&instances[1], Policy::default()).await;

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(world.health(&instances[1]).await, "UNHEALTHY");
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    assert_eq!(world.health(&instances[2]).await, "HEALTHY");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let (subject, severity, body) = &notices[0];
    assert_eq!(subject, &format!("[WARNING] asg {group}: replaced {} (stopped unexpectedly)", instances[1]));
    assert_eq!(severity, "warning");
    assert!(body.contains("autoscaling:SetInstanceHealth"), "{body}");
    assert_eq!(world.ledger_status(&outcome).await.as_deref(), Some("COMPLETED"));
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_handled_event_when_delivered_again_then_first_outcome_and_no_mutation() {
    let world = World::new("duplicate").await;
    let (_, instances) = world.group(3, 0, &[MANAGED]).await;
    world.stop(&instances[0]).await;
    let healer = world.healer(Policy::default());
    let event = state_change(&instances[0], "stopped");
    let first = handle(&healer, event.clone(), now()).await.unwrap();
    assert_eq!(first.status, Status::Acted);
    assert_eq!(world.notices().await.len(), 1);
    // Put the instance back so any second SetInstanceHealth would show.
    world.set_healthy(&instances[0]).await;

    let second = handle(&healer, event, now()).await.unwrap();

    assert_eq!(second.status, Status::Duplicate, "{second:?}");
    assert!(second.reason.contains("already handled: acted (replaced"), "{}", second.reason);
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_same_event_delivered_twice_at_once_when_handled_then_exactly_one_acts() {
    let world = World::new("race").await;
    let (_, instances) = world.group(2, 0, &[MANAGED]).await;
    world.stop(&instances[0]).await;
    let (first, second) = (world.healer(Policy::default()), world.healer(Policy::default()));
    let event = state_change(&instances[0], "stopped");

    let (a, b) = tokio::join!(handle(&first, event.clone(), now()), handle(&second, event.clone(), now()));

    let results = [a, b];
    let acted = results.iter().filter(|r| matches!(r, Ok(o) if o.status == Status::Acted)).count();
    let held_back = results
        .iter()
        .filter(|r| match r {
            Ok(o) => o.status == Status::Duplicate,
            Err(e) => e.is_retryable() && e.to_string().contains("another invocation"),
        })
        .count();
    assert_eq!((acted, held_back), (1, 1), "{results:?}");
    assert_eq!(world.notices().await.len(), 1);
    // Lambda's retry of the held-back delivery finds the first outcome.
    let retry = handle(&first, event, now()).await.unwrap();
    assert_eq!(retry.status, Status::Duplicate);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_dry_run_when_instance_stopped_then_nothing_mutated_and_notice_says_would() {
    let world = World::new("dry").await;
    let (group, instances) = world.group(3, 0, &[MANAGED]).await;

    let outcome = world.stop_and_deliver(&instances[2], Policy { dry_run: true, ..Policy::default() }).await;

    assert_eq!(outcome.status, Status::WouldAct, "{outcome:?}");
    assert_eq!(world.health(&instances[2]).await, "HEALTHY");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].0,
        format!("[INFO] [DRY-RUN] asg {group}: would replace {} (stopped unexpectedly)", instances[2])
    );
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_breaker_of_two_when_four_instances_stop_then_two_replaced_and_one_critical_notice() {
    let world = World::new("brk").await;
    let (group, instances) = world.group(5, 0, &[MANAGED]).await;
    let healer = world.healer(Policy { breaker_max_actions: 2, ..Policy::default() });
    let mut statuses = Vec::new();
    for instance in &instances[..4] {
        world.stop(instance).await;
        statuses.push(handle(&healer, state_change(instance, "stopped"), now()).await.unwrap().status);
    }

    assert_eq!(statuses, [Status::Acted, Status::Acted, Status::Blocked, Status::Blocked]);
    let mut health = Vec::new();
    for instance in &instances {
        health.push(world.health(instance).await);
    }
    assert_eq!(health, ["UNHEALTHY", "UNHEALTHY", "HEALTHY", "HEALTHY", "HEALTHY"]);
    let notices = world.notices().await;
    let critical: Vec<_> = notices.iter().filter(|(_, severity, _)| severity == "critical").collect();
    assert_eq!(critical.len(), 1, "{notices:?}");
    assert_eq!(
        critical[0].0,
        format!("[CRITICAL] asg {group}: breaker open (2 actions in 15 min), left {} alone", instances[2])
    );
    assert_eq!(notices.len(), 3, "two replacements and one breaker notice: {notices:?}");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_replaced_instance_when_it_stops_again_within_cooldown_then_skipped() {
    let world = World::new("cooldown").await;
    let (_, instances) = world.group(3, 0, &[MANAGED]).await;
    world.stop(&instances[0]).await;
    let healer = world.healer(Policy::default());
    assert_eq!(handle(&healer, state_change(&instances[0], "stopped"), now()).await.unwrap().status, Status::Acted);
    world.set_healthy(&instances[0]).await;

    let again = handle(&healer, state_change(&instances[0], "stopped"), now()).await.unwrap();

    assert_eq!((again.status, again.label.as_deref()), (Status::Skipped, Some("cooldown")), "{again:?}");
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_group_not_opted_in_when_instance_stopped_then_nothing_happens() {
    let world = World::new("untagged").await;
    let (_, instances) = world.group(2, 0, &[("team", "web")]).await;

    let outcome = world.stop_and_deliver(&instances[0], Policy::default()).await;

    assert_eq!((outcome.status, outcome.label.as_deref()), (Status::Skipped, Some("out-of-scope")));
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    assert!(world.notices().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_instance_in_standby_when_stopped_then_skipped_for_lifecycle_state() {
    let world = World::new("standby").await;
    let (group, instances) = world.group(3, 0, &[MANAGED]).await;
    world
        .autoscaling()
        .enter_standby()
        .auto_scaling_group_name(&group)
        .instance_ids(&instances[0])
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();

    let outcome = world.stop_and_deliver(&instances[0], Policy::default()).await;

    assert_eq!((outcome.status, outcome.label.as_deref()), (Status::Skipped, Some("lifecycle-state")), "{outcome:?}");
    assert!(outcome.reason.contains("Standby"), "{}", outcome.reason);
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_fresh_group_when_instance_stopped_inside_grace_period_then_skipped() {
    let world = World::new("grace").await;
    let (_, instances) = world.group(2, 3600, &[MANAGED]).await;

    let outcome = world.stop_and_deliver(&instances[1], Policy::default()).await;

    assert_eq!((outcome.status, outcome.label.as_deref()), (Status::Skipped, Some("grace-period")), "{outcome:?}");
    assert_eq!(world.health(&instances[1]).await, "HEALTHY");
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_replace_unhealthy_suspended_when_instance_stopped_then_warning_and_no_mutation() {
    let world = World::new("susp").await;
    let (group, instances) = world.group(2, 0, &[MANAGED]).await;
    world
        .autoscaling()
        .suspend_processes()
        .auto_scaling_group_name(&group)
        .scaling_processes("ReplaceUnhealthy")
        .send()
        .await
        .unwrap();

    let outcome = world.stop_and_deliver(&instances[0], Policy::default()).await;

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    assert_eq!(world.health(&instances[0]).await, "HEALTHY");
    let notices = world.notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].1, "warning");
    assert!(notices[0].0.contains("ReplaceUnhealthy suspended"), "{}", notices[0].0);
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_standalone_tagged_instance_when_stopped_then_started() {
    let world = World::new("standalone").await;
    let instance = world.standalone(&[MANAGED]).await;
    world.stop(&instance).await;
    assert_eq!(world.ec2_state(&instance).await, "stopped");

    let outcome = handle(&world.healer(Policy::default()), state_change(&instance, "stopped"), now()).await.unwrap();

    assert_eq!(outcome.status, Status::Acted, "{outcome:?}");
    assert_eq!(world.ec2_state(&instance).await, "running");
    assert_eq!(
        world.notices().await[0].0,
        format!("[WARNING] ec2 {instance}: started {instance} (standalone instance stopped)")
    );
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_standalone_instance_when_terminated_then_critical_notice_only() {
    let world = World::new("terminated").await;
    let instance = world.standalone(&[MANAGED]).await;
    world.ec2().terminate_instances().instance_ids(&instance).send().await.unwrap();

    let outcome = handle(&world.healer(Policy::default()), state_change(&instance, "terminated"), now()).await.unwrap();

    assert_eq!(outcome.status, Status::Alerted, "{outcome:?}");
    assert_eq!(world.ec2_state(&instance).await, "terminated");
    let notices = world.notices().await;
    assert_eq!((notices.len(), notices[0].1.as_str()), (1, "critical"));
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn given_instance_unknown_to_aws_when_stopped_then_skipped_not_found() {
    let world = World::new("unknown").await;
    let outcome =
        handle(&world.healer(Policy::default()), state_change("i-0123456789abcdef0", "stopped"), now()).await.unwrap();
    assert_eq!(
        (outcome.status, outcome.label.as_deref()),
        (Status::Skipped, Some("instance-not-found")),
        "{outcome:?}"
    );
}
