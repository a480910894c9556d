//! Baseline: the SDK clients instance-healer builds, and no calls.
medic_baselines::clients_baseline!(aws_sdk_autoscaling, aws_sdk_ec2, aws_sdk_dynamodb, aws_sdk_sns);
