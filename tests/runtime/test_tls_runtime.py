"""Runtime tier: the HTTPS client every function uses (rustls on ring, trusting the system's
roots) against moto behind TLS. AWS is only ever reached over HTTPS, and moto serves plain HTTP,
so without this test the TLS stack would first run in AWS. The certificate authority is made
here and trusted the way a system trusts one (`SSL_CERT_FILE`, which rustls-native-certs reads
like OpenSSL does); a bootstrap that does not trust it must fail the call, not skip the check."""

import os
import tempfile
from pathlib import Path

import pytest

from medic_bench import Runtime, World, load_event
from tls_front import Front, make_certificates


@pytest.fixture(scope="module")
def moto_over_tls():
    """A TLS front for moto on localhost, with a certificate from a CA made for this test.
    Yields (endpoint, path of the CA's PEM)."""
    folder = Path(tempfile.mkdtemp(prefix="medic-tls-"))
    ca = make_certificates(folder, ["localhost"])
    front = Front("127.0.0.1", os.environ["AWS_ENDPOINT_URL"], folder)
    yield f"https://localhost:{front.port}", ca
    front.close()


def test_given_moto_behind_tls_with_a_trusted_ca_when_the_notifier_runs_then_it_writes_and_publishes_over_https(moto_over_tls):
    endpoint, ca = moto_over_tls
    world = World("rt-tls")
    env = {**world.env(), "AWS_ENDPOINT_URL": endpoint, "SSL_CERT_FILE": str(ca)}
    with Runtime("notifier", env) as runtime:
        response = runtime.invoke(load_event("notifier", "launch-successful.json"))
    assert response["status"] == "alerted", response
    assert [n["severity"] for n in world.notices()] == ["info"]


def test_given_moto_behind_tls_with_an_unknown_ca_when_the_notifier_runs_then_the_call_fails_and_nothing_is_sent(moto_over_tls):
    endpoint, _ = moto_over_tls
    world = World("rt-tls-untrusted")
    env = {**world.env(), "AWS_ENDPOINT_URL": endpoint, "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    with Runtime("notifier", env) as runtime:
        response = runtime.invoke(load_event("notifier", "launch-successful.json"))
        log = runtime.log()
    assert response.get("errorType") == "Retryable", response
    assert "certificate" in log.lower() or "invalid peer" in log.lower(), log[-2000:]
    assert world.notices() == []
