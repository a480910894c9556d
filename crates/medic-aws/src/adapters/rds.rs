//! RDS: DB instances and Aurora clusters (read-only), and the RDS remediations: promote a read
//! replica, reboot a replica, fail an Aurora cluster over.

use aws_sdk_rds::types::{DbInstance as SdkDbInstance, Filter, Tag};
use aws_sdk_rds::Client;
use medic_core::rds_rerouter::{Cluster, ClusterMember, DbInstance};
use medic_core::scope::Tags;
use medic_core::Action;

use crate::error::{classify, PortError};
use crate::ports::{DbInspector, DbLister, PortResult, Remediator};

#[derive(Debug, Clone)]
pub struct AwsRds {
    rds: Client,
}

impl AwsRds {
    pub fn new(rds: Client) -> Self {
        Self { rds }
    }
}

fn tags(list: &[Tag]) -> Tags {
    list.iter().filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned()))).collect()
}

fn instance(db: &SdkDbInstance) -> DbInstance {
    DbInstance {
        id: db.db_instance_identifier().unwrap_or_default().to_owned(),
        status: db.db_instance_status().unwrap_or_default().to_owned(),
        az: db.availability_zone().map(str::to_owned),
        multi_az: db.multi_az().unwrap_or(false),
        backup_retention_days: db.backup_retention_period().unwrap_or(0),
        endpoint: db.endpoint().and_then(|e| e.address()).map(str::to_owned),
        tags: tags(db.tag_list()),
        source: db.read_replica_source_db_instance_identifier().map(str::to_owned),
        replicas: db.read_replica_db_instance_identifiers().to_vec(),
        cluster: db.db_cluster_identifier().map(str::to_owned),
    }
}

impl DbLister for AwsRds {
    async fn db_instances(&self) -> PortResult<Vec<DbInstance>> {
        let mut found = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .rds
                .describe_db_instances()
                .max_records(100)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| classify("rds:DescribeDBInstances", e))?;
            found.extend(page.db_instances().iter().map(instance));
            marker = page.marker().filter(|m| !m.is_empty()).map(str::to_owned);
            if marker.is_none() {
                return Ok(found);
            }
        }
    }
}

fn is_not_found(error: &PortError) -> bool {
    error.code.as_deref().is_some_and(|c| c.starts_with("DBInstanceNotFound") || c.starts_with("DBClusterNotFound"))
}

impl DbInspector for AwsRds {
    async fn db_instance(&self, id: &str) -> PortResult<Option<DbInstance>> {
        let described = self.rds.describe_db_instances().db_instance_identifier(id).send().await;
        match described.map_err(|e| classify("rds:DescribeDBInstances", e)) {
            Ok(output) => {
                Ok(output.db_instances().iter().find(|d| d.db_instance_identifier() == Some(id)).map(instance))
            }
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn db_cluster(&self, id: &str) -> PortResult<Option<Cluster>> {
        let described = self.rds.describe_db_clusters().db_cluster_identifier(id).send().await;
        let output = match described.map_err(|e| classify("rds:DescribeDBClusters", e)) {
            Ok(output) => output,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(error),
        };
        let Some(cluster) = output.db_clusters().iter().find(|c| c.db_cluster_identifier() == Some(id)) else {
            return Ok(None);
        };
        let filter = Filter::builder().name("db-cluster-id").values(id).build();
        let instances = self
            .rds
            .describe_db_instances()
            .filters(filter)
            .send()
            .await
            .map_err(|e| classify("rds:DescribeDBInstances", e))?;
        let members = cluster
            .db_cluster_members()
            .iter()
            .filter_map(|member| {
                let member_id = member.db_instance_identifier()?;
                let db = instances.db_instances().iter().find(|d| d.db_instance_identifier() == Some(member_id));
                Some(ClusterMember {
                    id: member_id.to_owned(),
                    writer: member.is_cluster_writer().unwrap_or(false),
                    // A member DescribeDBInstances does not show is as good as gone.
                    status: db.and_then(SdkDbInstance::db_instance_status).unwrap_or("missing").to_owned(),
                    az: db.and_then(SdkDbInstance::availability_zone).map(str::to_owned),
                    promotion_tier: member
                        .promotion_tier()
                        .or_else(|| db.and_then(SdkDbInstance::promotion_tier))
                        .unwrap_or(15),
                    tags: db.map(|d| tags(d.tag_list())).unwrap_or_default(),
                    lag: None,
                })
            })
            .collect();
        Ok(Some(Cluster {
            id: id.to_owned(),
            status: cluster.status().unwrap_or_default().to_owned(),
            tags: tags(cluster.tag_list()),
            members,
        }))
    }
}

impl Remediator for AwsRds {
    fn performs(&self, action: &Action) -> bool {
        matches!(action, Action::PromoteReplica { .. } | Action::RebootReplica { .. } | Action::FailoverCluster { .. })
    }

    /// A promoted replica has no source any more; after a failover the target is the writer. A
    /// reboot leaves no trace to read.
    async fn confirm(&self, action: &Action) -> PortResult<Option<bool>> {
        Ok(match action {
            // Still an available replica: the promotion did not happen. A replica busy with
            // something (a promotion under way shows `modifying`) cannot tell.
            Action::PromoteReplica { replica, .. } => self.db_instance(replica).await?.and_then(|db| {
                if db.source.is_none() {
                    Some(true)
                } else {
                    (db.status == "available").then_some(false)
                }
            }),
            Action::FailoverCluster { cluster, target } => self
                .db_cluster(cluster)
                .await?
                .map(|c| c.members.iter().any(|m| m.writer && m.id == *target))
                .filter(|moved| *moved),
            _ => None,
        })
    }

    async fn apply(&self, action: &Action) -> PortResult<()> {
        match action {
            Action::PromoteReplica { replica, backup_retention_days, .. } => {
                self.rds
                    .promote_read_replica()
                    .db_instance_identifier(replica)
                    .backup_retention_period(*backup_retention_days)
                    .customize()
                    .config_override(crate::sent_once!(aws_sdk_rds))
                    .send()
                    .await
                    .map_err(|e| classify("rds:PromoteReadReplica", e))?;
            }
            Action::RebootReplica { replica, .. } => {
                self.rds
                    .reboot_db_instance()
                    .db_instance_identifier(replica)
                    .customize()
                    .config_override(crate::sent_once!(aws_sdk_rds))
                    .send()
                    .await
                    .map_err(|e| classify("rds:RebootDBInstance", e))?;
            }
            Action::FailoverCluster { cluster, target } => {
                self.rds
                    .failover_db_cluster()
                    .db_cluster_identifier(cluster)
                    .target_db_instance_identifier(target)
                    .customize()
                    .config_override(crate::sent_once!(aws_sdk_rds))
                    .send()
                    .await
                    .map_err(|e| classify("rds:FailoverDBCluster", e))?;
            }
            other => {
                return Err(PortError::permanent("apply", format!("{} is not an RDS action", other.api_call())));
            }
        }
        Ok(())
    }
}
