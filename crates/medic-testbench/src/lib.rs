//! The emulated-AWS test bench shared by every function's tests: a uniquely named world in moto
//! (ledger, notice topic with an SQS inbox, instances, Auto Scaling groups) built with the real
//! SDK clients, and readers for what the tests assert on. Dev-only; never linked into a lambda.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup fails loudly by design

mod databases;

pub use databases::{DbStack, DbState, RecordState};

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as AsgTag};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag as Ec2Tag, TagSpecification};
use medic_core::Outcome;
use serde_json::Value;

/// How to build a metric alarm.
#[derive(Debug, Clone, Copy)]
pub struct MetricAlarmSpec<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub metric: &'a str,
    pub dimensions: &'a [(&'a str, &'a str)],
    pub operator: &'a str,
    pub threshold: f64,
    pub tags: &'a [(&'a str, &'a str)],
}

/// How to build an Auto Scaling group.
#[derive(Debug, Clone, Copy)]
pub struct GroupSpec<'a> {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub grace_seconds: i32,
    pub tags: &'a [(&'a str, &'a str)],
    pub target_group_arn: Option<&'a str>,
}

/// The opt-in tag, as a (key, value) pair.
pub const MANAGED: (&str, &str) = ("medic:managed", "true");

/// Now, from the system clock.
pub fn now() -> i64 {
    medic_aws::now_epoch_seconds()
}

pub const IMAGE_ID: &str = "ami-12c6146b";

/// One test's own resources in moto: a ledger table, a notice topic with an SQS inbox, and
/// whatever instances and groups the test adds. Names are unique, so tests run in parallel
/// against one moto server without a global reset.
#[derive(Debug)]
pub struct World {
    pub sdk: SdkConfig,
    pub name: String,
    pub table: String,
    pub topic_arn: String,
    pub queue_url: String,
}

/// A short unique name: `prefix` and six hex digits.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let salt = nanos ^ (std::process::id() << 12) ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37);
    format!("{prefix}{:06x}", salt & 0xff_ffff)
}

/// Central mode's tests: medic's own account is moto's default one.
pub const HOME_ACCOUNT: &str = "123456789012";

/// A member account id of this test run's own, so that tests beside it never share one.
pub fn unique_account() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("9{:05}{:06}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::Relaxed) % 1_000_000)
}

/// The member role medic assumes in `account` (the default `MEDIC_MEMBER_ROLE`).
pub fn member_role_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{}", medic_aws::config::DEFAULT_MEMBER_ROLE)
}

/// An SDK configuration acting in `account` and `region`, as a person deploying the member's
/// stack there would: moto runs the calls signed with an assumed role's keys in the role's
/// account.
pub async fn in_account(account: &str, region: &str) -> SdkConfig {
    let home = sdk().await;
    let assumed = aws_sdk_sts::Client::new(&home)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/test-builder"))
        .role_session_name("medic-testbench")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let credentials = aws_credential_types::Credentials::new(
        assumed.access_key_id,
        assumed.secret_access_key,
        Some(assumed.session_token),
        None,
        "medic-testbench",
    );
    home.to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
        .build()
}

/// How many times `role_arn` was assumed so far, as `tests/harness/moto_faults.py` counted.
pub async fn assume_role_count(role_arn: &str) -> u64 {
    let answer = to_moto_faults(|address| {
        format!("GET /_medic_faults/assume-role-count?arn={role_arn} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
    })
    .await;
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap();
    body["count"].as_u64().unwrap()
}

/// Sends the HTTP request `request(address)` to moto_faults (at `AWS_ENDPOINT_URL`) and returns
/// its whole answer.
async fn to_moto_faults(request: impl FnOnce(&str) -> String) -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let request = request(&address);
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

/// Asks `tests/harness/moto_faults.py` (which `scripts/with-moto.sh` runs moto under) for a fault
/// moto cannot produce: `kind` is `db-status`, `instance-status`, `state-reason` or `no-role`.
pub async fn post_fault(kind: &str, fault: &Value) {
    let body = fault.to_string();
    let answer = to_moto_faults(|address| {
        format!(
            "POST /_medic_faults/{kind} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 204"), "moto_faults refused the fault: {answer}");
}

/// The SDK configuration from the environment `make test` sets, checked to point at moto.
pub async fn sdk() -> SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| v.starts_with("http://127.0.0.1")),
        "AWS_ENDPOINT_URL must point at moto on loopback: run these tests with `make test`"
    );
    aws_config::defaults(BehaviorVersion::latest()).http_client(medic_aws::https_client()).load().await
}

impl World {
    /// Ledger table, notice topic and an SQS inbox subscribed to it.
    pub async fn new(prefix: &str) -> Self {
        Self::build(prefix, sdk().await).await
    }

    /// A world in an AWS account of its own (moto_faults routes an access key ending in
    /// `ACCOUNT` and 12 digits to that account): for tests that list a whole account, which must
    /// not see the resources of tests running beside them.
    pub async fn in_own_account(prefix: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let account = 100_000_000_000_u64
            + u64::from(std::process::id() % 10_000) * 10_000_000
            + u64::from(NEXT.fetch_add(1, Ordering::Relaxed));
        let credentials = aws_credential_types::Credentials::new(
            format!("MEDICACCOUNT{account}"),
            "testing",
            None,
            None,
            "medic-testbench",
        );
        let sdk = sdk()
            .await
            .to_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
            .build();
        Self::build(prefix, sdk).await
    }

    /// The account of a world made by `in_own_account`, as its credentials name it.
    pub async fn own_account(&self) -> String {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self.sdk.credentials_provider().expect("a world has credentials");
        let credentials = provider.provide_credentials().await.unwrap();
        credentials.access_key_id().strip_prefix("MEDICACCOUNT").expect("a world of its own account").to_owned()
    }

    /// A world whose resources are made through `sdk` (another account or region).
    pub async fn with_sdk(prefix: &str, sdk: SdkConfig) -> Self {
        Self::build(prefix, sdk).await
    }

    /// Central mode's configuration: medic's own account is moto's default, the member role the
    /// default one, and `allowed` the accounts it may act in (empty: any).
    pub fn central_config(&self, policy: medic_core::Policy, allowed: &[&str]) -> medic_aws::MedicConfig {
        medic_aws::MedicConfig {
            accounts: medic_aws::config::Accounts::Central(medic_aws::config::CentralSettings {
                home_account: HOME_ACCOUNT.to_owned(),
                member_role: medic_aws::config::DEFAULT_MEMBER_ROLE.to_owned(),
                external_id: None,
                allowed: allowed.iter().map(|a| (*a).to_owned()).collect(),
            }),
            ..self.config(policy)
        }
    }

    /// Stops an instance as EC2 itself would (a host failure): moto stops it, and every
    /// DescribeInstances from then on reports StateReason `Server.InternalError`.
    pub async fn stop_by_ec2(&self, instance_id: &str) {
        self.stop(instance_id).await;
        post_fault("state-reason", &serde_json::json!({"id": instance_id, "code": "Server.InternalError"})).await;
    }

    /// Reports `check` (`system` or `instance`) of a running instance impaired in every
    /// DescribeInstanceStatus from now on (moto reports every check ok).
    pub async fn impair(&self, instance_id: &str, check: &str) {
        post_fault("instance-status", &serde_json::json!({"id": instance_id, "check": check, "status": "impaired"}))
            .await;
    }

    async fn build(prefix: &str, sdk: SdkConfig) -> Self {
        Self::named(unique(prefix), sdk).await
    }

    /// A world named `name` exactly: central mode's tests give two accounts' worlds one name, so
    /// their groups share a name as two teams' `web` groups would.
    pub async fn named(name: String, sdk: SdkConfig) -> Self {
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

    pub fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.sdk)
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    /// An Auto Scaling group of `size` instances; its tags propagate to the instances.
    pub async fn group(&self, size: i32, grace_seconds: i32, tags: &[(&str, &str)]) -> (String, Vec<String>) {
        self.group_with(GroupSpec { min: 1, max: size + 2, desired: size, grace_seconds, tags, target_group_arn: None })
            .await
    }

    /// An Auto Scaling group as `spec` says; instances register with the target group if one is given.
    pub async fn group_with(&self, spec: GroupSpec<'_>) -> (String, Vec<String>) {
        let GroupSpec { min, max, desired: size, grace_seconds, tags, target_group_arn } = spec;
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
            .min_size(min)
            .max_size(max)
            .desired_capacity(size)
            .availability_zones(format!("{}a", self.sdk.region().map_or("us-east-1", |r| r.as_ref())))
            .health_check_type("EC2")
            .health_check_grace_period(grace_seconds);
        if let Some(arn) = target_group_arn {
            create = create.target_group_arns(arn).vpc_zone_identifier(self.default_subnet().await);
        }
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
    pub async fn standalone(&self, tags: &[(&str, &str)]) -> String {
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

    pub async fn stop(&self, instance_id: &str) {
        self.ec2().stop_instances().instance_ids(instance_id).send().await.unwrap();
    }

    pub async fn health(&self, instance_id: &str) -> String {
        let described =
            self.autoscaling().describe_auto_scaling_instances().instance_ids(instance_id).send().await.unwrap();
        described.auto_scaling_instances()[0].health_status().unwrap().to_ascii_uppercase()
    }

    pub async fn set_healthy(&self, instance_id: &str) {
        self.autoscaling()
            .set_instance_health()
            .instance_id(instance_id)
            .health_status("Healthy")
            .send()
            .await
            .unwrap();
    }

    pub async fn ec2_state(&self, instance_id: &str) -> String {
        let described = self.ec2().describe_instances().instance_ids(instance_id).send().await.unwrap();
        let instance = &described.reservations()[0].instances()[0];
        instance.state().unwrap().name().unwrap().as_str().to_owned()
    }

    /// Every notice that reached the SQS inbox so far: (subject, severity attribute, body).
    pub async fn notices(&self) -> Vec<(String, String, String)> {
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
    pub async fn ledger_status(&self, outcome: &Outcome) -> Option<String> {
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

    /// The function's configuration, pointed at this world's table and topic.
    pub fn config(&self, policy: medic_core::Policy) -> medic_aws::MedicConfig {
        medic_aws::MedicConfig {
            policy,
            ledger_table: self.table.clone(),
            topic_arn: self.topic_arn.clone(),
            accounts: medic_aws::config::Accounts::Single,
        }
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk)
    }

    pub fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk)
    }

    /// The default VPC's subnet in us-east-1a, where every group of the bench lives.
    async fn default_subnet(&self) -> String {
        let subnets = self.ec2().describe_subnets().send().await.unwrap();
        let subnet = subnets.subnets().iter().find(|s| s.availability_zone() == Some("us-east-1a")).unwrap();
        subnet.subnet_id().unwrap().to_owned()
    }

    /// An application load balancer forwarding to a new instance target group; its ARN.
    pub async fn target_group(&self) -> String {
        let elbv2 = self.elbv2();
        let subnets = self.ec2().describe_subnets().send().await.unwrap();
        let mut subnet_ids: Vec<String> =
            subnets.subnets().iter().filter_map(|s| s.subnet_id().map(str::to_owned)).collect();
        subnet_ids.sort();
        let vpc = subnets.subnets()[0].vpc_id().unwrap().to_owned();
        let lb = elbv2
            .create_load_balancer()
            .name(format!("{}-lb", self.name))
            .set_subnets(Some(subnet_ids.into_iter().take(2).collect()))
            .send()
            .await
            .unwrap();
        let lb_arn = lb.load_balancers()[0].load_balancer_arn().unwrap().to_owned();
        let tg = elbv2
            .create_target_group()
            .name(format!("{}-tg", self.name))
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
            .send()
            .await
            .unwrap();
        let tg_arn = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
        elbv2
            .create_listener()
            .load_balancer_arn(lb_arn)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .default_actions(
                aws_sdk_elasticloadbalancingv2::types::Action::builder()
                    .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                    .target_group_arn(&tg_arn)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        tg_arn
    }

    /// A metric alarm with tags; its ARN.
    pub async fn metric_alarm(&self, alarm: MetricAlarmSpec<'_>) -> String {
        let mut put = self
            .cloudwatch()
            .put_metric_alarm()
            .alarm_name(alarm.name)
            .namespace(alarm.namespace)
            .metric_name(alarm.metric)
            .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
            .period(60)
            .evaluation_periods(2)
            .threshold(alarm.threshold)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::from(alarm.operator));
        for (name, value) in alarm.dimensions {
            put = put.dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name(*name).value(*value).build());
        }
        for (key, value) in alarm.tags {
            put = put.tags(aws_sdk_cloudwatch::types::Tag::builder().key(*key).value(*value).build());
        }
        put.send().await.unwrap();
        let described = self.cloudwatch().describe_alarms().alarm_names(alarm.name).send().await.unwrap();
        described.metric_alarms()[0].alarm_arn().unwrap().to_owned()
    }

    /// Puts the alarm into ALARM as a new transition (through OK first) and returns the
    /// transition's time as CloudWatch shows it, for the event that reports it.
    pub async fn fire(&self, alarm: &str) -> String {
        self.set_alarm_state(alarm, aws_sdk_cloudwatch::types::StateValue::Ok).await;
        self.set_alarm_state(alarm, aws_sdk_cloudwatch::types::StateValue::Alarm).await
    }

    /// Sets the alarm's state and returns when CloudWatch says it changed.
    pub async fn set_alarm_state(&self, alarm: &str, state: aws_sdk_cloudwatch::types::StateValue) -> String {
        self.cloudwatch()
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(state)
            .state_reason("set by the test bench")
            .send()
            .await
            .unwrap();
        let described = self.cloudwatch().describe_alarms().alarm_names(alarm).send().await.unwrap();
        let metric_alarm = &described.metric_alarms()[0];
        let at = metric_alarm.state_transitioned_timestamp().or(metric_alarm.state_updated_timestamp()).unwrap();
        at.fmt(aws_sdk_cloudwatch::primitives::DateTimeFormat::DateTime).unwrap()
    }

    pub async fn desired(&self, group: &str) -> i32 {
        let described =
            self.autoscaling().describe_auto_scaling_groups().auto_scaling_group_names(group).send().await.unwrap();
        described.auto_scaling_groups()[0].desired_capacity().unwrap()
    }
}
