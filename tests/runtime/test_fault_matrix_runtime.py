"""Runtime tier, issue 14's fault matrix: every function's bootstrap talks to moto through
tests/harness/fault_proxy.py. For each scenario a clean run records the plan's calls in order, the
mutating calls that reached moto and the notices; then, for each fault kind at each of those calls,
a fresh world gets the same event the way Lambda's asynchronous invoke delivers it (the first
attempt, then up to two retries of the same payload while the function answers an error). A cell
holds when, read from the proxy's counts, moto and the ledger, every mutating call of the clean
run reached AWS exactly as often (never twice), there were as many notices, and the event's
record is COMPLETED. The one other ending allowed is for a call AWS cannot confirm afterwards (a
reboot): not repeated, and a critical notice that says so. Cells run side by side, each client
signing with an access key of its own, which the proxy keeps apart."""

from __future__ import annotations

import json
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from fault_proxy import running
from medic_bench import Runtime
from scenarios import SCENARIOS, outcomes

FAULTS = ["throttle", "500", "503", "slow", "reset-before", "reset-after"]
ATTEMPTS = 3
SIDE_BY_SIDE = 4
# One world made at a time: moto's RDS backend lists its instances without a lock and fails
# ("OrderedDict mutated during iteration") when another thread creates one meanwhile.
SETUP = threading.Lock()

# Defects this matrix found, each to be fixed in its own commit (issue 14), its cells then leaving
# this list. A cell that breaks and is not listed fails the test, and so does a listed cell that
# no longer breaks. (scenario, "service:Operation#nth", fault).
KNOWN_DEFECTS: set[tuple[str, str, str]] = set()


@pytest.fixture(scope="module")
def proxy():
    with running(os.environ["AWS_ENDPOINT_URL"]) as started:
        yield started


@dataclass
class Cell:
    step: str
    fault: str
    attempts: int
    last: str
    mutations: dict[str, int]
    notices: list[dict]
    ledger: str


def run_cell(proxy, name: str, step: tuple[str, str, int] | None, fault: str | None, also: tuple[dict, ...] = ()) -> Cell:
    """One cell: `fault` at `step` (none for the clean run), and the rules in `also` with it."""
    url, control = proxy
    scenario = SCENARIOS[name]
    with SETUP:
        world, event, names = scenario.setup(f"mx-{name}")
    key = world.access_key or f"MEDICMATRIX{uuid.uuid4().hex[:12].upper()}"
    env = {**world.env(**scenario.settings), "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": key}
    rules = list(also)
    if step:
        service, operation, nth = step
        rules.append({"service": service, "operation": operation, "nth": nth, "fault": fault})
    if rules:
        control(f"/_proxy/rules?client={key}", rules)
    answers = []
    with Runtime(scenario.function, env) as runtime:
        for _ in range(ATTEMPTS):
            answers.append(runtime.invoke(event))
            if "errorType" not in answers[-1]:
                break
    seen = control(f"/_proxy/calls?client={key}")
    control(f"/_proxy/reset?client={key}", {})
    last = answers[-1]
    if "errorType" in last:
        summary, ledger = last["errorType"], "-"
    else:
        found = outcomes(last)
        summary = ",".join("/".join(filter(None, [o.get("status"), o.get("label")])) for o in found)
        records = [world.ledger_item(o["event"]) for o in found if o.get("event")]
        ledger = ",".join(r["status"]["S"] if r else "missing" for r in records) or "-"
    mutations = {}
    for key_, count in seen["mutations"].items():
        if " Publish " in f"{key_} ":
            continue
        for real, role in names.items():
            key_ = key_.replace(real, role)
        mutations[key_] = count
    label = f"{step[0]}:{step[1]}#{step[2]}" if step else "clean"
    cell = Cell(label, fault or "-", len(answers), summary, mutations, world.notices(wait=0), ledger)
    cell.calls = seen["calls"]
    return cell


def distinct(notices: list[dict]) -> int:
    """Notices, counting a redelivery of one (the same `notice_id` attribute) once: SNS keeps no
    count of what it was sent, so a publish whose answer was lost is sent again (README, Notices)."""
    return len({n["attributes"].get("notice_id") or f"unnamed-{i}" for i, n in enumerate(notices)})


def holds(cell: Cell, clean: Cell) -> bool:
    if cell.ledger != clean.ledger or distinct(cell.notices) != distinct(clean.notices):
        return False
    if cell.mutations == clean.mutations:
        return True
    # Not repeated when AWS cannot confirm it, and said so in a critical notice.
    told = [n for n in cell.notices if n["severity"] == "critical" and "could not confirm" in n["subject"]]
    fewer = all(cell.mutations.get(k, 0) <= n for k, n in clean.mutations.items()) and set(cell.mutations) <= set(clean.mutations)
    return bool(told) and fewer


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_given_each_fault_at_each_call_of_the_plan_when_lambda_retries_then_done_once_one_notice_completed(proxy, name):
    clean = run_cell(proxy, name, None, None)
    assert clean.ledger and "missing" not in clean.ledger and clean.mutations is not None, clean
    seen, steps = {}, []
    for service, operation in clean.calls:
        seen[(service, operation)] = seen.get((service, operation), 0) + 1
        steps.append((service, operation, seen[(service, operation)]))
    plan = [(step, fault) for step in steps for fault in FAULTS]
    with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        cells = list(pool.map(lambda cell: run_cell(proxy, name, *cell), plan))
    rows = [clean, *cells]
    print(f"\n{name}: step | fault | attempts | last answer | mutations | notices (deliveries) | ledger")
    for cell in rows:
        notices = f"{distinct(cell.notices)} ({len(cell.notices)})"
        print(" | ".join(map(str, [cell.step, cell.fault, cell.attempts, cell.last, cell.mutations, notices, cell.ledger])))
    if os.environ.get("MEDIC_MATRIX_JSON"):
        # `make reliability` (bench/reliability.py) renders every scenario's table in RELIABILITY.md.
        out = Path(os.environ["MEDIC_MATRIX_JSON"]) / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"function": SCENARIOS[name].function, "cells": [
            {"step": c.step, "fault": c.fault, "attempts": c.attempts, "last": c.last, "mutations": c.mutations,
             "notices": distinct(c.notices), "deliveries": len(c.notices), "ledger": c.ledger,
             "holds": c is clean or holds(c, clean)} for c in rows]}, indent=1))
    broken = {(name, c.step, c.fault) for c in cells if not holds(c, clean)}
    known = {d for d in KNOWN_DEFECTS if d[0] == name}
    assert not broken - known, "cells that lost or doubled:\n" + "\n".join(map(str, sorted(broken - known)))
    assert not known - broken, f"known defects that no longer show (take them off KNOWN_DEFECTS): {sorted(known - broken)}"


def test_given_a_scale_out_applied_whose_answer_and_check_were_lost_when_lambda_retries_then_the_group_grows_once(proxy):
    """Two faults in one attempt, which the matrix (one per cell) never combines: the scale-out's
    answer is lost and the check that would settle it fails, so the attempt ends with its intent
    recorded. The retry sees the group grown and the alarm still firing; decided afresh, it would
    scale out once more."""
    clean = run_cell(proxy, "alarm-scale-out", None, None)
    confirm = sum(1 for call in clean.calls if call == ["autoscaling", "DescribeAutoScalingGroups"]) + 1
    cell = run_cell(proxy, "alarm-scale-out", ("autoscaling", "SetDesiredCapacity", 1), "reset-after",
                    ({"service": "autoscaling", "operation": "DescribeAutoScalingGroups", "nth": confirm,
                      "times": 3, "fault": "500"},))
    assert cell.attempts == 2, cell
    assert cell.mutations == clean.mutations, cell
    assert (distinct(cell.notices), cell.ledger) == (distinct(clean.notices), clean.ledger), cell
    assert all("scaled out 2 -> 3" in n["subject"] for n in clean.notices + cell.notices), cell.notices


def test_given_the_pause_switch_unreadable_when_the_claim_was_taken_beside_it_then_given_back_and_the_retry_acts(proxy):
    """The pause switch is read beside the claim: when the read fails (three 500s, the SDK's
    attempts), the claim taken meanwhile goes back, or every retry would find it in progress."""
    clean = run_cell(proxy, "instance-healer", None, None)
    cell = run_cell(proxy, "instance-healer", None, None,
                    ({"service": "dynamodb", "operation": "GetItem", "nth": 1, "times": 3, "fault": "500"},))
    assert cell.attempts == 2, cell
    assert (cell.mutations, distinct(cell.notices), cell.ledger) == (clean.mutations, distinct(clean.notices), "COMPLETED"), cell
