//! Baseline: the SDK clients notifier builds, and no calls.
medic_baselines::clients_baseline!(aws_sdk_dynamodb, aws_sdk_sns);
