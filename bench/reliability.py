"""`make reliability`: medic under faults, storms and hostile input, measured (issue 14).

1. The fault matrix (tests/runtime/test_fault_matrix_runtime.py, as `make test` runs it), its
   every cell kept as JSON.
2. The full storm (tests/harness/storm.py): 10,000 deliveries, four emulators per function.
3. Each fuzz target for MEDIC_FUZZ_SECONDS (default 300) (scripts/fuzz.sh), and the longest run of
   each target on record (RELIABILITY.json keeps it from run to run).
4. RELIABILITY.md and RELIABILITY.json.

Needs moto (scripts/with-moto.sh starts it: `make reliability` does) and the debug bootstraps.

    python bench/reliability.py [--events N] [--skip-fuzz]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
OUT = ROOT / "target" / "reliability"
TARGETS = ["instance-healer", "alarm-responder", "rds-rerouter", "notifier", "reconciler"]


def progress(message: str) -> None:
    print(f"== {message}", flush=True)


def matrix() -> tuple[dict, float]:
    progress("fault matrix (pytest tests/runtime/test_fault_matrix_runtime.py)")
    started = time.monotonic()
    folder = OUT / "matrix"
    for old in folder.glob("*.json"):
        old.unlink()
    env = {**os.environ, "MEDIC_MATRIX_JSON": str(folder)}
    subprocess.run([str(ROOT / ".venv" / "bin" / "pytest"), "-q", "tests/runtime/test_fault_matrix_runtime.py"],
                   cwd=ROOT, env=env, check=True)
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}, time.monotonic() - started


def fuzz(seconds: int) -> None:
    progress(f"fuzz: each target for {seconds} s (scripts/fuzz.sh)")
    subprocess.run([str(ROOT / "scripts" / "fuzz.sh")], cwd=ROOT, env={**os.environ, "MEDIC_FUZZ_SECONDS": str(seconds)},
                   check=True)


def fuzz_figures(previous: dict) -> tuple[dict, dict]:
    """This run's figures per target (target/fuzz/<target>.json), and the longest run of each on
    record: this run's when it is at least as long as the one kept."""
    latest, longest = {}, dict(previous.get("fuzz_longest", {}))
    for target in TARGETS:
        path = ROOT / "target" / "fuzz" / f"{target}.json"
        if not path.exists():
            continue
        figures = {**json.loads(path.read_text()), "date": dt.date.fromtimestamp(path.stat().st_mtime).isoformat()}
        latest[target] = figures
        kept = longest.get(target)
        if not figures["crash"] and (kept is None or figures["seconds"] >= kept["seconds"]):
            longest[target] = figures
    return latest, longest


def cell_text(cell: dict) -> str:
    """A matrix cell in a few words: how it ended and what it took."""
    mark = "ok" if cell["holds"] else "BROKEN"
    notes = []
    if cell["attempts"] > 1:
        notes.append(f"{cell['attempts']} attempts")
    if cell["deliveries"] != cell["notices"]:
        notes.append(f"notice delivered {cell['deliveries']}x, one id")
    if "unconfirmed" in cell["last"]:
        notes.append("unconfirmed, told")
    elif cell["last"].startswith("duplicate"):
        notes.append("retry was a duplicate")
    return mark + (f" ({', '.join(notes)})" if notes else "")


def render(cells: dict, matrix_seconds: float, storm: dict | None, latest: dict, longest: dict, args) -> str:
    lines = [
        "# RELIABILITY",
        "",
        f"Written by `make reliability` (`bench/reliability.py`) on {dt.date.today().isoformat()}, on "
        f"{os.cpu_count()} cores ({platform.machine()}), against moto through `tests/harness/fault_proxy.py`. "
        "Every figure below comes from that run, but the longest fuzz runs, which RELIABILITY.json keeps "
        "from the run that made them. Each section names the command that reproduces it.",
        "",
        "## Fault matrix",
        "",
        "`.venv/bin/pytest -q tests/runtime/test_fault_matrix_runtime.py` under `scripts/with-moto.sh` "
        "(part of `make test`). For each scenario a clean run records the plan's calls; then each fault at "
        "each call, in a fresh world, with the event delivered as Lambda's asynchronous invoke does (the "
        "first attempt and up to two retries). A cell is `ok` when every mutating call of the clean run "
        "reached AWS as often (never twice), there were as many notices (counted by `notice_id`) and the "
        "event's ledger record is COMPLETED; or, for a call AWS cannot confirm afterwards (a reboot), when "
        "it was not repeated and a critical notice says so. "
        f"{sum(len(m['cells']) - 1 for m in cells.values())} cells in {matrix_seconds:.0f} s; "
        f"broken: {sum(1 for m in cells.values() for c in m['cells'] if not c['holds'])}.",
        "",
        "Faults: `throttle` (the service's own throttling error), `500`/`503` (InternalFailure, "
        "ServiceUnavailable), `slow` (moto applied the call, its answer held 5 s, past the SDK's 4 s attempt "
        "timeout), `reset-before` (the connection reset before the call reaches moto), `reset-after` (moto "
        "applied the call, the answer is lost).",
    ]
    for name, scenario in cells.items():
        clean = scenario["cells"][0]
        faults = list(dict.fromkeys(cell["fault"] for cell in scenario["cells"][1:]))
        lines += ["", f"### {name} ({scenario['function']})", "",
                  f"Clean run: {clean['last']}; mutating calls {clean['mutations'] or 'none'}; "
                  f"{clean['notices']} notice; ledger {clean['ledger']}.", "",
                  "| Step (call #n) | " + " | ".join(faults) + " |", "|---" * (len(faults) + 1) + "|"]
        steps: dict[str, dict[str, dict]] = {}
        for cell in scenario["cells"][1:]:
            steps.setdefault(cell["step"], {})[cell["fault"]] = cell
        for step, by_fault in steps.items():
            lines.append(f"| `{step}` | " + " | ".join(cell_text(by_fault[f]) if f in by_fault else "-" for f in faults) + " |")
    lines += ["", "## Storm", ""]
    if storm:
        lines += [
            f"`scripts/with-moto.sh .venv/bin/python tests/harness/storm.py --events {storm['events']}` "
            "(`make test` runs 1,000). A world of "
            f"{storm['resources']} resources (20 Auto Scaling groups of 6 instances, 3 of each stopped, "
            "each group's CPU-high alarm in ALARM, 5 MySQL primaries with two replicas behind a weighted "
            "reader set); deliveries to the instance healer (about half: stopped members, some already "
            "running again), the alarm responder (each alarm's one transition in fresh EventBridge envelopes, "
            "1 % also in the SNS shape), the notifier (launch failures) and the RDS rerouter (replica "
            f"creation failed); {storm['duplicates_sent']} of them exact duplicates; "
            f"{storm['emulators_per_function']} emulators per function side by side; an error answer "
            "delivered again after 2 s and 4 s (Lambda waits about 1 and 2 minutes).",
            "",
            "| Deliveries | Invocations | Seconds | Events/s | p50 ms | p99 ms | Mutating calls | Notices | Violations |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {storm['events']:,} | {storm['invocations']:,} | {storm['seconds']} | {storm['events_per_second']} | "
            f"{storm['p50_ms']} | {storm['p99_ms']} | {storm['mutating_calls']} | {storm['notices']} | "
            f"{len(storm['violations'])} |",
            "",
            "Checked from the proxy's counts and times: every mutating call on a resource exactly once; per "
            "group exactly as many members marked Unhealthy as the out-of-service floor allows "
            "(`MEDIC_MAX_UNHEALTHY_PERCENT`=34 of 6: 2; moto replaces nothing, so every mark stays out of "
            "service) and one scale-out; one reader-set change per replica; never more than the breaker's 3 "
            "actions per group in any 900 s window; no event still failing after its retries. Events/s and "
            "latency are moto's (one Python process under its GIL) as much as medic's: a ceiling of this "
            "machine, not of AWS.",
        ]
        if storm["violations"]:
            lines += ["", "Violations:", ""] + [f"- {v}" for v in storm["violations"]]
    else:
        lines.append("Not run (`--events 0`).")
    lines += ["", "## Fuzzing", "",
              "`make fuzz` (`scripts/fuzz.sh`, cargo fuzz with libFuzzer, nightly): one target per function "
              "(parse, then decide on arbitrary observations, then every notice the decision can lead to, "
              "checked against SNS's limits); `-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512`. "
              "Edges and features are libFuzzer's coverage counters (`cov`, `ft`) at the end of the run.",
              ""]

    def table(rows: dict) -> list[str]:
        out = ["| Target | Seconds | Executions | Execs/s | Edges | Features | Peak RSS MB | Crash | Date |",
               "|---|---|---|---|---|---|---|---|---|"]
        for target in TARGETS:
            f = rows.get(target)
            if f:
                out.append(f"| {target} | {f['seconds']} | {f['executions']:,} | {f['execs_per_second']} | {f['edges']} | "
                           f"{f['features']} | {f['peak_rss_mb']} | {'yes' if f['crash'] else 'no'} | {f['date']} |")
        return out

    if args.skip_fuzz:
        lines += ["This run: not run (`--skip-fuzz`); the figures below are the last runs on record in target/fuzz.", ""]
    else:
        lines += [f"This run (`MEDIC_FUZZ_SECONDS={args.fuzz_seconds} make fuzz`):", ""]
    lines += table(latest)
    lines += ["", "Longest run of each target on record (`MEDIC_FUZZ_SECONDS=1800 scripts/fuzz.sh <target>`):", ""]
    lines += table(longest)
    lines += ["", "## Defects found", "",
              "Each fixed in its own commit; the matrix cell or the storm is its regression test, and a fuzz "
              "crash input is kept in `fuzz/regressions/<target>/`, which `make test` replays "
              "(`git log --grep '^Fix (fault matrix' --grep '^Fix (fuzz' --grep '^Fix (storm'`, and the mends of those fixes that the matrix or the storm found):", ""]
    lines += [f"- {line}" for line in findings()]
    return "\n".join(lines) + "\n"


def findings() -> list[str]:
    """The commits that fixed what the matrix or the fuzzers found: hash and first sentence."""
    log = subprocess.run(["git", "log", "--reverse", "--format=%h %s", "--grep=^Fix (fault matrix", "--grep=^Fix (fuzz",
                          "--grep=^Fix (storm", "--grep=^Mend (fault matrix", "--grep=^Mend (storm"],
                         cwd=ROOT, capture_output=True, text=True, check=False).stdout
    return [f"`{line[:7]}` {line[8:].split(': ', 1)[0]}: {line[8:].split(': ', 1)[-1].split('. ')[0]}"
            for line in log.splitlines() if line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="storm deliveries (0: no storm)")
    parser.add_argument("--skip-fuzz", action="store_true", help="render the fuzz figures on record instead")
    args = parser.parse_args()
    args.fuzz_seconds = int(os.environ.get("MEDIC_FUZZ_SECONDS", "300"))
    OUT.mkdir(parents=True, exist_ok=True)
    previous_path = ROOT / "RELIABILITY.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() else {}
    cells, matrix_seconds = matrix()
    storm_figures = None
    if args.events:
        from storm import storm
        progress(f"storm: {args.events} deliveries")
        storm_figures = storm(args.events)
        print(json.dumps(storm_figures), flush=True)
    # The runs on record in target/fuzz count towards the longest before this run replaces them.
    _, longest = fuzz_figures(previous)
    if not args.skip_fuzz:
        fuzz(args.fuzz_seconds)
    latest, longest = fuzz_figures({"fuzz_longest": longest})
    (ROOT / "RELIABILITY.md").write_text(render(cells, matrix_seconds, storm_figures, latest, longest, args))
    previous_path.write_text(json.dumps({"matrix": cells, "storm": storm_figures, "fuzz": latest,
                                         "fuzz_longest": longest}, indent=1) + "\n")
    progress("RELIABILITY.md and RELIABILITY.json written")
    if storm_figures and storm_figures["violations"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
