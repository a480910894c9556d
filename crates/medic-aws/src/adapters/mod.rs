//! SDK adapters, one module per AWS service, each behind its cargo feature.

#[cfg(feature = "cloudwatch")]
pub mod alarms;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(all(feature = "autoscaling", feature = "ec2"))]
pub mod instances;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "elbv2")]
pub mod targets;
