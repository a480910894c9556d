"""A front for moto over TLS, as AWS is only ever reached: a certificate authority made for the
run, a leaf for the hostnames the clients use (RSA 2048, as AWS's endpoints' are), and a threaded
HTTPS server that hands each call to moto and records when it answered it. Used by the runtime
tier's TLS test and by `make bench`'s Lambda-like sandbox (bench/sandbox.py)."""

from __future__ import annotations

import datetime as dt
import http.client
import http.server
import ssl
import threading
import time
import urllib.parse
from pathlib import Path


def make_certificates(folder: Path, hostnames: list[str]) -> Path:
    """A CA made for this run and a leaf for every service hostname; returns the CA's PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def build(subject: str, key, issuer, issuer_key, ca: bool):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]),
                                            critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = build("medic bench CA", ca_key, None, ca_key, ca=True)
    leaf = build(hostnames[0], key, ca.subject, ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM)
                                        + ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return folder / "ca.pem"


class Front:
    """A TLS (or plain) front for moto on `host`, recording when it answered each call:
    [(answered, host header, action, HTTP status)]."""

    def __init__(self, host: str, moto: str, folder: Path | None):
        upstream = urllib.parse.urlsplit(moto)
        answered: list[tuple[float, str, str, int]] = []
        lock = threading.Lock()

        class Forward(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
                connection.request(self.command, self.path, body, dict(self.headers))
                answer = connection.getresponse()
                payload = answer.read()
                connection.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                with lock:
                    answered.append((time.time(), self.headers.get("Host", ""),
                                     action or target.rsplit(".", 1)[-1], answer.status))

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args):
                pass

        self.answered, self.lock = answered, lock
        self.server = http.server.ThreadingHTTPServer((host, 0), Forward)
        self.server.daemon_threads = True
        if folder is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(folder / "server.pem", folder / "server.key")
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def since(self, start: float) -> list[tuple[float, str, str, int]]:
        with self.lock:
            return [a for a in self.answered if a[0] >= start]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
