//! Route 53: read the record sets at a name, and UPSERT the writer CNAME or one weighted reader
//! CNAME (absolute values, so a repeated call changes nothing).

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use aws_sdk_route53::Client;
use medic_core::rds_rerouter::{fqdn, DnsRecord, RecordLocation};
use medic_core::Action;

use crate::error::{classify, PortError};
use crate::ports::{DnsInspector, PortResult, Remediator};

#[derive(Debug, Clone)]
pub struct AwsDns {
    route53: Client,
}

impl AwsDns {
    pub fn new(route53: Client) -> Self {
        Self { route53 }
    }

    async fn upsert(&self, zone_id: &str, record: ResourceRecordSet, what: &str) -> PortResult<()> {
        let operation = "route53:ChangeResourceRecordSets";
        let invalid = |e: aws_sdk_route53::error::BuildError| PortError::permanent(operation, format!("{what}: {e}"));
        let change =
            Change::builder().action(ChangeAction::Upsert).resource_record_set(record).build().map_err(invalid)?;
        let batch =
            ChangeBatch::builder().comment(format!("medic: {what}")).changes(change).build().map_err(invalid)?;
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .customize()
            .config_override(crate::sent_once!(aws_sdk_route53))
            .send()
            .await
            .map_err(|e| classify(operation, e))?;
        Ok(())
    }
}

impl DnsInspector for AwsDns {
    async fn record_sets(&self, location: &RecordLocation) -> PortResult<Vec<DnsRecord>> {
        let mut records = Vec::new();
        let (mut start_name, mut start_type, mut start_identifier) = (Some(location.name.clone()), None, None);
        // Record sets come sorted by name; stop at the first page that moves past ours.
        while let Some(name) = start_name.take() {
            let page = self
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(&location.zone_id)
                .start_record_name(name)
                .set_start_record_type(start_type.take())
                .set_start_record_identifier(start_identifier.take())
                .send()
                .await
                .map_err(|e| classify("route53:ListResourceRecordSets", e))?;
            let mut past_ours = false;
            for set in page.resource_record_sets() {
                if fqdn(set.name()) != location.name {
                    past_ours = true;
                    continue;
                }
                records.push(DnsRecord {
                    name: fqdn(set.name()),
                    record_type: set.r#type().as_str().to_owned(),
                    set_identifier: set.set_identifier().map(str::to_owned),
                    weight: set.weight(),
                    value: set.resource_records().first().map(|r| r.value().to_owned()),
                    ttl: set.ttl(),
                    health_check_id: set.health_check_id().map(str::to_owned),
                });
            }
            if page.is_truncated() && !past_ours {
                start_name = page.next_record_name().map(str::to_owned);
                start_type = page.next_record_type().cloned();
                start_identifier = page.next_record_identifier().map(str::to_owned);
            }
        }
        Ok(records)
    }
}

fn cname(name: &str, value: &str, ttl: i64) -> Result<ResourceRecordSet, aws_sdk_route53::error::BuildError> {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(ttl)
        .resource_records(ResourceRecord::builder().value(value).build()?)
        .build()
}

impl Remediator for AwsDns {
    fn performs(&self, action: &Action) -> bool {
        matches!(action, Action::PointWriterRecord { .. } | Action::SetReaderWeight { .. })
    }

    /// Whether the record already says what the UPSERT would make it say.
    async fn confirm(&self, action: &Action) -> PortResult<Option<bool>> {
        let (zone_id, name, identifier) = match action {
            Action::PointWriterRecord { zone_id, record_name, .. } => (zone_id, record_name, None),
            Action::SetReaderWeight { reader, .. } => (&reader.zone_id, &reader.record_name, Some(&reader.replica)),
            _ => return Ok(None),
        };
        let location = RecordLocation { zone_id: zone_id.clone(), name: fqdn(name) };
        let records = self.record_sets(&location).await?;
        let record = records.iter().find(|r| r.set_identifier.as_ref() == identifier);
        Ok(Some(match action {
            Action::PointWriterRecord { endpoint, .. } => record.is_some_and(|r| r.value.as_ref() == Some(endpoint)),
            Action::SetReaderWeight { to, .. } => record.is_some_and(|r| r.weight == Some(*to)),
            _ => false,
        }))
    }

    async fn apply(&self, action: &Action) -> PortResult<()> {
        let invalid = |e: aws_sdk_route53::error::BuildError| {
            PortError::permanent("route53:ChangeResourceRecordSets", e.to_string())
        };
        match action {
            Action::PointWriterRecord { zone_id, record_name, endpoint, ttl, health_check_id, .. } => {
                let mut record = cname(record_name, endpoint, *ttl).map_err(invalid)?;
                record.health_check_id.clone_from(health_check_id);
                self.upsert(zone_id, record, &action.describe(true)).await
            }
            Action::SetReaderWeight { reader, to, .. } => {
                let mut record = cname(&reader.record_name, &reader.endpoint, reader.ttl).map_err(invalid)?;
                record.set_identifier = Some(reader.replica.clone());
                record.weight = Some(*to);
                record.health_check_id.clone_from(&reader.health_check_id);
                self.upsert(&reader.zone_id, record, &action.describe(true)).await
            }
            other => Err(PortError::permanent("apply", format!("{} is not a Route 53 action", other.api_call()))),
        }
    }
}
