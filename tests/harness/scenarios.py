"""The fault matrix's scenarios (tests/runtime/test_fault_matrix_runtime.py), also counted call by
call by `bench/stages.py`: one remediation per function, each in a world of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from medic_bench import MANAGED, World, load_event, renamed, set_alarm_time


@dataclass
class Scenario:
    function: str
    # (world, event, names): `names` maps a world's resource names to roles, so that the clean
    # run's mutations compare with any cell's.
    setup: Callable[[str], tuple[World, dict, dict[str, str]]]
    settings: dict[str, str]
    own_account: bool = False


def healer_replaces_a_stopped_member(prefix: str):
    world = World(prefix)
    group, instances = world.group(3, MANAGED)
    world.stop(instances[0])
    event = load_event("instance-healer", "asg-instance-stopped.json", instance_id=instances[0])
    return world, event, {instances[0]: "member", group: "group"}


def alarm_scales_out(prefix: str):
    world = World(prefix)
    group = f"{world.name}-web"
    world.named_group(group, 1, 4, 2, MANAGED)
    alarm = f"{world.name}-cpu-high"
    world.metric_alarm(alarm, "AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": group}, "GreaterThanThreshold", 70.0)
    event = renamed(load_event("alarm-responder", "eventbridge-cpu-high.json"), {"web-prod-cpu-high": alarm, "web-prod": group})
    set_alarm_time(event, world.fire(alarm))
    return world, event, {group: "group"}


def alarm_reboots_a_standalone_instance(prefix: str):
    world = World(prefix)
    instance = world.standalone(MANAGED)
    alarm = f"{world.name}-{instance}-status"
    world.metric_alarm(alarm, "AWS/EC2", "StatusCheckFailed_Instance", {"InstanceId": instance},
                       "GreaterThanOrEqualToThreshold", 1.0)
    event = load_event("alarm-responder", "eventbridge-status-check-failed.json")
    event = renamed(event, {"web-prod-i-0a1b2c3d4e5f67890-status": alarm, "i-0a1b2c3d4e5f67890": instance,
                            '"StatusCheckFailed"': '"StatusCheckFailed_Instance"'})
    set_alarm_time(event, world.fire(alarm))
    return world, event, {instance: "instance"}


def rds_promotes_a_replica(prefix: str):
    world = World(prefix)
    primary, replica = f"{world.name}-db", f"{world.name}-db-replica-1"
    stack = world.db_stack(primary, [(replica, "us-east-1b", 2.0)], f"{world.name}.internal.")
    world.fail_db(primary)
    event = renamed(load_event("rds-rerouter", "instance-failed.json"), {"orders-db": primary})
    return world, event, {replica: "replica", stack["zone_id"]: "zone", primary: "primary"}


def notifier_reports_a_failed_launch(prefix: str):
    world = World(prefix)
    group = f"{world.name}-web"
    event = renamed(load_event("notifier", "launch-unsuccessful.json"), {"web-prod": group})
    return world, event, {group: "group"}


def reconciler_replaces_an_impaired_member(prefix: str):
    world = World(prefix, own_account=True)
    group, instances = world.group(3, MANAGED)
    world.impair(instances[2], "instance")
    event = renamed(load_event("reconciler", "scheduled.json"), {})
    return world, event, {instances[2]: "member", group: "group"}


SCENARIOS = {
    "instance-healer": Scenario("instance-healer", healer_replaces_a_stopped_member, {}),
    "alarm-scale-out": Scenario("alarm-responder", alarm_scales_out, {}),
    "alarm-reboot": Scenario("alarm-responder", alarm_reboots_a_standalone_instance, {"breaker_max_actions": "1000"}),
    "rds-promote": Scenario("rds-rerouter", rds_promotes_a_replica, {"promote_confirm_seconds": "0"}),
    "notifier": Scenario("notifier", notifier_reports_a_failed_launch, {}),
    "reconciler": Scenario("reconciler", reconciler_replaces_an_impaired_member, {}, own_account=True),
}


def outcomes(answer) -> list[dict]:
    """The outcomes in an answer: one (instance healer, RDS rerouter, notifier), a list (alarm
    responder), or the reconciler's findings."""
    if isinstance(answer, list):
        return answer
    if "findings" in answer:
        return answer["findings"]
    return [answer]
