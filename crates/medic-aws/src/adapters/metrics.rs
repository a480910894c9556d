//! CloudWatch metrics: the latest replica-lag datapoint of a DB instance.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_cloudwatch::Client;
use medic_core::rds_rerouter::{LagSample, LAG_MAX_AGE_SECONDS};
use medic_core::time::EpochSeconds;

use crate::error::classify;
use crate::ports::{LagInspector, PortResult};

#[derive(Debug, Clone)]
pub struct AwsMetrics {
    cloudwatch: Client,
}

impl AwsMetrics {
    pub fn new(cloudwatch: Client) -> Self {
        Self { cloudwatch }
    }
}

impl LagInspector for AwsMetrics {
    async fn replica_lag(&self, db_id: &str, aurora: bool, now: EpochSeconds) -> PortResult<Option<LagSample>> {
        // ReplicaLag is in seconds; AuroraReplicaLag in milliseconds.
        let (metric_name, per_second) = if aurora { ("AuroraReplicaLag", 1000.0) } else { ("ReplicaLag", 1.0) };
        let metric = Metric::builder()
            .namespace("AWS/RDS")
            .metric_name(metric_name)
            .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(db_id).build())
            .build();
        let query = MetricDataQuery::builder()
            .id("lag")
            .metric_stat(MetricStat::builder().metric(metric).period(60).stat("Maximum").build())
            .build();
        // Twice the freshness limit, so a stale datapoint is seen (and refused) rather than missed.
        let output = self
            .cloudwatch
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(DateTime::from_secs(now - 2 * LAG_MAX_AGE_SECONDS))
            .end_time(DateTime::from_secs(now + 60))
            .scan_by(ScanBy::TimestampDescending)
            .send()
            .await
            .map_err(|e| classify("cloudwatch:GetMetricData", e))?;
        let samples: Vec<(i64, f64)> = output
            .metric_data_results()
            .iter()
            .flat_map(|result| result.timestamps().iter().zip(result.values()))
            .map(|(at, value)| (at.secs(), *value))
            .collect();
        // A replica whose source is gone reports -1 (replication not running) from then on; the
        // lag it had before, if recent, is what a promotion may lose.
        let latest =
            |usable: fn(f64) -> bool| samples.iter().filter(|(_, v)| usable(*v)).max_by_key(|(at, _)| *at).copied();
        let chosen = latest(|v| v >= 0.0).or_else(|| latest(|_| true));
        Ok(chosen.map(|(at, value)| LagSample { seconds: value / per_second, at }))
    }
}
