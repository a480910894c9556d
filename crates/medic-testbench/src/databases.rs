//! RDS, Route 53 and replica-lag metrics for the RDS rerouter's emulated-AWS tests.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_rds::types::Tag;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, HostedZoneConfig, ResourceRecord, ResourceRecordSet, RrType, Vpc, VpcRegion,
};

use crate::{World, MANAGED};

/// A primary with read replicas behind a writer record and a weighted reader record set.
#[derive(Debug, Clone)]
pub struct DbStack {
    pub primary: String,
    pub replicas: Vec<String>,
    pub zone_id: String,
    pub writer_record: String,
    pub reader_record: String,
}

/// What a test reads back about a DB instance.
#[derive(Debug, Clone)]
pub struct DbState {
    pub status: String,
    pub endpoint: String,
    pub backup_retention_days: i32,
}

/// A record as a test reads it back: its value and weight.
pub type RecordState = (Option<String>, Option<i64>);

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl World {
    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk)
    }

    pub fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.sdk)
    }

    /// A MySQL primary in us-east-1a (7 days of backups, opted in, tagged with its zone, writer
    /// and reader records) and one opted-in replica per `(az, lag seconds)` (no backups, as MySQL
    /// replicas usually are), a private hosted zone with the writer CNAME and one weighted reader CNAME
    /// (weight 100) per replica, and each replica's ReplicaLag datapoint.
    pub async fn db_stack(&self, replicas: &[(&str, Option<f64>)]) -> DbStack {
        let rds = self.rds();
        let primary = format!("{}-db", self.name);
        let zone_name = format!("{}.internal.", self.name);
        let zone_id = self.hosted_zone(&zone_name).await;
        let writer_record = format!("writer.{zone_name}");
        let reader_record = format!("reader.{zone_name}");
        rds.create_db_instance()
            .db_instance_identifier(&primary)
            .db_instance_class("db.t3.micro")
            .engine("mysql")
            .master_username("admin")
            .master_user_password("password123")
            .allocated_storage(20)
            .availability_zone("us-east-1a")
            .backup_retention_period(7)
            .tags(tag(MANAGED.0, MANAGED.1))
            .tags(tag("medic:zone-id", &zone_id))
            .tags(tag("medic:writer-record", &writer_record))
            .tags(tag("medic:reader-record", &reader_record))
            .send()
            .await
            .unwrap();
        self.upsert_cname(&zone_id, &writer_record, &self.db(&primary).await.endpoint, None).await;
        let mut replica_ids = Vec::new();
        for (index, (az, lag)) in replicas.iter().enumerate() {
            let replica = format!("{primary}-replica-{}", index + 1);
            rds.create_db_instance_read_replica()
                .db_instance_identifier(&replica)
                .source_db_instance_identifier(&primary)
                .availability_zone(*az)
                .tags(tag(MANAGED.0, MANAGED.1))
                .send()
                .await
                .unwrap();
            rds.modify_db_instance()
                .db_instance_identifier(&replica)
                .backup_retention_period(0)
                .apply_immediately(true)
                .send()
                .await
                .unwrap();
            let endpoint = self.db(&replica).await.endpoint;
            self.upsert_cname(&zone_id, &reader_record, &endpoint, Some((&replica, 100))).await;
            if let Some(lag) = lag {
                self.put_lag(&replica, "ReplicaLag", *lag).await;
            }
            replica_ids.push(replica);
        }
        DbStack { primary, replicas: replica_ids, zone_id, writer_record, reader_record }
    }

    /// A private hosted zone in the default VPC; its id without the `/hostedzone/` prefix.
    pub async fn hosted_zone(&self, name: &str) -> String {
        let vpcs = self.ec2().describe_vpcs().send().await.unwrap();
        let vpc_id = vpcs.vpcs()[0].vpc_id().unwrap().to_owned();
        let zone = self
            .route53()
            .create_hosted_zone()
            .name(name)
            .caller_reference(crate::unique("ref"))
            .hosted_zone_config(HostedZoneConfig::builder().private_zone(true).build())
            .vpc(Vpc::builder().vpc_id(vpc_id).vpc_region(VpcRegion::UsEast1).build())
            .send()
            .await
            .unwrap();
        let id = zone.hosted_zone().unwrap().id();
        id.strip_prefix("/hostedzone/").unwrap_or(id).to_owned()
    }

    /// UPSERTs a CNAME, weighted when `weighted` names a set identifier and weight.
    pub async fn upsert_cname(&self, zone_id: &str, name: &str, value: &str, weighted: Option<(&str, i64)>) {
        let mut record = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap());
        if let Some((set_identifier, weight)) = weighted {
            record = record.set_identifier(set_identifier).weight(weight);
        }
        let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(record.build().unwrap());
        self.route53()
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(ChangeBatch::builder().changes(change.build().unwrap()).build().unwrap())
            .send()
            .await
            .unwrap();
    }

    /// The value and weight of the record `name` (with `set_identifier`, if given).
    pub async fn record(&self, zone_id: &str, name: &str, set_identifier: Option<&str>) -> RecordState {
        let listed = self
            .route53()
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(name)
            .send()
            .await
            .unwrap();
        let record = listed
            .resource_record_sets()
            .iter()
            .find(|r| r.name() == name && r.set_identifier() == set_identifier)
            .unwrap_or_else(|| panic!("no record {name} {set_identifier:?}"));
        (record.resource_records().first().map(|r| r.value().to_owned()), record.weight())
    }

    /// A replica-lag datapoint (`ReplicaLag` in seconds, `AuroraReplicaLag` in ms) at now.
    pub async fn put_lag(&self, db: &str, metric: &str, value: f64) {
        self.cloudwatch()
            .put_metric_data()
            .namespace("AWS/RDS")
            .metric_data(
                aws_sdk_cloudwatch::types::MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(
                        aws_sdk_cloudwatch::types::Dimension::builder().name("DBInstanceIdentifier").value(db).build(),
                    )
                    .value(value)
                    .timestamp(DateTime::from_secs(crate::now()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    pub async fn db(&self, id: &str) -> DbState {
        let described = self.rds().describe_db_instances().db_instance_identifier(id).send().await.unwrap();
        let db = &described.db_instances()[0];
        DbState {
            status: db.db_instance_status().unwrap().to_owned(),
            endpoint: db.endpoint().and_then(|e| e.address()).unwrap().to_owned(),
            backup_retention_days: db.backup_retention_period().unwrap_or(0),
        }
    }

    /// Stops a DB instance.
    pub async fn stop_db(&self, id: &str) {
        self.rds().stop_db_instance().db_instance_identifier(id).send().await.unwrap();
    }

    /// A primary RDS lost for good: stopped in moto, and reported `failed` by every
    /// DescribeDBInstances from then on (moto cannot fail an instance; `scripts/with-moto.sh` runs
    /// it under `tests/harness/moto_faults.py`, which rewrites the status in its answers).
    pub async fn fail_db(&self, id: &str) {
        self.stop_db(id).await;
        crate::post_fault("db-status", &serde_json::json!({"id": id, "status": "failed"})).await;
    }

    /// An opted-in Aurora MySQL cluster with a writer in us-east-1a and one reader per AZ in
    /// `reader_azs`; the cluster id and its members, writer first.
    pub async fn aurora(&self, reader_azs: &[&str]) -> (String, Vec<String>) {
        let rds = self.rds();
        let cluster = format!("{}-aurora", self.name);
        rds.create_db_cluster()
            .db_cluster_identifier(&cluster)
            .engine("aurora-mysql")
            .master_username("admin")
            .master_user_password("password123")
            .tags(tag(MANAGED.0, MANAGED.1))
            .send()
            .await
            .unwrap();
        let mut members = Vec::new();
        for (index, az) in std::iter::once(&"us-east-1a").chain(reader_azs).enumerate() {
            let member = format!("{cluster}-{}", index + 1);
            rds.create_db_instance()
                .db_instance_identifier(&member)
                .db_instance_class("db.r6g.large")
                .engine("aurora-mysql")
                .db_cluster_identifier(&cluster)
                .availability_zone(*az)
                .send()
                .await
                .unwrap();
            members.push(member);
        }
        (cluster, members)
    }

    pub async fn cluster_writer(&self, cluster: &str) -> String {
        let described = self.rds().describe_db_clusters().db_cluster_identifier(cluster).send().await.unwrap();
        let members = described.db_clusters()[0].db_cluster_members();
        let writer = members.iter().find(|m| m.is_cluster_writer() == Some(true)).unwrap();
        writer.db_instance_identifier().unwrap().to_owned()
    }
}
