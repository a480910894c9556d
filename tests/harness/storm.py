"""Duplicate and concurrency storm (issue 14): a world of groups, instances, alarms and databases in
moto; a stream of events about them with exact duplicates and alarm transitions in two shapes;
several Runtime Interface Emulators per function sending them side by side through
tests/harness/fault_proxy.py (no faults: it counts and times every mutating call). What AWS saw is
then checked against what the rules allow: each remediation exactly once, none twice, the breaker
and the out-of-service floor never exceeded in any window.

    python tests/harness/storm.py --events 10000 [--emulators 4] [--json target/reliability/storm.json]

(moto at AWS_ENDPOINT_URL, as scripts/with-moto.sh sets it; `make reliability` runs it.)
The small storm of `make test` is tests/runtime/test_storm_runtime.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_proxy import running  # noqa: E402
from medic_bench import MANAGED, ROOT, Runtime, World, load_event, renamed, set_alarm_time  # noqa: E402

FUNCTIONS = ("instance-healer", "alarm-responder", "rds-rerouter", "notifier")
# The deployment's rules the check reads (template defaults, but for a digest sent at once, so
# that a held-back event's retry finds it without a minute's wait, and an account-wide cap above
# the storm's 60-odd actions: the storm is one account's many groups at once, and checks each
# group's rules; the engine and moto tests take the account cap, which the check holds too).
SETTINGS = {"breaker_max_actions": "3", "breaker_window_seconds": "900", "max_unhealthy_percent": "34",
            "launch_failure_threshold": "3", "digest_delay_seconds": "0", "promote_confirm_seconds": "0",
            "account_breaker_max_actions": "10000"}
ATTEMPTS = 3


@dataclass
class Fleet:
    world: World
    size: int
    members: dict[str, list[str]] = field(default_factory=dict)
    stopped: dict[str, list[str]] = field(default_factory=dict)
    alarms: dict[str, tuple[str, str]] = field(default_factory=dict)
    replicas: dict[str, str] = field(default_factory=dict)

    def resources(self) -> int:
        return len(self.members) + sum(map(len, self.members.values())) + len(self.alarms) + 3 * len(self.replicas)


def build(world: World, groups: int = 20, size: int = 6, stopped: int = 3, databases: int = 5) -> Fleet:
    """`groups` groups of `size` members with `stopped` of each stopped and a CPU-high alarm in
    ALARM; `databases` primaries with two replicas behind a weighted reader set each."""
    fleet = Fleet(world, size)
    for g in range(groups):
        group = f"{world.name}-g{g:02d}"
        fleet.members[group] = world.named_group(group, 1, size + 4, size, MANAGED, grace_seconds=0)
        fleet.stopped[group] = fleet.members[group][:stopped]
        for instance in fleet.stopped[group]:
            world.stop(instance)
        alarm = f"{group}-cpu-high"
        world.metric_alarm(alarm, "AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": group}, "GreaterThanThreshold", 70.0)
        fleet.alarms[group] = (alarm, world.fire(alarm))
    for d in range(databases):
        primary = f"{world.name}-db{d}"
        replica = f"{primary}-r2"
        stack = world.db_stack(primary, [(f"{primary}-r1", "us-east-1b", 2.0), (replica, "us-east-1c", 2.0)],
                               f"{world.name}-db{d}.internal.")
        rds = world.session.client("rds")
        rds.add_tags_to_resource(ResourceName=world.db(replica)["DBInstanceArn"], Tags=[
            {"Key": "medic:zone-id", "Value": stack["zone_id"]}, {"Key": "medic:reader-record", "Value": stack["reader"]}])
        fleet.replicas[replica] = stack["zone_id"]
    return fleet


def events(fleet: Fleet, total: int, seed: int = 14) -> list[tuple[str, dict]]:
    """`total` deliveries: 10 % exact duplicates of an earlier one; of the rest, about half
    instance state changes (stopped members, some for members already running again), a fifth
    alarm transitions (each alarm's one transition, in fresh EventBridge envelopes; 1 % of them
    delivered in the SNS shape too), and launch failures and replica events."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc)
    groups = list(fleet.members)
    out: list[tuple[str, dict]] = []

    def fresh() -> list[tuple[str, dict]]:
        kind = rng.random()
        group = rng.choice(groups)
        if kind < 0.5:
            running_again = rng.random() < 0.1
            instance = rng.choice(fleet.members[group][len(fleet.stopped[group]):] if running_again else fleet.stopped[group])
            return [("instance-healer", load_event("instance-healer", "asg-instance-stopped.json", instance_id=instance))]
        if kind < 0.7:
            alarm, changed_at = fleet.alarms[group]
            names = {"web-prod-cpu-high": alarm, "web-prod": group}
            shaped = renamed(load_event("alarm-responder", "eventbridge-cpu-high.json"), names)
            sent = [("alarm-responder", set_alarm_time(shaped, changed_at))]
            if rng.random() < 0.01:
                sns = renamed(load_event("alarm-responder", "sns-cpu-high.json"), names)
                sent.append(("alarm-responder", set_alarm_time(sns, changed_at)))
            return sent
        if kind < 0.85:
            failure = renamed(load_event("notifier", "launch-unsuccessful.json"), {"web-prod": group})
            failure["time"] = (now + dt.timedelta(seconds=rng.randint(0, 120))).strftime("%Y-%m-%dT%H:%M:%SZ")
            return [("notifier", failure)]
        replica = rng.choice(list(fleet.replicas))
        event = renamed(load_event("rds-rerouter", "replica-creation-failed.json"), {"orders-db-replica-2": replica})
        return [("rds-rerouter", event)]

    while len(out) < total:
        if out and rng.random() < 0.10:
            out.append(rng.choice(out))
        else:
            out.extend(fresh())
    return out[:total]


def failed(answer) -> bool:
    """An error answer (a list is the alarm responder's outcomes)."""
    return isinstance(answer, dict) and "errorType" in answer


@dataclass
class Result:
    answers: list = field(default_factory=list)
    latencies_ms: list = field(default_factory=list)
    seconds: float = 0.0


def send(url: str, fleet: Fleet, stream: list[tuple[str, dict]], emulators: int) -> Result:
    """Every delivery, in stream order, from `emulators` emulator processes per function side by
    side; an answer that is an error is delivered again (up to two retries), as Lambda's
    asynchronous invoke does. Latency is per invocation, as the emulator answers it."""
    env = {**fleet.world.env(**SETTINGS), "AWS_ENDPOINT_URL": url}
    runtimes = {f: [Runtime(f, env) for _ in range(emulators)] for f in FUNCTIONS}
    free = {f: queue.Queue() for f in FUNCTIONS}
    for function, started_ones in runtimes.items():
        for runtime in started_ones:
            free[function].put(runtime)
    lock = threading.Lock()
    result = Result()

    def deliver(item: tuple[str, dict]):
        function, event = item
        runtime = free[function].get()
        try:
            for attempt in range(ATTEMPTS):
                # Lambda waits about a minute before the first retry and two before the second;
                # two and four seconds here: long enough for a duplicate in progress to finish
                # and a call that timed out under load to land before the retry reads AWS.
                time.sleep(2 * attempt)
                started = time.perf_counter()
                answer = runtime.invoke(event)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    result.latencies_ms.append(elapsed)
                if not failed(answer):
                    break
            with lock:
                result.answers.append((function, answer))
        finally:
            free[function].put(runtime)

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(emulators * len(FUNCTIONS)) as pool:
            list(pool.map(deliver, stream))
    finally:
        for rs in runtimes.values():
            for runtime in rs:
                runtime.close()
    result.seconds = time.perf_counter() - started
    return result


def touched(stream: list[tuple[str, dict]]) -> set[str]:
    """The instances, alarms and replicas the deliveries are about."""
    names = set()
    for function, event in stream:
        if function == "instance-healer":
            names.add(event["detail"]["instance-id"])
        elif function == "alarm-responder":
            names.add(event["detail"]["alarmName"] if "detail" in event
                      else json.loads(event["Records"][0]["Sns"]["Message"])["AlarmName"])
        elif function == "rds-rerouter":
            names.add(event["detail"]["SourceIdentifier"].removeprefix("rds:"))
    return names


def check(fleet: Fleet, seen: dict, result: Result, stream: list[tuple[str, dict]]) -> dict:
    """What AWS saw against what the rules allow for what was sent. Returns the figures and
    `violations`."""
    about = touched(stream)
    policy = {k: int(v) for k, v in SETTINGS.items()}
    violations = []
    mutations = seen["mutations"]
    member_of = {i: g for g, members in fleet.members.items() for i in members}
    per_group: dict[str, Counter] = defaultdict(Counter)
    for key, count in mutations.items():
        service, operation, resource = key.split(" ", 2)
        if operation == "Publish":
            continue
        if count != 1:
            violations.append(f"{key}: {count} calls, never more than one")
        group = member_of.get(resource, resource)
        per_group[group][operation] += count
    allowed = max(policy["max_unhealthy_percent"] * fleet.size // 100, 1)
    for group, stopped in fleet.stopped.items():
        expected = {"SetInstanceHealth": min(len(set(stopped) & about), allowed),
                    "SetDesiredCapacity": int(fleet.alarms[group][0] in about)}
        got = {op: per_group[group][op] for op in expected}
        if got != expected:
            violations.append(f"{group}: {got}, expected {expected}")
    for replica, zone in fleet.replicas.items():
        if per_group[zone]["ChangeResourceRecordSets"] != int(replica in about):
            violations.append(f"{replica}: {per_group[zone]['ChangeResourceRecordSets']} reader-set changes, expected {int(replica in about)}")
    # The breaker counts every action per group in any window of its length.
    window = policy["breaker_window_seconds"]
    times = defaultdict(list)
    for at, key in seen["log"]:
        _, operation, resource = key.split(" ", 2)
        if operation in ("SetInstanceHealth", "SetDesiredCapacity"):
            times[member_of.get(resource, resource)].append(at)
    def most_in_a_window(stamps: list[float]) -> int:
        return max((sum(1 for t in stamps if start <= t < start + window) for start in stamps), default=0)

    account = most_in_a_window(sorted(t for stamps in times.values() for t in stamps))
    if account > policy["account_breaker_max_actions"]:
        violations.append(f"the account: {account} actions within {window} s, over the account breaker's"
                          f" {policy['account_breaker_max_actions']}")
    for group, stamps in times.items():
        stamps.sort()
        most = most_in_a_window(stamps)
        if most > policy["breaker_max_actions"]:
            violations.append(f"{group}: {most} actions within {window} s, over the breaker's {policy['breaker_max_actions']}")
        # Each mark is out of service for good in moto (it replaces nothing): every mark counts.
        if per_group[group]["SetInstanceHealth"] > allowed:
            violations.append(f"{group}: {per_group[group]['SetInstanceHealth']} out of service, over the floor's {allowed}")
    errors = [a for _, a in result.answers if failed(a)]
    if errors:
        violations.append(f"{len(errors)} events still failing after {ATTEMPTS} attempts: {errors[:3]}")
    latencies = sorted(result.latencies_ms)
    return {
        "events": len(result.answers),
        "seconds": round(result.seconds, 1),
        "events_per_second": round(len(result.answers) / result.seconds, 1) if result.seconds else None,
        "p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1) if latencies else None,
        "invocations": len(latencies),
        "mutating_calls": sum(c for k, c in mutations.items() if " Publish " not in f"{k} "),
        "notices": sum(c for k, c in mutations.items() if " Publish " in f"{k} "),
        "resources": fleet.resources(),
        "violations": violations,
    }


def storm(total: int, emulators: int = 4, groups: int = 20, databases: int = 5) -> dict:
    with running(os.environ["AWS_ENDPOINT_URL"]) as (url, control):
        fleet = build(World("storm"), groups=groups, databases=databases)
        stream = events(fleet, total)
        control("/_proxy/reset", {})
        result = send(url, fleet, stream, emulators)
        seen = control("/_proxy/calls")
    figures = check(fleet, seen, result, stream)
    figures.update({"emulators_per_function": emulators, "duplicates_sent": total - len({json.dumps(e, sort_keys=True) for _, e in stream})})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--emulators", type=int, default=4)
    parser.add_argument("--json", type=Path, default=ROOT / "target" / "reliability" / "storm.json")
    args = parser.parse_args()
    figures = storm(args.events, args.emulators)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    sys.exit(1 if figures["violations"] else 0)


if __name__ == "__main__":
    main()
