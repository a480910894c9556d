"""Seeds the emulated AWS at AWS_ENDPOINT_URL for a manual invocation, and prints shell exports:
the ledger table and notice topic the function needs, a tagged Auto Scaling group whose first
instance is stopped, and an event file about that instance (with a fresh EventBridge id: medic
treats a reused id as a duplicate, as it should).  Use: eval "$(.venv/bin/python scripts/local-world.py)"
When moto was started for containers (`MOTO_HOST=docker scripts/with-moto.sh`), it also writes
target/sam-local/env.json, the `--env-vars` file samconfig.toml gives `sam local`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "harness"))

import json  # noqa: E402
import os  # noqa: E402

from medic_bench import MANAGED, ROOT, World, load_event  # noqa: E402
from sam_local import ENV_FILE, write_env  # noqa: E402

world = World("local")
group, instances = world.group(2, MANAGED)
world.stop(instances[0])
event_file = ROOT / "target" / "local-event.json"
event_file.parent.mkdir(exist_ok=True)
event_file.write_text(json.dumps(load_event("instance-healer", "asg-instance-stopped.json", instance_id=instances[0]), indent=2))
print(f"export MEDIC_LEDGER_TABLE={world.table} MEDIC_TOPIC_ARN={world.topic_arn}")
print(f"export MEDIC_INBOX_URL={world.queue_url} MEDIC_GROUP={group} MEDIC_STOPPED_INSTANCE={instances[0]}")
print(f"export MEDIC_EVENT_FILE={event_file}")
if "MEDIC_CONTAINER_ENDPOINT_URL" in os.environ:
    write_env(ENV_FILE, world.table, world.topic_arn, os.environ["MEDIC_CONTAINER_ENDPOINT_URL"])
    print(f"# sam local: {ENV_FILE.relative_to(ROOT)} points every function at this world", file=sys.stderr)
