import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))

from sam_local import build_template, host_architecture  # noqa: E402

IMAGE = f"public.ecr.aws/lambda/provided:al2023-rapid-{host_architecture()}"


def containers() -> set[str]:
    listed = subprocess.run(["docker", "ps", "-aq", "--filter", f"ancestor={IMAGE}"], capture_output=True, text=True,
                            check=True)
    return set(listed.stdout.split())


@pytest.fixture(scope="session", autouse=True)
def local_template():
    """The template `sam local` runs; and, when the tier ends, no container of its own left behind
    (SAM removes each after its invoke, but not one whose `sam` was killed on a timeout)."""
    assert os.environ.get("MEDIC_CONTAINER_ENDPOINT_URL"), \
        "moto must listen where containers reach it: run `make test` (MOTO_HOST=docker scripts/with-moto.sh)"
    before = containers()
    yield build_template()
    left = containers() - before
    if left:
        subprocess.run(["docker", "rm", "-f", *sorted(left)], capture_output=True, check=False)
