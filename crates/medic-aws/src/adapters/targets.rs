//! Elastic Load Balancing: which targets of a target group need replacing.

use aws_sdk_elasticloadbalancingv2::types::{TargetHealthReasonEnum, TargetHealthStateEnum};
use aws_sdk_elasticloadbalancingv2::Client;

use crate::error::classify;
use crate::ports::{PortResult, TargetInspector};

#[derive(Debug, Clone)]
pub struct AwsTargets {
    elbv2: Client,
}

impl AwsTargets {
    pub fn new(elbv2: Client) -> Self {
        Self { elbv2 }
    }
}

impl TargetInspector for AwsTargets {
    /// Targets failing health checks, and targets whose instance is not running
    /// (`unused` / `Target.InvalidState`): both serve no traffic while registered.
    async fn unhealthy_targets(&self, target_group_arn: &str) -> PortResult<Option<Vec<String>>> {
        let described = self
            .elbv2
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:DescribeTargetHealth", e));
        let health = match described {
            Ok(health) => health,
            Err(error) if error.code.as_deref() == Some("TargetGroupNotFound") => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok(Some(
            health
                .target_health_descriptions()
                .iter()
                .filter(|d| {
                    let health = d.target_health();
                    let state = health.and_then(|h| h.state());
                    let reason = health.and_then(|h| h.reason());
                    state == Some(&TargetHealthStateEnum::Unhealthy)
                        || (state == Some(&TargetHealthStateEnum::Unused)
                            && reason == Some(&TargetHealthReasonEnum::InvalidState))
                })
                .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
                .collect(),
        ))
    }
}
