"""Runtime tier: the built alarm-responder bootstrap under the AWS Lambda Runtime Interface
Emulator, fed every events/alarm-responder file over the Runtime API, in order, against moto
seeded with the names the files use (group web-prod, its CPU alarms). The three shapes of one
alarm transition share an idempotency key: the first delivery decides, the other two are
duplicates, whichever shape they come in."""

from medic_bench import EVENTS, assert_responses, MANAGED, Runtime, World, load_event, set_alarm_time

FUNCTION = "alarm-responder"

# In file order. direct-* come first, so they decide; eventbridge-* and sns-* of the same
# transition are duplicates. OK transitions are skipped without touching the ledger.
EXPECTED = {
    "direct-composite.json": ("alerted", None),
    "direct-cpu-high.json": ("acted", None),
    "direct-cpu-low.json": ("skipped", "cooldown"),  # a scale-in right after a scale-out waits
    "direct-malformed-unknown-state.json": ("NonRetryable", "unknown variant `ON_FIRE`"),
    "direct-metric-math.json": ("alerted", None),
    "direct-ok-transition.json": ("skipped", "alarm-not-firing"),
    "direct-status-check-failed.json": ("skipped", "instance-not-found"),
    "direct-unhealthy-hosts.json": ("skipped", "target-not-found"),
    "eventbridge-malformed-missing-state.json": ("NonRetryable", "missing field `state`"),
    "eventbridge-ok-transition.json": ("skipped", "alarm-not-firing"),
    "sns-malformed-message-not-json.json": ("NonRetryable", "is not a CloudWatch alarm notification"),
    "sns-ok-transition.json": ("skipped", "alarm-not-firing"),
}
for case in ("composite", "cpu-high", "cpu-low", "metric-math", "status-check-failed", "unhealthy-hosts"):
    for shape in ("eventbridge", "sns"):
        EXPECTED[f"{shape}-{case}.json"] = ("duplicate", "duplicate")


def test_every_alarm_event_file_has_an_expectation():
    assert sorted(p.name for p in (EVENTS / FUNCTION).glob("*.json")) == sorted(EXPECTED)


def test_given_each_alarm_file_in_order_when_invoked_then_expected_responses_and_aws_state():
    world = World("rt-alarms")
    world.named_group("web-prod", 1, 4, 2, MANAGED)
    world.metric_alarm("web-prod-cpu-high", "AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": "web-prod"},
                       "GreaterThanThreshold", 70.0)
    world.metric_alarm("web-prod-cpu-low", "AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": "web-prod"},
                       "LessThanThreshold", 30.0)
    world.metric_alarm("web-prod-i-0a1b2c3d4e5f67890-status", "AWS/EC2", "StatusCheckFailed",
                       {"InstanceId": "i-0a1b2c3d4e5f67890"}, "GreaterThanOrEqualToThreshold", 1.0)
    world.metric_alarm("web-prod-unhealthy-hosts", "AWS/ApplicationELB", "UnHealthyHostCount",
                       {"TargetGroup": "targetgroup/web-prod/0123456789abcdef"}, "GreaterThanThreshold", 0.0)
    # medic acts only on a live alarm: each seeded alarm fires in moto, and the files' ALARM
    # transitions of it are rebound to that time (all three shapes alike, so they stay one key).
    alarms = {"cpu-high": "web-prod-cpu-high", "cpu-low": "web-prod-cpu-low",
              "status-check-failed": "web-prod-i-0a1b2c3d4e5f67890-status",
              "unhealthy-hosts": "web-prod-unhealthy-hosts"}
    fired = {case: world.fire(alarm) for case, alarm in alarms.items()}
    seen = {}
    with Runtime(FUNCTION, world.env()) as runtime:
        for name in sorted(EXPECTED):
            event = load_event(FUNCTION, name)
            case = name.removesuffix(".json").split("-", 1)[1]
            if case in fired:
                set_alarm_time(event, fired[case])
            response = runtime.invoke(event)
            if isinstance(response, dict) and "errorType" in response:
                seen[name] = (response["errorType"], response["errorMessage"])
            else:
                assert len(response) == 1, (name, response)
                seen[name] = (response[0]["status"], response[0].get("label"))
    assert_responses(EXPECTED, seen)
    assert world.desired("web-prod") == 3, "one scale-out, however many shapes delivered it"
    severities = sorted(n["severity"] for n in world.notices())
    assert severities == ["warning", "warning", "warning"], "scale-out, composite and metric-math notices, once each"
