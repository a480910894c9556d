"""The instance healer a team would write instead of medic (issue 15's Python baseline): boto3 and
Powertools' idempotency, the same remediation and notice. An Auto Scaling member that stopped is
marked Unhealthy, so that Auto Scaling replaces it, and an SNS notice says so; anything else is
left alone. No scope tags, cooldown, breaker, floor or grace period: five calls, one after another
(the idempotency record's claim, DescribeAutoScalingInstances, SetInstanceHealth, Publish, and the
record's completion).

Environment: MEDIC_LEDGER_TABLE (a table keyed by `pk`, medic's ledger serves), MEDIC_TOPIC_ARN."""

import json
import os

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent,
)

autoscaling = boto3.client("autoscaling")
sns = boto3.client("sns")
persistence = DynamoDBPersistenceLayer(table_name=os.environ["MEDIC_LEDGER_TABLE"], key_attr="pk")
config = IdempotencyConfig(event_key_jmespath="id", expires_after_seconds=25 * 3600)

HEALABLE = {"stopped", "stopping", "shutting-down", "terminated"}


@idempotent(config=config, persistence_store=persistence)
def handler(event, context):
    detail = event["detail"]
    instance_id, state = detail["instance-id"], detail["state"]
    if state not in HEALABLE:
        return {"status": "skipped", "reason": f"{instance_id} is {state}"}
    members = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    if not members:
        return {"status": "skipped", "reason": f"{instance_id} is in no Auto Scaling group"}
    group = members[0]["AutoScalingGroupName"]
    autoscaling.set_instance_health(InstanceId=instance_id, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
    sns.publish(
        TopicArn=os.environ["MEDIC_TOPIC_ARN"],
        Subject=f"[WARNING] asg {group}: replaced {instance_id} ({state})",
        Message=json.dumps({"instance": instance_id, "group": group, "state": state, "action": "SetInstanceHealth Unhealthy"}),
    )
    return {"status": "acted", "resource": instance_id, "action": "replace"}
