"""`make bench-sweep`: what one reconciler run costs at scale, on emulated AWS. A world in an
account of its own with N Auto Scaling groups of M instances each (tagged medic:managed=true) and
10 DB instances (two primaries with four read replicas each, behind weighted reader sets), the
dead-letter queue, and the reconciler's real bootstrap under the Runtime Interface Emulator. Two
runs (the first sees everything for the first time; the second is the steady state), each with its
AWS calls by service and operation (counted by tests/harness/moto_faults.py, MEDIC_CALL_LOG) and
its duration. A benchmark, not a test: nothing is asserted but that the runs answered."""

import argparse
import collections
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "harness"))

from medic_bench import MANAGED, Runtime, World, load_event  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--instances", type=int, default=10)
    args = parser.parse_args()
    log = Path(os.environ["MEDIC_CALL_LOG"])
    world = World("sweep", own_account=True)
    account = world.access_key[-12:]
    started = time.monotonic()
    for n in range(args.groups):
        world.named_group(f"{world.name}-g{n:03d}", 1, args.instances + 2, args.instances, MANAGED, 0)
    for p in range(2):
        world.db_stack(f"{world.name}-db{p}", [(f"{world.name}-db{p}-r{r}", "us-east-1b", 1.0) for r in range(4)],
                       f"{world.name}-db{p}.internal.")
    dlq = world.sqs.create_queue(QueueName=f"{world.name}-dlq")["QueueUrl"]
    print(f"world: {args.groups} groups x {args.instances} instances, 10 DB instances (2 primaries, 8 replicas), "
          f"built in {time.monotonic() - started:.1f} s")
    with Runtime("reconciler", world.env(dlq_url=dlq)) as runtime:
        runtime.invoke(load_event("reconciler", "scheduled.json"))  # cold start, not counted
        for run in ("first", "steady"):
            offset = log.stat().st_size
            started = time.monotonic()
            report = runtime.invoke(load_event("reconciler", "scheduled.json"))
            took = (time.monotonic() - started) * 1000
            if "errorType" in report:
                print(f"run {run}: {report}")
                return 1
            with log.open() as calls:
                calls.seek(offset)
                mine = [line.split(maxsplit=1)[1].strip() for line in calls if line.startswith(account + " ")]
            counted = collections.Counter(mine)
            print(f"\nrun {run}: {len(mine)} AWS calls, {took:.0f} ms (findings {len(report['findings'])}, "
                  f"checked {report['checked']}, deferred {report['deferred']})")
            for call, count in sorted(counted.items()):
                print(f"  {count:4d}  {call}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
