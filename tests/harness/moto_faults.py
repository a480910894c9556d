"""moto server, as `moto_server` runs it, plus the one fault the tests need that moto cannot
produce: an RDS DB instance in a terminal status (moto can stop a DB instance, never fail one).

    python tests/harness/moto_faults.py PORT

POST /_medic_faults/db-status with {"id": "orders-db", "status": "failed"} makes every
DescribeDBInstances answer report that status for that instance; {"id": ..., "status": null}
takes the fault back. Everything else, the rest of that answer included, is moto's own."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
from urllib.parse import parse_qs

FAULTS_PATH = "/_medic_faults/db-status"
INSTANCE = re.compile(rb"<DBInstance>.*?</DBInstance>", re.S)


class Faults:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.db_status: dict[str, str] = {}

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("PATH_INFO") == FAULTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            fault = json.loads(body or b"{}")
            with self.lock:
                if fault.get("status"):
                    self.db_status[fault["id"]] = fault["status"]
                else:
                    self.db_status.pop(fault.get("id", ""), None)
            start_response("204 No Content", [])
            return [b""]
        with self.lock:
            faults = dict(self.db_status)
        if not faults or parse_qs(body.decode("utf-8", errors="replace")).get("Action") != ["DescribeDBInstances"]:
            return self.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        answer = b"".join(self.app(environ, capture))

        def rewrite(match: re.Match) -> bytes:
            block = match.group(0)
            for db, status in faults.items():
                if f"<DBInstanceIdentifier>{db}</DBInstanceIdentifier>".encode() in block:
                    block = re.sub(rb"<DBInstanceStatus>[^<]*</DBInstanceStatus>",
                                   f"<DBInstanceStatus>{status}</DBInstanceStatus>".encode(), block)
            return block

        answer = INSTANCE.sub(rewrite, answer)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(answer))))
        start_response(captured["status"], headers)
        return [answer]


def main() -> None:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, Faults(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
