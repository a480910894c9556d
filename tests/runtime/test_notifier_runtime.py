"""Runtime tier: the built notifier bootstrap under the AWS Lambda Runtime Interface Emulator,
fed every events/notifier file over the Runtime API, then the same launch failure three more
times as new events: two warnings came before, the third escalates to one critical notice."""

import json
import uuid

from medic_bench import EVENTS, Runtime, World, assert_responses, load_event

FUNCTION = "notifier"

EXPECTED = {
    "health-instance-retirement.json": ("alerted", None),
    "launch-lifecycle-action.json": ("alerted", None),
    "launch-successful.json": ("alerted", None),
    "launch-unsuccessful.json": ("alerted", None),
    "malformed-missing-group.json": ("NonRetryable", "missing field `AutoScalingGroupName`"),
    "terminate-lifecycle-action.json": ("alerted", None),
    "terminate-successful.json": ("alerted", None),
    "terminate-unsuccessful.json": ("alerted", None),
}


def test_every_notifier_event_file_has_an_expectation():
    assert sorted(p.name for p in (EVENTS / FUNCTION).glob("*.json")) == sorted(EXPECTED)


def test_given_each_notifier_file_then_launch_failures_when_invoked_then_one_critical():
    world = World("rt-notifier")
    seen = {}
    with Runtime(FUNCTION, world.env()) as runtime:
        for name in sorted(EXPECTED):
            response = runtime.invoke(load_event(FUNCTION, name))
            seen[name] = (
                (response["errorType"], response["errorMessage"]) if "errorType" in response
                else (response["status"], response.get("label"))
            )
        assert_responses(EXPECTED, seen)
        severities = sorted(n["severity"] for n in world.notices())
        assert severities == ["info"] * 4 + ["warning"] * 3, severities

        escalation = []
        for _ in range(3):
            event = load_event(FUNCTION, "launch-unsuccessful.json")
            event["id"] = str(uuid.uuid4())
            escalation.append(runtime.invoke(event).get("label"))
        emf = [json.loads(line) for line in runtime.log().splitlines() if '"_aws":' in line]
    assert len(emf) == len(EXPECTED) - 1 + 3, "one EMF record per decision (none for the malformed event)"
    assert {r["_aws"]["CloudWatchMetrics"][0]["Namespace"] for r in emf} == {"Medic"}
    assert sum(r["Skipped"] for r in emf) == 1 and all(r["Function"] == "notifier" for r in emf)
    assert escalation == [None, None, "launch-failures-escalated"], escalation
    notices = world.notices()
    assert [n["severity"] for n in notices] == ["warning", "critical"], [n["subject"] for n in notices]
    assert notices[1]["subject"].startswith("[CRITICAL] ASG web-prod cannot launch: We currently do not have sufficient")
