"""Runtime tier: the built instance-healer bootstrap under the AWS Lambda Runtime Interface
Emulator, fed every events/instance-healer file over the Runtime API (what `sam local invoke -e`
does), against moto. Each file is sent as it is; the files about a real instance are sent again
rebound to an instance of a seeded world, and the result is read back from the emulated AWS."""

import pytest

from medic_bench import EVENTS, MANAGED, Runtime, World, load_event

FUNCTION = "instance-healer"

# Sent as-is to an empty world: no instance has the file's id.
AS_IS = {
    "asg-instance-stopped.json": {"status": "skipped", "label": "instance-not-found"},
    "asg-instance-terminated.json": {"status": "skipped", "label": "instance-not-found"},
    "standalone-instance-stopped.json": {"status": "skipped", "label": "instance-not-found"},
    "standalone-instance-terminated.json": {"status": "skipped", "label": "instance-not-found"},
    "instance-running.json": {"status": "skipped", "label": "state-needs-no-healing"},
    "malformed-missing-instance-id.json": {"errorType": "NonRetryable", "says": "missing field `instance-id`"},
    "malformed-unknown-state.json": {"errorType": "NonRetryable", "says": "unknown variant `rebooting`"},
    "malformed-wrong-source.json": {"errorType": "NonRetryable", "says": "unsupported event: source `aws.s3`"},
}


def test_every_event_file_has_an_expectation():
    files = sorted(p.name for p in (EVENTS / FUNCTION).glob("*.json"))
    assert files == sorted(AS_IS)


@pytest.fixture(scope="module")
def empty_world_runtime():
    world = World("rt-empty")
    with Runtime(FUNCTION, world.env()) as runtime:
        yield world, runtime


@pytest.mark.parametrize("name", sorted(AS_IS))
def test_given_event_file_as_is_when_invoked_then_expected_response(empty_world_runtime, name):
    world, runtime = empty_world_runtime
    response = runtime.invoke(load_event(FUNCTION, name))
    expected = AS_IS[name]
    if "errorType" in expected:
        assert response["errorType"] == expected["errorType"], response
        assert expected["says"] in response["errorMessage"], response
        assert response["errorMessage"].startswith("malformed event: "), response
    else:
        assert response["status"] == expected["status"], response
        assert response["label"] == expected["label"], response
    assert world.notices() == []


@pytest.fixture()
def world():
    return World("rt")


def test_given_asg_member_stopped_when_file_rebound_and_invoked_then_unhealthy_and_notice(world):
    group, instances = world.group(3, MANAGED)
    world.stop(instances[0])
    with Runtime(FUNCTION, world.env()) as runtime:
        response = runtime.invoke(load_event(FUNCTION, "asg-instance-stopped.json", instance_id=instances[0]))
        assert "INIT REPORT" in runtime.log()
    assert response["status"] == "acted", response
    assert [world.health(i) for i in instances] == ["UNHEALTHY", "HEALTHY", "HEALTHY"]
    notices = world.notices()
    assert [(n["subject"], n["severity"]) for n in notices] == [
        (f"[WARNING] asg {group}: replaced {instances[0]} (stopped unexpectedly)", "warning")
    ]
    assert notices[0]["attributes"] == {
        "severity": "warning", "action": "replace", "outcome": "acted", "resource": instances[0], "environment": "dev",
        "account": "123456789012", "region": "us-east-1", "notice_id": f"event#{response['event']}",
    }
    assert world.ledger_item(response["event"])["status"]["S"] == "COMPLETED"


def test_given_asg_member_terminated_outside_auto_scaling_when_rebound_then_left_to_auto_scaling(world):
    # moto, like Auto Scaling after its next health check, drops an instance terminated through
    # EC2 from the group: medic must not treat it as a standalone instance.
    group, instances = world.group(2, MANAGED)
    world.terminate(instances[1])
    with Runtime(FUNCTION, world.env()) as runtime:
        response = runtime.invoke(load_event(FUNCTION, "asg-instance-terminated.json", instance_id=instances[1]))
    assert (response["status"], response["label"]) == ("skipped", "left-group"), response
    assert group in response["reason"]
    assert world.notices() == []


def test_rule1_given_standalone_stopped_by_a_person_when_file_rebound_and_invoked_then_left_alone(world):
    instance = world.standalone(MANAGED)
    world.stop(instance)
    with Runtime(FUNCTION, world.env()) as runtime:
        response = runtime.invoke(load_event(FUNCTION, "standalone-instance-stopped.json", instance_id=instance))
    assert (response["status"], response["severity"]) == ("alerted", "info"), response
    assert world.ec2_state(instance) == "stopped"
    assert [n["subject"] for n in world.notices()] == [f"[INFO] ec2 {instance}: stopped by a user: left alone"]


def test_given_standalone_terminated_when_file_rebound_and_invoked_then_critical_notice(world):
    instance = world.standalone(MANAGED)
    world.terminate(instance)
    with Runtime(FUNCTION, world.env()) as runtime:
        response = runtime.invoke(load_event(FUNCTION, "standalone-instance-terminated.json", instance_id=instance))
    assert response["status"] == "alerted", response
    assert [n["severity"] for n in world.notices()] == ["critical"]


def test_given_bad_configuration_when_started_then_init_fails_with_the_setting_named(world):
    with Runtime(FUNCTION, world.env(dry_run="maybe")) as runtime:
        response = runtime.invoke(load_event(FUNCTION, "instance-running.json"))
        log = runtime.log()
    assert "MEDIC_DRY_RUN" in log and "must be true or false" in log, log
    assert response.get("httpStatus") == 502 or "errorType" in response, response


def test_rule11_given_the_pause_switch_on_when_an_instance_stops_then_nothing_changes_until_it_is_cleared(world):
    group, instances = world.group(3, MANAGED)
    world.stop(instances[0])
    world.pause("AZ incident, paused by alice")
    with Runtime(FUNCTION, world.env()) as runtime:
        paused = runtime.invoke(load_event(FUNCTION, "asg-instance-stopped.json", instance_id=instances[0]))
        assert (paused["status"], paused["dry_run"]) == ("would-act", True), paused
        assert world.health(instances[0]) == "HEALTHY", "nothing changed while paused"
        notices = world.notices()
        assert [n["subject"] for n in notices] == [f"[INFO] [PAUSED] asg {group}: would replace {instances[0]} (stopped unexpectedly)"]
        assert "medic is paused (AZ incident, paused by alice)" in notices[0]["body"], notices[0]["body"]

        world.resume()
        acted = runtime.invoke(load_event(FUNCTION, "asg-instance-stopped.json", instance_id=instances[0]))
    assert acted["status"] == "acted", acted
    assert world.health(instances[0]) == "UNHEALTHY"
