"""The call sequence of each function's remediation, counted (issue 15): each fault-matrix scenario
(tests/harness/scenarios.py) runs once, cold, through tests/harness/fault_proxy.py, which times
every AWS call. For each: the AWS calls and the sequential stages (calls sent together share one;
`fault_proxy.stages`) before the first mutating call and in all, and the sequence itself. Real AWS
multiplies stages, not calls: each stage costs a round trip (5-20 ms, more with a TLS handshake).

    scripts/with-moto.sh .venv/bin/python bench/stages.py [--json FILE] [--sequence]

`--json` (default target/bench/stages.json) keeps the counts and sequences; `--sequence` prints each
call with its stage under the table."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from fault_proxy import MUTATING, running, stages  # noqa: E402
from medic_bench import Runtime  # noqa: E402
from scenarios import SCENARIOS, outcomes  # noqa: E402


def count(proxy, name: str) -> dict:
    """Runs scenario `name` once in a fresh world and process, and counts its calls and stages."""
    url, control = proxy
    scenario = SCENARIOS[name]
    world, event, _ = scenario.setup(f"st-{name}")
    key = world.access_key or f"MEDICSTAGES{uuid.uuid4().hex[:12].upper()}"
    env = {**world.env(**scenario.settings), "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": key}
    with Runtime(scenario.function, env) as runtime:
        answer = runtime.invoke(event)
    timeline = control(f"/_proxy/calls?client={key}")["timeline"]
    control(f"/_proxy/reset?client={key}", {})
    if "errorType" in answer:
        raise SystemExit(f"{name}: the clean run failed: {answer}")
    numbered = stages(timeline)
    first = next((i for i, (_, _, _, operation) in enumerate(timeline)
                  if operation in MUTATING and operation != "Publish"), None)
    return {
        "scenario": name,
        "function": scenario.function,
        "outcome": ",".join(o.get("status", "?") for o in outcomes(answer)),
        "calls": len(timeline),
        "stages": max(numbered, default=0),
        "mutating_call": None if first is None else f"{timeline[first][2]}:{timeline[first][3]}",
        "calls_before_mutating": first,
        "stages_before_mutating": None if first is None else numbered[first] - 1,
        "sequence": [[stage, f"{service}:{operation}"] for stage, (_, _, service, operation) in zip(numbered, timeline)],
    }


def table(counted: list[dict]) -> list[str]:
    lines = ["| Scenario (function) | First mutating call | Calls before it | Stages before it | Calls in all | Stages in all |",
             "|---|---|---|---|---|---|"]
    for c in counted:
        before = ("-", "-") if c["mutating_call"] is None else (c["calls_before_mutating"], c["stages_before_mutating"])
        lines.append(f"| {c['scenario']} ({c['function']}) | {c['mutating_call'] or 'none (a notice only)'} | "
                     f"{before[0]} | {before[1]} | {c['calls']} | {c['stages']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default=str(ROOT / "target" / "bench" / "stages.json"))
    parser.add_argument("--sequence", action="store_true")
    args = parser.parse_args()
    with running(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        counted = [count(proxy, name) for name in SCENARIOS]
    print("\n".join(table(counted)))
    if args.sequence:
        for c in counted:
            print(f"\n{c['scenario']}: " + ", ".join(f"{stage}. {call}" for stage, call in c["sequence"]))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(counted, indent=1))


if __name__ == "__main__":
    main()
