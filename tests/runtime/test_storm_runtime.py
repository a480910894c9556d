"""Runtime tier, issue 14's small storm: 1,000 deliveries (10 % exact duplicates, 1 % of the alarm
transitions in two shapes) about a world of 20 groups, their alarms and 5 databases, from four
emulators per function side by side, through the fault proxy (tests/harness/storm.py; `make
reliability` runs 10,000). Every remediation reached AWS exactly once, the breaker and the
out-of-service floor held in every window, and no event was left failing."""

from storm import SETTINGS, Fleet, Result, check, storm


def test_given_a_storm_of_duplicates_and_shapes_when_sent_side_by_side_then_each_remediation_once_and_no_rule_exceeded():
    figures = storm(1_000)
    print("\nstorm:", figures)
    assert figures["resources"] >= 100, figures
    assert figures["duplicates_sent"] >= 50, figures
    assert figures["violations"] == [], "\n".join(figures["violations"])


def test_given_a_call_twice_and_a_group_past_its_floor_and_breaker_when_checked_then_each_is_named(monkeypatch):
    monkeypatch.setitem(SETTINGS, "account_breaker_max_actions", "4")
    members = [f"i-{n}" for n in range(6)]
    fleet = Fleet(world=None, size=6, members={"g": members}, stopped={"g": members[:3]}, alarms={"g": ("g-cpu-high", "")})
    stream = [("instance-healer", {"detail": {"instance-id": i}}) for i in members[:3]]
    stream.append(("alarm-responder", {"detail": {"alarmName": "g-cpu-high"}}))
    marks = [f"autoscaling SetInstanceHealth {i}" for i in members[:3]]
    seen = {
        "mutations": {marks[0]: 2, marks[1]: 1, marks[2]: 1, "autoscaling SetDesiredCapacity g": 1},
        "log": [[0.0, marks[0]], [0.1, marks[0]], [0.2, marks[1]], [0.3, marks[2]], [0.4, "autoscaling SetDesiredCapacity g"]],
    }
    violations = check(fleet, seen, Result(seconds=1.0), stream)["violations"]
    assert any(v.startswith(f"{marks[0]}: 2 calls") for v in violations), violations
    assert any("over the breaker's 3" in v for v in violations), violations
    assert any(v.startswith("the account: 5 actions within 900 s, over the account breaker's 4") for v in violations), violations
    assert any("4 out of service, over the floor's 2" in v for v in violations), violations
    assert any("'SetInstanceHealth': 4" in v for v in violations), violations
