"""sam-local tier: every function as a team runs it, `sam local invoke` on medic's template
(target/sam-local/template.json, see tests/harness/sam_local.py) in the provided.al2023 image
(AWS's own, or `make local-image`'s stand-in where none can be pulled), against moto seeded with a
world. Each function gets an acting event, one it skips and a malformed one; the answer is read
from SAM's output and the result back from the emulated AWS. One more run goes through
`sam local start-lambda` with boto3's Lambda client, as a team's own integration tests call it.

What this tier catches that the runtime tier cannot: the template's wiring. Handler, CodeUri,
architecture, and every variable a function reads at init, with the template's defaults (dry-run
on, the alarm-name prefix, the promotion's second look) unless a test overrides a parameter."""

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest

from medic_bench import MANAGED, ROOT, World, load_event, set_alarm_time
from sam_local import OUT, container_endpoint, invoke, local_options, write_env

EVENTS_OUT = OUT / "events"


def event_file(event: dict) -> Path:
    EVENTS_OUT.mkdir(parents=True, exist_ok=True)
    path = EVENTS_OUT / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(event))
    return path


def env_for(world: World, **variables: str) -> Path:
    return write_env(OUT / f"env-{world.name}.json", world.table, world.topic_arn, container_endpoint(), **variables)


def status(response) -> tuple[str, str | None]:
    if isinstance(response, list):
        (response,) = response
    if "errorType" in response:
        return response["errorType"], response["errorMessage"]
    return response["status"], response.get("label")


def test_given_the_template_when_built_for_sam_local_then_each_function_runs_its_own_debug_bootstrap():
    template = json.loads((OUT / "template.json").read_text())
    functions = {n: r["Properties"] for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert sorted(functions) == ["AlarmResponderFunction", "InstanceHealerFunction", "NotifierFunction",
                                 "RdsRerouterFunction", "ReconcilerFunction"]
    for properties in functions.values():
        assert (OUT / properties["CodeUri"] / "bootstrap").stat().st_size > 0


def test_given_a_stopped_group_member_when_sam_local_invokes_the_instance_healer_then_replaced():
    world = World("sam-healer")
    group, instances = world.group(2, MANAGED)
    world.stop(instances[0])
    env = env_for(world)
    acted, log = invoke("InstanceHealerFunction", event_file(load_event("instance-healer", "asg-instance-stopped.json",
                                                                        instance_id=instances[0])), env)
    assert status(acted) == ("acted", None), (acted, log)
    assert [world.health(i) for i in instances] == ["UNHEALTHY", "HEALTHY"]
    assert [n["subject"] for n in world.notices()] == [
        f"[WARNING] asg {group}: replaced {instances[0]} (stopped unexpectedly)"]

    skipped, _ = invoke("InstanceHealerFunction", ROOT / "events/instance-healer/instance-running.json", env)
    assert status(skipped) == ("skipped", "state-needs-no-healing")
    malformed, _ = invoke("InstanceHealerFunction", ROOT / "events/instance-healer/malformed-missing-instance-id.json", env)
    assert malformed["errorType"] == "NonRetryable" and "missing field `instance-id`" in malformed["errorMessage"], malformed
    assert world.notices() == []


def test_given_the_templates_dry_run_default_when_sam_local_invokes_then_it_only_says_what_it_would_do():
    world = World("sam-dry")
    group, instances = world.group(2, MANAGED)
    world.stop(instances[0])
    env = env_for(world)
    json_env = json.loads(env.read_text())
    del json_env["Parameters"]["MEDIC_DRY_RUN"]
    env.write_text(json.dumps(json_env))
    response, log = invoke("InstanceHealerFunction", event_file(load_event("instance-healer", "asg-instance-stopped.json",
                                                                           instance_id=instances[0])), env)
    assert status(response)[0] == "would-act", (response, log)
    assert world.health(instances[0]) == "HEALTHY"


def test_given_a_cpu_alarm_when_sam_local_invokes_the_alarm_responder_then_the_group_scales_out():
    world = World("sam-alarm")
    group = f"{world.name}-web"
    world.named_group(group, 1, 4, 2, MANAGED)
    alarm = f"{group}-cpu-high"
    world.metric_alarm(alarm, "AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": group}, "GreaterThanThreshold", 70.0)
    event = load_event("alarm-responder", "direct-cpu-high.json")
    event["alarmData"]["alarmName"] = alarm
    event["alarmArn"] = event["alarmArn"].rsplit(":", 1)[0] + f":{alarm}"
    event["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {"AutoScalingGroupName": group}
    set_alarm_time(event, world.fire(alarm))
    env = env_for(world)

    foreign, log = invoke("AlarmResponderFunction", event_file(event), env)
    assert status(foreign) == ("skipped", "alarm-outside-prefix"), (foreign, log)
    acted, log = invoke("AlarmResponderFunction", event_file(event), env, parameters={"AlarmNamePrefix": world.name})
    assert status(acted) == ("acted", None), (acted, log)
    assert world.desired(group) == 3
    skipped, _ = invoke("AlarmResponderFunction", ROOT / "events/alarm-responder/direct-ok-transition.json", env,
                        parameters={"AlarmNamePrefix": "web-prod"})
    assert status(skipped) == ("skipped", "alarm-not-firing")
    malformed, _ = invoke("AlarmResponderFunction", ROOT / "events/alarm-responder/direct-malformed-unknown-state.json", env)
    assert malformed["errorType"] == "NonRetryable" and "unknown variant `ON_FIRE`" in malformed["errorMessage"], malformed
    assert [n["severity"] for n in world.notices()] == ["warning"]


def test_given_a_failed_primary_when_sam_local_invokes_the_rds_rerouter_then_its_replica_is_promoted():
    world = World("sam-rds")
    stack = world.db_stack("orders-db", [("orders-db-replica-1", "us-east-1b", 2.0)], f"{world.name}.internal.")
    world.fail_db("orders-db")
    env = env_for(world)
    acted, log = invoke("RdsRerouterFunction", ROOT / "events/rds-rerouter/instance-failed.json", env,
                        parameters={"PromoteConfirmSeconds": "0"})
    assert status(acted) == ("acted", None), (acted, log)
    assert "ReadReplicaSourceDBInstanceIdentifier" not in world.db("orders-db-replica-1")
    writer = world.record(stack["zone_id"], stack["writer"])
    assert writer["ResourceRecords"][0]["Value"] == world.db("orders-db-replica-1")["Endpoint"]["Address"]

    skipped, _ = invoke("RdsRerouterFunction", ROOT / "events/rds-rerouter/instance-unknown-event-id.json", env)
    assert status(skipped) == ("skipped", "unknown-db-event")
    malformed, _ = invoke("RdsRerouterFunction", ROOT / "events/rds-rerouter/malformed-missing-source-arn.json", env)
    assert malformed["errorType"] == "NonRetryable" and "missing field `SourceArn`" in malformed["errorMessage"], malformed
    assert any("promoted orders-db-replica-1 to writer" in n["subject"] for n in world.notices())


def test_given_a_launch_failure_when_sam_local_invokes_the_notifier_then_one_warning_and_the_retry_is_a_duplicate():
    world = World("sam-notifier")
    env = env_for(world)
    event = event_file(load_event("notifier", "launch-unsuccessful.json"))
    alerted, log = invoke("NotifierFunction", event, env)
    assert status(alerted) == ("alerted", None), (alerted, log)
    again, _ = invoke("NotifierFunction", event, env)
    assert status(again) == ("duplicate", "duplicate")
    malformed, _ = invoke("NotifierFunction", ROOT / "events/notifier/malformed-missing-group.json", env)
    assert malformed["errorType"] == "NonRetryable" and "missing field `AutoScalingGroupName`" in malformed["errorMessage"]
    assert [n["severity"] for n in world.notices()] == ["warning"]


def test_given_an_impaired_member_when_sam_local_invokes_the_reconciler_then_replaced_and_a_second_run_finds_it_done():
    world = World("sam-reconcile", own_account=True)
    credentials = {"AWS_ACCESS_KEY_ID": world.access_key, "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
    dlq = world.sqs.create_queue(QueueName=f"{world.name}-dlq")["QueueUrl"]
    env = env_for(world, MEDIC_DLQ_URL=dlq.replace(os.environ["AWS_ENDPOINT_URL"], container_endpoint()))
    scheduled = ROOT / "events/reconciler/scheduled.json"

    quiet, log = invoke("ReconcilerFunction", scheduled, env, credentials=credentials)
    assert quiet == {"checked": 0, "waiting": 0, "healed": [], "findings": [], "deferred": 0, "errors": []}, (quiet, log)
    _, instances = world.group(3, MANAGED)
    world.impair(instances[2], "instance")
    report, log = invoke("ReconcilerFunction", scheduled, env, credentials=credentials)
    assert [f["status"] for f in report["findings"]] == ["acted"], (report, log)
    assert world.health(instances[2]) == "UNHEALTHY"
    malformed, _ = invoke("ReconcilerFunction", ROOT / "events/instance-healer/asg-instance-stopped.json", env,
                          credentials=credentials)
    assert malformed["errorType"] == "NonRetryable" and "unsupported event: source `aws.ec2`" in malformed["errorMessage"]


@pytest.fixture()
def start_lambda():
    """`sam local start-lambda` on a free port, stopped (with its containers) when the test ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    processes = []

    def start(env_file: Path) -> str:
        log = open(OUT / f"start-lambda-{port}.log", "w")
        process = subprocess.Popen(["sam", "local", "start-lambda", "--port", str(port), *local_options(env_file)],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
                                   env=dict(os.environ, SAM_CLI_TELEMETRY="0"))
        processes.append(process)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                assert process.poll() is None, (OUT / f"start-lambda-{port}.log").read_text()
                time.sleep(0.2)
        raise AssertionError("sam local start-lambda did not listen within 60 s")

    yield start
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_given_start_lambda_when_a_team_invokes_through_boto3_then_the_instance_is_replaced(start_lambda):
    world = World("sam-start")
    group, instances = world.group(2, MANAGED)
    world.stop(instances[0])
    endpoint = start_lambda(env_for(world))
    client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1")
    event = load_event("instance-healer", "asg-instance-stopped.json", instance_id=instances[0])
    answer = client.invoke(FunctionName="InstanceHealerFunction", Payload=json.dumps(event))
    response = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, response
    assert status(response) == ("acted", None), response
    assert world.health(instances[0]) == "UNHEALTHY"
    malformed = client.invoke(FunctionName="InstanceHealerFunction",
                              Payload=(ROOT / "events/instance-healer/malformed-wrong-source.json").read_bytes())
    assert malformed.get("FunctionError") == "Unhandled"
    assert "unsupported event: source `aws.s3`" in json.loads(malformed["Payload"].read())["errorMessage"]
