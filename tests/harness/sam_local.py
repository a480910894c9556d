"""`sam local` on medic's own template: what `make local` prepares and the sam-local tier runs.

`template.yaml` is read as SAM reads it and written to target/sam-local/template.json with three
changes, none of which reaches a deployed stack:
- each function's `CodeUri` is a folder holding its debug bootstrap (the one `make test` builds;
  `sam build` would compile every function again in release, 10 minutes or more each), and the
  `rust-cargolambda` build metadata is dropped, since there is nothing left to build;
- the `Architecture` parameter defaults to this machine's, so the container runs that bootstrap;
- `AWS_ENDPOINT_URL` is declared empty in Globals, because `sam local --env-vars` only sets
  variables the template declares; the env file (`write_env`) gives it the emulated AWS.
Everything else (handler, runtime, memory, timeout, every variable and its default) is the
template's own.

    python tests/harness/sam_local.py template      # writes target/sam-local/template.json
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "sam-local"
TEMPLATE = OUT / "template.json"
ENV_FILE = OUT / "env.json"


def host_architecture() -> str:
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]


def bootstrap_dir() -> Path:
    if "MEDIC_BOOTSTRAP_DIR" in os.environ:
        return Path(os.environ["MEDIC_BOOTSTRAP_DIR"])
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"


def functions(template: dict) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def build_template() -> Path:
    from samcli.yamlhelper import yaml_parse  # what sam itself reads templates with (!Ref, !GetAtt ...)

    template = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in functions(template).values():
        package = Path(resource["Properties"]["CodeUri"]).name
        source = bootstrap_dir() / package
        if not source.exists():
            raise SystemExit(f"{source} is not built: run `cargo build -p {package}` (make local does)")
        code = OUT / package
        code.mkdir(parents=True, exist_ok=True)
        target = code / "bootstrap"
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        resource["Properties"]["CodeUri"] = package
        resource.pop("Metadata", None)
    template["Parameters"]["Architecture"]["Default"] = host_architecture()
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    variables["AWS_ENDPOINT_URL"] = ""
    OUT.mkdir(parents=True, exist_ok=True)
    TEMPLATE.write_text(json.dumps(template, indent=1))
    return TEMPLATE


def write_env(path: Path, table: str, topic_arn: str, endpoint: str, **variables: str) -> Path:
    """A `--env-vars` file for every function: the world's ledger and topic, the emulated AWS as a
    container reaches it, acting (not dry-run), and any MEDIC_* settings given."""
    env = {"MEDIC_LEDGER_TABLE": table, "MEDIC_TOPIC_ARN": topic_arn, "AWS_ENDPOINT_URL": endpoint,
           "MEDIC_DRY_RUN": "false"}
    env.update(variables)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"Parameters": env}, indent=1))
    return path


def container_endpoint() -> str:
    endpoint = os.environ.get("MEDIC_CONTAINER_ENDPOINT_URL")
    if not endpoint:
        raise SystemExit("MEDIC_CONTAINER_ENDPOINT_URL is not set: start moto with `MOTO_HOST=docker scripts/with-moto.sh ...`")
    return endpoint


def local_options(env_file: Path, parameters: dict[str, str] | None = None) -> list[str]:
    """What `sam local invoke` and `sam local start-lambda` need here: the built template, the
    env file, no registry (`--skip-pull-image`), the host as `host.docker.internal`."""
    options = ["--template", str(TEMPLATE), "--env-vars", str(env_file), "--skip-pull-image",
               "--add-host", "host.docker.internal:host-gateway"]
    if parameters:
        options += ["--parameter-overrides", " ".join(f"{k}={v}" for k, v in parameters.items())]
    return options


def invoke(function: str, event: Path, env_file: Path, parameters: dict[str, str] | None = None,
           credentials: dict[str, str] | None = None, timeout: float = 120) -> tuple[dict | list, str]:
    """`sam local invoke` as a team runs it; returns the function's response and SAM's log.
    SAM exits 0 with no output when a function dies at init, so an empty answer is a failure."""
    command = ["sam", "local", "invoke", function, "--event", str(event), *local_options(env_file, parameters)]
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", **(credentials or {}))
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    answer = done.stdout.strip().splitlines()
    if done.returncode != 0 or not answer:
        raise AssertionError(f"sam local invoke {function} gave no response (exit {done.returncode}):\n{done.stderr}")
    return json.loads(answer[-1]), done.stderr


if __name__ == "__main__":
    if sys.argv[1:] != ["template"]:
        raise SystemExit(__doc__)
    print(build_template().relative_to(ROOT))
