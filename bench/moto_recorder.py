"""moto server, as `moto_server` runs it, plus a record of when it answered each request, so
`make bench` can time "event posted -> emulated AWS accepted the mutating call" without a proxy
hop in the path being timed.

    python bench/moto_recorder.py PORT

GET /_medic_bench/requests returns and forgets the record: [{"action", "status", "received", "at"}],
wall-clock times (time.time()) at which the request reached the WSGI app and moto had built its
answer."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

RECORD_PATH = "/_medic_bench/requests"
ROUTE53_CHANGE = re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset/?$")


def action_of(environ: dict, body: bytes) -> str:
    """The API operation: JSON protocols name it in X-Amz-Target, Query protocols in Action=,
    Route 53 (REST) in its path."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    path = environ.get("PATH_INFO", "")
    if path.startswith("/2013-04-01/"):  # Route 53 is a REST API
        if environ.get("REQUEST_METHOD") == "POST" and ROUTE53_CHANGE.match(path):
            return "ChangeResourceRecordSets"
        return "ListResourceRecordSets" if path.rstrip("/").endswith("/rrset") else f"{environ.get('REQUEST_METHOD')} {path}"
    fields = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" not in fields and body[:1] not in (b"{", b"<"):
        fields = parse_qs(body.decode("utf-8", errors="replace"))
    return fields.get("Action", ["?"])[0]


class Recorder:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.requests: list[dict] = []

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == RECORD_PATH:
            with self.lock:
                taken, self.requests = self.requests, []
            payload = json.dumps(taken).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
        received = time.time()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = action_of(environ, body)
        seen = {}

        def recording_start_response(status, headers, exc_info=None):
            seen["status"] = int(status.split(" ", 1)[0])
            seen["at"] = time.time()
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start_response)
        with self.lock:
            self.requests.append(
                {"action": action, "status": seen.get("status", 0), "received": received, "at": seen.get("at", time.time())}
            )
        return result


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "harness"))
    from moto_faults import Faults  # a failed DB instance, which moto cannot produce

    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, Recorder(Faults(app)), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
