//! Baseline: the SDK clients alarm-responder builds, and no calls.
medic_baselines::clients_baseline!(
    aws_sdk_autoscaling,
    aws_sdk_ec2,
    aws_sdk_dynamodb,
    aws_sdk_sns,
    aws_sdk_cloudwatch,
    aws_sdk_elasticloadbalancingv2
);
