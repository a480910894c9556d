import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))


@pytest.fixture(autouse=True)
def _needs_moto():
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    assert endpoint.startswith("http://127.0.0.1"), "AWS_ENDPOINT_URL must point at moto: run `make test`"
