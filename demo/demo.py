"""`make demo`: medic heals a small web tier on emulated AWS (moto), through the real
instance-healer bootstrap under the AWS Lambda Runtime Interface Emulator. Every step is checked
against the emulated AWS; the exit code is 0 only if every check held."""

import json
import os
import sys
import textwrap
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "harness"))

from medic_bench import EVENTS, MANAGED, LambdaRouter, Runtime, World, from_account, load_event, medic_cli  # noqa: E402

FUNCTION = "instance-healer"
RESPONDER = "alarm-responder"
REROUTER = "rds-rerouter"
RECONCILER = "reconciler"
COLOR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
STARTED = time.monotonic()
failures = []


def paint(code: str, text: str) -> str:
    return f"\033[{code}m{text}\033[0m" if COLOR else text


def clock() -> str:
    return f"{time.monotonic() - STARTED:6.2f}s"


def step(number: int, total: int, title: str) -> None:
    print(f"\n{paint('1', f'[{number}/{total}] {title}')}", flush=True)


def line(label: str, text: str) -> None:
    print(f"  {clock()}  {label:<9} {text}", flush=True)


def check(description: str, ok: bool, detail: str = "") -> None:
    mark = paint("32", "ok  ") if ok else paint("31", "FAIL")
    print(f"  {clock()}  {mark}      {description}{' - ' + detail if detail and not ok else ''}", flush=True)
    if not ok:
        failures.append(description)


def show_notice(notice: dict) -> None:
    line("notice", paint("1", notice["subject"]))
    attributes = ", ".join(f"{k}={v}" for k, v in notice["attributes"].items())
    line("", f"attributes: {attributes}")
    for text in notice["body"].split("\n\nRecord:")[0].splitlines():
        for wrapped in textwrap.wrap(text, 96) or [""]:
            line("", wrapped)


def deliver(runtime: Runtime, event: dict) -> dict:
    line("event", f"EventBridge -> {event['detail-type']}: {event['detail']['instance-id']} {event['detail']['state']} (id {event['id'][:8]}...)")
    return decide(runtime, event)


def decide(runtime: Runtime, event: dict) -> dict:
    """Invokes the function with `event` and prints its decision and how long it took."""
    started = time.monotonic()
    response = runtime.invoke(event)
    took = (time.monotonic() - started) * 1000
    if "errorType" in response:
        line("decision", f"{response['errorType']} error: {response.get('errorMessage')}  ({took:.0f} ms)")
        return response
    label = f" [{response['label']}]" if response.get("label") else ""
    line("decision", f"{response.get('status')}{label}: {response.get('reason')}  ({took:.0f} ms)")
    return response


def safety_scenarios(world: World, first_step: int, total: int) -> None:
    """Operator intent (a person's stop is left alone) and an AZ-style burst (the percentage floor
    holds, and one digest names every instance left alone)."""
    # Lambda retries a held-back event after a minute; here the digest is due after 2 s and the
    # demo delivers the held events again itself, as Lambda's retry would.
    healer = Runtime(FUNCTION, world.env(dry_run="false", digest_delay_seconds="2"))
    try:
        step(first_step, total, "A person stops a standalone instance on purpose")
        instance = world.standalone(MANAGED)
        world.stop(instance)
        line("setup", f"standalone {instance} (medic:managed=true) stopped with StopInstances: StateReason Client.UserInitiatedShutdown")
        response = deliver(healer, load_event(FUNCTION, "standalone-instance-stopped.json", instance_id=instance))
        check("medic left it alone and said why", (response.get("status"), response.get("severity")) == ("alerted", "info"), json.dumps(response))
        check(f"{instance} is still stopped", world.ec2_state(instance) == "stopped")
        notices = world.notices()
        for notice in notices:
            show_notice(notice)
        check("one info notice: stopped by a user: left alone", [n["subject"] for n in notices] == [f"[INFO] ec2 {instance}: stopped by a user: left alone"])

        step(first_step + 1, total, "An AZ-style burst: 5 of a group's 6 instances stop at once")
        # Refusals are counted in epoch-aligned windows (MEDIC_BREAKER_WINDOW_SECONDS, 900 s): a
        # burst that straddles a boundary rightly gets a second critical notice in the new window.
        # The story wants one window, so it starts after a boundary that is less than 20 s away.
        to_boundary = 900 - int(time.time()) % 900
        if to_boundary < 20:
            line("wait", f"{to_boundary} s to the next breaker window; the burst starts in the new one")
            time.sleep(to_boundary + 1)
        group = f"{world.name}-az"
        members = world.named_group(group, 1, 8, 6, MANAGED, grace_seconds=0)
        line("created", f"Auto Scaling group {group}: 6 instances; MEDIC_MAX_UNHEALTHY_PERCENT 34 lets 2 be out at once")
        events = {}
        for member in members[:5]:
            world.stop(member)
            events[member] = load_event(FUNCTION, "asg-instance-stopped.json", instance_id=member)
        held = []
        statuses = []
        for member, event in events.items():
            response = deliver(healer, event)
            if response.get("errorType") == "Retryable":
                held.append(member)
            statuses.append(response.get("status") or response.get("errorType"))
        check("2 replaced, the 3rd refused with a critical notice, 2 held for the digest",
              statuses == ["acted", "acted", "alerted", "Retryable", "Retryable"], str(statuses))
        for notice in world.notices():
            show_notice(notice)
        time.sleep(2.5)
        line("retry", "Lambda delivers the held events again (here after 2 s; deployed, after a minute)")
        for member in held:
            deliver(healer, events[member])
        digest = world.notices()
        for notice in digest:
            show_notice(notice)
        check("one digest names every instance left alone",
              len(digest) == 1 and all(f"- {m}: would replace {m}" in digest[0]["body"] for m in held), json.dumps([n["subject"] for n in digest]))
        health = [world.health(m) for m in members]
        check("exactly 2 of the 6 are UNHEALTHY (being replaced); the floor held", health.count("UNHEALTHY") == 2, str(health))
    finally:
        healer.close()


def alarm_event(shape: str, case: str, alarm: str, arn: str, group: str, changed_at: str) -> dict:
    """An events/alarm-responder file rebound to this world's alarm and group."""
    event = json.loads((EVENTS / RESPONDER / f"{shape}-{case}.json").read_text())
    dims = {"AutoScalingGroupName": group}
    if shape == "eventbridge":
        event["resources"] = [arn]
        detail = event["detail"]
    elif shape == "direct":
        event["alarmArn"] = arn
        detail = event["alarmData"]
    else:
        message = json.loads(event["Records"][0]["Sns"]["Message"])
        message.update(AlarmName=alarm, AlarmArn=arn, StateChangeTime=changed_at)
        message["Trigger"]["Dimensions"] = [{"name": k, "value": v} for k, v in dims.items()]
        event["Records"][0]["Sns"]["Message"] = json.dumps(message)
        return event
    detail["alarmName"] = alarm
    detail["state"]["timestamp"] = changed_at
    detail["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = dims
    return event


def deliver_alarm(runtime: Runtime, shape: str, event: dict, alarm: str) -> dict:
    line("event", f"{shape} -> CloudWatch alarm {alarm} went OK -> ALARM")
    started = time.monotonic()
    response = runtime.invoke(event)
    took = (time.monotonic() - started) * 1000
    if isinstance(response, dict):
        line("decision", f"error {response}  ({took:.0f} ms)")
        return response
    outcome = response[0]
    label = f" [{outcome['label']}]" if outcome.get("label") else ""
    line("decision", f"{outcome.get('status')}{label}: {outcome.get('reason')}  ({took:.0f} ms)")
    return outcome


def alarm_scenarios(world: World, first_step: int, total: int) -> None:
    group, batch = f"{world.name}-app", f"{world.name}-batch"
    world.named_group(group, 1, 4, 2, MANAGED)
    world.named_group(batch, 1, 4, 3, MANAGED)
    high_name, low_name = f"{group}-cpu-high", f"{batch}-cpu-low"
    high = world.metric_alarm(high_name, "AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": group}, "GreaterThanThreshold", 70.0)
    low = world.metric_alarm(low_name, "AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": batch}, "LessThanThreshold", 30.0)
    line("created", f"Auto Scaling groups {group} (min 1, max 4, desired 2) with alarm {high_name} (> 70 %), {batch} (min 1, max 4, desired 3) with alarm {low_name} (< 30 %)")
    # Cooldowns off for this responder so the demo need not wait ten minutes between scale-ins.
    responder = Runtime(RESPONDER, world.env(scale_in_cooldown_seconds="0", scale_out_cooldown_seconds="0"))
    try:
        step(first_step, total, "CPU high: the alarm fires (EventBridge shape)")
        fired = world.fire(high_name)
        line("verified", f"DescribeAlarms: {high_name} is ALARM since {fired} (medic acts only on a live alarm)")
        outcome = deliver_alarm(responder, "EventBridge", alarm_event("eventbridge", "cpu-high", high_name, high, group, fired), high_name)
        check("medic scaled out", outcome.get("status") == "acted", json.dumps(outcome))
        line("verified", f"DescribeAutoScalingGroups: desired capacity {world.desired(group)}")
        check(f"{group} desired capacity is 3 (clamp(2 + 1, 1, 4))", world.desired(group) == 3)
        for notice in world.notices():
            show_notice(notice)

        step(first_step + 1, total, "The same alarm transition arrives again, SNS-wrapped (wired two ways)")
        outcome = deliver_alarm(responder, "SNS", alarm_event("sns", "cpu-high", high_name, high, group, fired), high_name)
        check("medic recognised the duplicate across shapes", outcome.get("status") == "duplicate", json.dumps(outcome))
        check(f"{group} desired capacity is still 3", world.desired(group) == 3)
        check("no second notice", world.notices() == [])

        step(first_step + 2, total, f"CPU low on {batch}, three times (direct alarm action shape): scale in, but never below min")
        desired = []
        for _ in range(3):
            changed_at = world.fire(low_name)
            outcome = deliver_alarm(responder, "direct", alarm_event("direct", "cpu-low", low_name, low, batch, changed_at), low_name)
            desired.append(world.desired(batch))
            line("verified", f"desired capacity {desired[-1]}")
        check("desired went 3 -> 2 -> 1 and stopped at min 1", desired == [2, 1, 1])
        check("the third one was skipped at min, with no call", outcome.get("label") == "at-min-capacity", json.dumps(outcome))
    finally:
        responder.close()


def rds_event(file: str, source_id: str, date: str) -> dict:
    """An events/rds-rerouter file rebound to this world's DB instance or cluster."""
    event = json.loads((EVENTS / REROUTER / file).read_text())
    kind = "cluster" if event["detail"]["SourceType"] == "CLUSTER" else "db"
    arn = f"arn:aws:rds:us-east-1:123456789012:{kind}:{source_id}"
    event["id"] = f"demo-{source_id}-{file}-{date}"
    event["resources"] = [arn]
    event["detail"].update(SourceArn=arn, SourceIdentifier=f"rds:{source_id}", Date=date)
    return event


def deliver_rds(runtime: Runtime, event: dict) -> dict:
    detail = event["detail"]
    line("event", f"EventBridge -> {event['detail-type']}: {detail['SourceIdentifier']} {detail['EventID']} ({detail['Message'][:60]}...)")
    return decide(runtime, event)


def rds_scenarios(world: World, first_step: int, total: int) -> None:
    primary = f"{world.name}-db"
    replicas = [(f"{primary}-r1", "us-east-1b", 12.0), (f"{primary}-r2", "us-east-1c", 3.0), (f"{primary}-r3", "us-east-1b", 45.0)]
    stack = world.db_stack(primary, replicas, f"{world.name}.internal.")
    r1, r2, r3 = (r[0] for r in replicas)
    line("created", f"RDS MySQL {primary} (us-east-1a, no Multi-AZ) with replicas {r1} (lag 12 s), {r2} (lag 3 s), {r3} (lag 45 s)")
    line("created", f"private zone: {stack['writer']} -> {primary}; weighted {stack['reader']} -> the three replicas")
    cluster = f"{world.name}-aurora"
    world.aurora(cluster, [(f"{cluster}-1", "us-east-1a"), (f"{cluster}-2", "us-east-1b"), (f"{cluster}-3", "us-east-1c")])
    world.put_lag(f"{cluster}-2", "AuroraReplicaLag", 900.0)
    world.put_lag(f"{cluster}-3", "AuroraReplicaLag", 20.0)
    line("created", f"Aurora cluster {cluster}: writer {cluster}-1, readers {cluster}-2 (lag 900 ms), {cluster}-3 (lag 20 ms)")
    world.notices()  # earlier scenarios' notices were shown there
    # The confirming second read of the failed primary follows the first at once here; deployed,
    # it waits MEDIC_PROMOTE_CONFIRM_SECONDS (60) and Lambda's retry takes it.
    rerouter = Runtime(REROUTER, world.env(promote_confirm_seconds="0"))
    try:
        step(first_step, total, f"{primary} is lost (RDS-EVENT-0031, no standby): promote the best replica, move the writer record")
        world.fail_db(primary)
        outcome = deliver_rds(rerouter, rds_event("instance-failed.json", primary, "2026-11-21T09:40:00.000Z"))
        check("medic promoted and rerouted", outcome.get("status") == "acted", json.dumps(outcome))
        check(f"{r2} (lowest lag, 3 s) was promoted, keeping the primary's 7 days of backups", world.db(r2)["BackupRetentionPeriod"] == 7)
        check(f"{r1} and {r3} were left alone", [world.db(r)["BackupRetentionPeriod"] for r in (r1, r3)] == [0, 0])
        writer = world.record(stack["zone_id"], stack["writer"])["ResourceRecords"][0]["Value"]
        line("verified", f"ListResourceRecordSets: {stack['writer']} -> {writer}")
        check(f"the writer record points at {r2}", writer == world.db(r2)["Endpoint"]["Address"])
        notices = world.notices()
        for notice in notices:
            show_notice(notice)
        check("one critical notice states the data-loss window", [n["severity"] for n in notices] == ["critical"] and "last 3 s" in notices[0]["body"])

        step(first_step + 1, total, "RDS reports the lost primary again an hour later (RDS-EVENT-0034)")
        outcome = deliver_rds(rerouter, rds_event("instance-failover-not-attempted.json", primary, "2026-11-21T10:40:00.000Z"))
        check("medic never promotes twice within 24 h", outcome.get("label") == "already-promoted", json.dumps(outcome))
        check(f"{r1} is still a replica without backups", world.db(r1)["BackupRetentionPeriod"] == 0)

        step(first_step + 2, total, f"Replication breaks on {r1} (RDS-EVENT-0045), then resumes (RDS-EVENT-0046)")
        outcome = deliver_rds(rerouter, rds_event("replica-replication-error.json", r1, "2026-11-21T09:50:00.000Z"))
        weight = world.record(stack["zone_id"], stack["reader"], r1)["Weight"]
        line("verified", f"{stack['reader']} SetIdentifier={r1}: weight {weight}")
        check(f"{r1} left the reader set (weight 0) and was rebooted", outcome.get("status") == "acted" and weight == 0, json.dumps(outcome))
        for notice in world.notices():
            show_notice(notice)
        outcome = deliver_rds(rerouter, rds_event("replica-replication-resumed.json", r1, "2026-11-21T09:58:00.000Z"))
        weight = world.record(stack["zone_id"], stack["reader"], r1)["Weight"]
        line("verified", f"{stack['reader']} SetIdentifier={r1}: weight {weight}")
        check(f"{r1} is back in the reader set (weight 100)", outcome.get("status") == "acted" and weight == 100, json.dumps(outcome))

        step(first_step + 3, total, f"Aurora could not fail {cluster} over (RDS-EVENT-0069): medic retries once")
        outcome = deliver_rds(rerouter, rds_event("cluster-failover-failed.json", cluster, "2026-11-21T10:00:00.000Z"))
        writer = world.cluster_writer(cluster)
        line("verified", f"DescribeDBClusters: writer {writer}")
        check(f"the writer is now {cluster}-3 (available, lowest lag)", outcome.get("status") == "acted" and writer == f"{cluster}-3", json.dumps(outcome))
        outcome = deliver_rds(rerouter, rds_event("cluster-failover-failed.json", cluster, "2026-11-21T10:05:00.000Z"))
        check("a second failure gets a critical notice, not a second retry", outcome.get("status") == "alerted" and world.cluster_writer(cluster) == writer, json.dumps(outcome))
        for notice in world.notices():
            show_notice(notice)
    finally:
        rerouter.close()


def reconcile(runtime: Runtime) -> dict:
    """One reconciler run (EventBridge's schedule), and what it found and did."""
    started = time.monotonic()
    report = runtime.invoke(load_event(RECONCILER, "scheduled.json"))
    took = (time.monotonic() - started) * 1000
    if "errorType" in report:
        line("run", f"{report['errorType']} error: {report.get('errorMessage')}  ({took:.0f} ms)")
        return {"findings": [], "healed": []}
    line("run", f"checked {report['checked']} open remediation(s), {len(report['healed'])} healed, "
                f"{len(report['findings'])} finding(s)  ({took:.0f} ms)")
    for healed in report["healed"]:
        line("healed", f"{healed['function']} {healed['action']} of {healed['resource']}: TimeToHeal {healed['seconds']} s")
    for outcome in report["findings"]:
        label = f" [{outcome['label']}]" if outcome.get("label") else ""
        line("finding", f"{outcome['status']}{label} {outcome['resource']}: {outcome['reason']}")
    return report


def closed_loop_scenarios(first_step: int, total: int) -> None:
    """The reconciler: what an event missed, a remediation that healed (TimeToHeal) and one that
    could not, a dead letter redriven with `medic redrive`, and `medic status` at the end. Its own
    account: the sweep lists a whole account."""
    world = World("demo-loop", own_account=True)
    group, instances = world.group(3, MANAGED)
    dlq = world.sqs.create_queue(QueueName=f"{world.name}-dlq")["QueueUrl"]
    # A margin of 0 s (the default is 600 s, plus the group's grace period) lets the demo see a
    # replacement miss its deadline at once.
    settings = dict(dry_run="false", launch_margin_seconds="0", dlq_url=dlq, stack_name=world.name)
    reconciler = Runtime(RECONCILER, world.env(**settings))
    healer = Runtime(FUNCTION, world.env(dry_run="false"))
    try:
        impaired, lost, doomed = instances
        step(first_step, total, f"EC2 reports {impaired}'s status check impaired; the alarm's event never reaches medic")
        world.impair(impaired, "system")
        line("setup", f"{group}: {', '.join(instances)} (a new web tier in its own account)")
        report = reconcile(reconciler)
        check("the sweep found it and replaced it through Auto Scaling",
              [f["status"] for f in report["findings"]] == ["acted"] and world.health(impaired) == "UNHEALTHY")
        for notice in world.notices():
            show_notice(notice)
        world.asg.terminate_instance_in_auto_scaling_group(InstanceId=impaired, ShouldDecrementDesiredCapacity=False)
        line("setup", f"Auto Scaling terminates {impaired} and launches its replacement (moto does not on its own)")
        report = reconcile(reconciler)
        check("the next run finds the group back to desired: healed, TimeToHeal recorded",
              [h["action"] for h in report["healed"]] == ["replace"])
        emf = [l for l in reconciler.log().splitlines() if '"TimeToHeal"' in l and l.startswith("{")]
        if emf:
            line("metric", emf[-1][:150] + ("..." if len(emf[-1]) > 150 else ""))
        check("an EMF TimeToHeal metric line is in the function's log", bool(emf))

        step(first_step + 1, total, f"A stop event for {lost} failed every retry and sits in the dead-letter queue")
        world.stop(lost)
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
        world.sqs.send_message(
            QueueUrl=dlq, MessageBody=json.dumps(load_event(FUNCTION, "asg-instance-stopped.json", instance_id=lost)),
            MessageAttributes={"TARGET_ARN": {"DataType": "String", "StringValue": arn}})
        report = reconcile(reconciler)
        notices = world.notices()
        for notice in notices:
            show_notice(notice)
        check("the reconciler reports it, with the redrive command",
              any("dead-letter queue" in n["subject"] and "medic redrive" in n["body"] for n in notices))
        router = LambdaRouter({FUNCTION: healer})
        try:
            env = {**world.env(), "MEDIC_DLQ_URL": dlq, "AWS_ENDPOINT_URL_LAMBDA": router.url}
            for args in (["redrive", "--dry-run"], ["redrive"]):
                done = medic_cli(*args, env=env)
                line("$", "medic " + " ".join(args))
                for text in (done.stdout + done.stderr).splitlines():
                    for wrapped in textwrap.wrap(text, 96) or [""]:
                        line("", wrapped)
        finally:
            router.close()
        check(f"the healer handled it: {lost} is UNHEALTHY", world.health(lost) == "UNHEALTHY")
        depth = world.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        check("the dead-letter queue is empty", depth["Attributes"]["ApproximateNumberOfMessages"] == "0")
        world.notices()
        world.asg.terminate_instance_in_auto_scaling_group(InstanceId=lost, ShouldDecrementDesiredCapacity=False)
        line("setup", f"Auto Scaling replaces {lost}")
        report = reconcile(reconciler)
        check("the redriven replacement healed too", [h["action"] for h in report["healed"]] == ["replace"])

        step(first_step + 2, total, f"{doomed} stops; medic replaces it, but the group cannot launch")
        world.stop(doomed)
        deliver(healer, load_event(FUNCTION, "asg-instance-stopped.json", instance_id=doomed))
        world.notices()
        time.sleep(1.1)
        report = reconcile(reconciler)
        notices = world.notices()
        for notice in notices:
            show_notice(notice)
        check("one critical escalation: the replacement did not heal",
              [n["severity"] for n in notices] == ["critical"] and "did not heal" in notices[0]["subject"])
        check(f"no second attempt: {doomed} is still the Unhealthy member", world.health(doomed) == "UNHEALTHY")
        report = reconcile(reconciler)
        check("the next run escalates nothing again", world.notices() == [])

        step(first_step + 3, total, "medic status")
        status = medic_cli("status", env={**world.env()})
        line("$", "medic status")
        for text in status.stdout.splitlines():
            line("", text)
        check("medic status ran", status.returncode == 0 and "Open remediations" in status.stdout, status.stderr)
    finally:
        reconciler.close()
        healer.close()


def organisation_scenarios(first_step: int, total: int) -> None:
    """Central mode: one medic for two teams' accounts whose groups share a name; an event from an
    account medic may not act in is skipped with one warning notice."""
    home = World("demo-org")
    team_a, team_b, stranger = "210987654321", "310987654321", "410987654321"
    name = f"shop-{uuid.uuid4().hex[:6]}"
    in_a, in_b = World("demo-org", member=team_a, name=name), World("demo-org", member=team_b, name=name)
    group, members_a = in_a.group(3, MANAGED)
    _, members_b = in_b.group(3, MANAGED)
    central = Runtime(FUNCTION, home.env(dry_run="false", mode="central", home_account="123456789012",
                                         accounts=f"{team_a},{team_b}"))
    try:
        step(first_step, total, f"One medic for two accounts: team A's {members_a[0]} stops")
        line("setup", f"account {team_a} and account {team_b} each run a group named {group}; medic (account 123456789012) runs in central mode")
        in_a.stop(members_a[0])
        response = deliver(central, from_account(load_event(FUNCTION, "asg-instance-stopped.json", instance_id=members_a[0]), team_a))
        check("medic assumed its member role in account A and acted there", (response.get("status"), response.get("account")) == ("acted", team_a), json.dumps(response))
        check(f"{members_a[0]} is UNHEALTHY in account A", in_a.health(members_a[0]) == "UNHEALTHY")
        check(f"account B's {group} is untouched", [in_b.health(m) for m in members_b] == ["HEALTHY"] * 3)
        notices = home.notices()
        for notice in notices:
            show_notice(notice)
        check("the notice names the account", [n["attributes"].get("account") for n in notices] == [team_a])

        step(first_step + 1, total, f"Events arrive from account {stranger}, which medic may not act in")
        for _ in range(2):
            response = deliver(central, from_account(load_event(FUNCTION, "asg-instance-stopped.json", instance_id="i-0123456789abcdef0"), stranger))
            check("skipped, with the reason (not a retry)", response.get("label") == "account-refused", json.dumps(response))
        notices = home.notices()
        for notice in notices:
            show_notice(notice)
        check("one warning notice for the account, not one per event", [n["severity"] for n in notices] == ["warning"])
    finally:
        central.close()


def main() -> int:
    total = 21
    print(paint("1", "medic demo: self-healing on emulated AWS"))
    print(f"  emulated AWS (moto server): {os.environ['AWS_ENDPOINT_URL']}")

    step(1, total, "Build a web tier in the emulated AWS")
    world = World("demo")
    group, instances = world.group(3, MANAGED)
    line("created", f"Auto Scaling group {group}: {', '.join(instances)}")
    line("created", f"ledger table {world.table}; topic {world.topic_arn.split(':')[-1]} -> SQS inbox")
    check("all 3 instances are HEALTHY and tagged medic:managed=true", [world.health(i) for i in instances] == ["HEALTHY"] * 3)

    step(2, total, "Start instance-healer: the real bootstrap under the Lambda Runtime Interface Emulator")
    healer = Runtime(FUNCTION, world.env(dry_run="false"))
    dry_healer = Runtime(FUNCTION, world.env(dry_run="true"))
    try:
        victim, bystander = instances[1], instances[2]

        step(3, total, f"Something stops {victim}")
        world.stop(victim)
        check(f"EC2 reports {victim} stopped", world.ec2_state(victim) == "stopped")

        step(4, total, "EventBridge delivers the state change; medic heals")
        event = load_event(FUNCTION, "asg-instance-stopped.json", instance_id=victim)
        response = deliver(healer, event)
        init = [l for l in healer.log().splitlines() if "INIT REPORT" in l]
        if init:
            line("runtime", init[0].split("(rapid) ")[-1])
        check("medic acted", response.get("status") == "acted", json.dumps(response))
        line("action", f"autoscaling:SetInstanceHealth({victim}, Unhealthy, ShouldRespectGracePeriod=true)")
        health = {i: world.health(i) for i in instances}
        line("verified", "DescribeAutoScalingInstances: " + ", ".join(f"{i}={h}" for i, h in health.items()))
        check(f"{victim} is UNHEALTHY, so Auto Scaling replaces it", health[victim] == "UNHEALTHY")
        check("the other instances are untouched", [health[i] for i in instances if i != victim] == ["HEALTHY"] * 2)
        notices = world.notices()
        for notice in notices:
            show_notice(notice)
        check("one warning notice reached the SQS inbox", [n["severity"] for n in notices] == ["warning"])
        item = world.ledger_item(response.get("event", ""))
        check("the ledger records the event as COMPLETED", bool(item) and item["status"]["S"] == "COMPLETED")

        step(5, total, "EventBridge delivers the same event again (it delivers at least once)")
        world.set_healthy(victim)
        line("setup", f"{victim} set back to Healthy, so a second SetInstanceHealth would show")
        response = deliver(healer, event)
        check("medic recognised the duplicate", response.get("status") == "duplicate", json.dumps(response))
        check(f"{victim} was not touched again (still HEALTHY)", world.health(victim) == "HEALTHY")
        check("no second notice", world.notices() == [])

        step(6, total, f"Dry-run (MEDIC_DRY_RUN=true): {bystander} stops")
        world.stop(bystander)
        response = deliver(dry_healer, load_event(FUNCTION, "asg-instance-stopped.json", instance_id=bystander))
        check("medic would act, and says so", response.get("status") == "would-act", json.dumps(response))
        check(f"{bystander} is still HEALTHY: nothing was changed", world.health(bystander) == "HEALTHY")
        notices = world.notices()
        for notice in notices:
            show_notice(notice)
        check("an info notice says what medic would have done", [n["severity"] for n in notices] == ["info"])
    finally:
        healer.close()
        dry_healer.close()

    safety_scenarios(world, 7, total)
    alarm_scenarios(world, 9, total)
    rds_scenarios(world, 12, total)
    closed_loop_scenarios(16, total)
    organisation_scenarios(20, total)

    print()
    if failures:
        print(paint("31", f"demo FAILED: {len(failures)} check(s) did not hold:"))
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print(paint("32", f"demo passed: every step verified in the emulated AWS ({time.monotonic() - STARTED:.1f}s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
