//! SDK adapters, one module per AWS service, each behind its cargo feature.

#[cfg(feature = "cloudwatch")]
pub mod alarms;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(all(feature = "autoscaling", feature = "ec2"))]
pub mod instances;
#[cfg(feature = "cloudwatch")]
pub mod metrics;
#[cfg(feature = "rds")]
pub mod rds;
#[cfg(feature = "route53")]
pub mod route53;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "sqs")]
pub mod sqs;
#[cfg(feature = "elbv2")]
pub mod targets;
