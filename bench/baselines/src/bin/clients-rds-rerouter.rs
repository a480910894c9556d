//! Baseline: the SDK clients rds-rerouter builds, and no calls.
medic_baselines::clients_baseline!(aws_sdk_dynamodb, aws_sdk_sns, aws_sdk_cloudwatch, aws_sdk_rds, aws_sdk_route53);
