"""Runtime tier: tests/harness/fault_proxy.py, the fault-injecting proxy between the SDK clients
and moto (issue 14's bench). Each fault kind against botocore with its retries off: the error is
the service's own as an AWS SDK parses it, and the proxy's count of applied mutating calls says
whether moto applied the call. Then the Rust SDK in a real bootstrap: a throttled ledger write is
retried by the SDK and the event still handled once. And the proxy's timeline, numbered by
sequential stage as `bench/stages.py` counts them."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.config
import botocore.exceptions
import pytest

from fault_proxy import running, stages
from medic_bench import MANAGED, Runtime, World, load_event


@pytest.fixture()
def proxy():
    with running(os.environ["AWS_ENDPOINT_URL"], slow_seconds=2) as started:
        yield started


def client(service: str, url: str, read_timeout: float = 30):
    return boto3.client(service, endpoint_url=url, config=botocore.config.Config(
        retries={"total_max_attempts": 1}, read_timeout=read_timeout, connect_timeout=5))


@pytest.mark.parametrize("service, operation, call, code", [
    ("dynamodb", "ListTables", lambda c: c.list_tables(), "ThrottlingException"),
    ("autoscaling", "DescribeAutoScalingGroups", lambda c: c.describe_auto_scaling_groups(), "Throttling"),
    ("ec2", "DescribeInstances", lambda c: c.describe_instances(), "RequestLimitExceeded"),
    ("sns", "ListTopics", lambda c: c.list_topics(), "Throttled"),
])
def test_given_a_throttle_rule_when_the_nth_call_matches_then_the_services_own_error_and_the_next_passes(
        proxy, service, operation, call, code):
    url, control = proxy
    control("/_proxy/rules", [{"service": service, "operation": operation, "nth": 2, "fault": "throttle"}])
    aws = client(service, url)
    call(aws)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(aws)
    assert raised.value.response["Error"]["Code"] == code
    call(aws)
    assert control("/_proxy/calls")["faults"] == [[service, operation, "throttle"]]


@pytest.mark.parametrize("fault, applied", [("reset-before", False), ("reset-after", True)])
def test_given_a_reset_when_the_call_is_made_then_the_client_sees_it_closed_and_moto_applied_it_only_after(
        proxy, fault, applied):
    url, control = proxy
    world = World(f"proxy-{fault}")
    _, instances = world.group(2, MANAGED)
    control("/_proxy/rules", [{"service": "autoscaling", "operation": "SetInstanceHealth", "fault": fault}])
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client("autoscaling", url).set_instance_health(InstanceId=instances[0], HealthStatus="Unhealthy")
    assert world.health(instances[0]) == ("UNHEALTHY" if applied else "HEALTHY")
    assert control("/_proxy/calls")["mutations"] == (
        {f"autoscaling SetInstanceHealth {instances[0]}": 1} if applied else {})


@pytest.mark.parametrize("fault", ["slow", "late"])
def test_given_a_slow_answer_or_a_late_call_when_the_client_times_out_then_the_call_lands_once(proxy, fault):
    url, control = proxy
    world = World(f"proxy-{fault}")
    group, _ = world.group(2, MANAGED)
    control("/_proxy/rules", [{"service": "autoscaling", "operation": "SetDesiredCapacity", "fault": fault}])
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client("autoscaling", url, read_timeout=0.5).set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=3)
    deadline = time.time() + 10
    while world.desired(group) != 3 and time.time() < deadline:
        time.sleep(0.1)
    assert world.desired(group) == 3, "applied, then answered late; or held and applied after the client gave up"
    assert control("/_proxy/calls")["mutations"] == {f"autoscaling SetDesiredCapacity {group}": 1}


@pytest.mark.parametrize("status", ["500", "503"])
def test_given_a_server_error_rule_when_matched_then_that_status(proxy, status):
    url, control = proxy
    control("/_proxy/rules", [{"service": "sns", "operation": "ListTopics", "fault": status}])
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client("sns", url).list_topics()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == int(status)
    assert raised.value.response["Error"]["Code"] == {"500": "InternalFailure", "503": "ServiceUnavailable"}[status]


def test_given_the_first_ledger_call_throttled_when_the_notifier_runs_then_the_sdk_retries_and_one_notice(proxy):
    url, control = proxy
    world = World("proxy-notifier")
    control("/_proxy/rules", [{"service": "dynamodb", "operation": "*", "nth": 1, "fault": "throttle"}])
    with Runtime("notifier", {**world.env(), "AWS_ENDPOINT_URL": url}) as runtime:
        response = runtime.invoke(load_event("notifier", "launch-successful.json"))
    assert response["status"] == "alerted", response
    calls = control("/_proxy/calls")
    throttled = [f for f in calls["faults"] if f[2] == "throttle"]
    assert len(throttled) == 1, calls
    assert calls["calls"].count(throttled[0][:2]) >= 2, "the throttled call was made again"
    assert [n["severity"] for n in world.notices()] == ["info"]
    assert calls["mutations"] == {f"sns Publish {world.topic_arn}": 1}


def test_given_calls_sent_together_then_one_after_them_when_numbered_then_two_stages(proxy):
    url, control = proxy
    dynamodb, sns = client("dynamodb", url), client("sns", url)
    # The first call's answer held 2 s, so that the second surely arrives while it is under way.
    control("/_proxy/rules", [{"service": "dynamodb", "operation": "ListTables", "fault": "slow"}])
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(dynamodb.list_tables)
        time.sleep(0.5)
        pool.submit(sns.list_topics).result()
        held.result()
    sns.list_topics()
    timeline = control("/_proxy/calls")["timeline"]
    assert [row[2:] for row in timeline] == [["dynamodb", "ListTables"], ["sns", "ListTopics"], ["sns", "ListTopics"]]
    assert stages(timeline) == [1, 1, 2], timeline


@pytest.mark.parametrize("timeline, expected", [
    ([], []),
    ([[0, 1], [1, 2], [2, 3]], [1, 2, 3]),
    ([[0, 1], [0.1, 1.5], [1.6, 2]], [1, 1, 2]),
    # It may have waited for the first alone (a chain beside a call still under way): counted after it.
    ([[0, 1], [0.1, 3], [1.2, 2], [3.1, 4]], [1, 1, 2, 3]),
])
def test_given_a_timeline_when_numbered_then_each_call_follows_the_latest_answered_before_it(timeline, expected):
    assert stages(timeline) == expected
