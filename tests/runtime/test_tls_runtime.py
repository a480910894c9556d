"""Runtime tier: the HTTPS client every function uses (rustls on ring, trusting the system's
roots) against moto behind TLS. AWS is only ever reached over HTTPS, and moto serves plain HTTP,
so without this test the TLS stack would first run in AWS. The certificate authority is made
here and trusted the way a system trusts one (`SSL_CERT_FILE`, which rustls-native-certs reads
like OpenSSL does); a bootstrap that does not trust it must fail the call, not skip the check."""

import datetime as dt
import http.client
import http.server
import os
import ssl
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from medic_bench import Runtime, World, load_event


def certificate(subject: str, key, issuer_name, issuer_key, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def moto_over_tls():
    """A TLS front for moto on localhost, with a certificate from a CA made for this test.
    Yields (endpoint, path of the CA's PEM)."""
    folder = Path(tempfile.mkdtemp(prefix="medic-tls-"))
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("medic test CA", ca_key, None, ca_key, ca=True)
    leaf = certificate("localhost", key, ca.subject, ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    moto = urllib.parse.urlsplit(os.environ["AWS_ENDPOINT_URL"])

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            upstream = http.client.HTTPConnection(moto.hostname, moto.port, timeout=30)
            upstream.request(self.command, self.path, body, dict(self.headers))
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            upstream.close()

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_address[1]}", folder / "ca.pem"
    server.shutdown()
    server.server_close()


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
