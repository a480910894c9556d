"""moto server, as `moto_server` runs it, plus what the tests need that moto cannot produce:

- an RDS DB instance in a terminal status (moto can stop a DB instance, never fail one):
  POST /_medic_faults/db-status with {"id": "orders-db", "status": "failed"} makes every
  DescribeDBInstances answer report that status for that instance; {"id": ..., "status": null}
  takes the fault back;
- an EC2 instance whose status checks are impaired (moto reports every running instance ok):
  POST /_medic_faults/instance-status with {"id": "i-...", "check": "system" or "instance",
  "status": "impaired"} makes DescribeInstanceStatus report that check impaired; "status": null
  takes it back;
- a promoted read replica that is a replica no more: moto promotes it but keeps reporting its
  source (ReadReplicaSourceDBInstanceIdentifier), which RDS clears; after a PromoteReadReplica
  passes through here, DescribeDBInstances answers leave that source out for the promoted instance;
- one AWS account per test world: a request signed with an access key id that ends in
  `ACCOUNT` and 12 digits runs in that account (moto's `x-moto-account-id`), so a test that lists
  a whole account (the reconciler's sweep) sees only its own resources.

    python tests/harness/moto_faults.py PORT

With MEDIC_CALL_LOG=FILE in its environment it also appends one line per AWS call to FILE:
`<account or -> <service> <operation>` (`make bench-sweep` counts the reconciler's calls so).

Everything else, the rest of each answer included, is moto's own."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
from urllib.parse import parse_qs

DB_STATUS_PATH = "/_medic_faults/db-status"
INSTANCE_STATUS_PATH = "/_medic_faults/instance-status"
DB_INSTANCE = re.compile(rb"<DBInstance>.*?</DBInstance>", re.S)
ACCOUNT_KEY = re.compile(r"Credential=[^/,]*ACCOUNT(\d{12})/")
SCOPE = re.compile(r"Credential=[^/,]*/[^/]*/[^/]*/([^/]*)/")


class Faults:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.db_status: dict[str, str] = {}
        self.instance_status: dict[tuple[str, str], str] = {}
        self.promoted: set[str] = set()
        log = os.environ.get("MEDIC_CALL_LOG")
        self.calls = open(log, "a", buffering=1) if log else None

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        account = ACCOUNT_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        if account:
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = account.group(1)
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if method == "POST" and path in (DB_STATUS_PATH, INSTANCE_STATUS_PATH):
            fault = json.loads(body or b"{}")
            with self.lock:
                if path == DB_STATUS_PATH:
                    faults, key = self.db_status, fault.get("id", "")
                else:
                    faults, key = self.instance_status, (fault.get("id", ""), fault.get("check", "instance"))
                if fault.get("status"):
                    faults[key] = fault["status"]
                else:
                    faults.pop(key, None)
            start_response("204 No Content", [])
            return [b""]
        query = parse_qs(body.decode("utf-8", errors="replace"))
        action = query.get("Action", [""])[0]
        if self.calls is not None:
            self.log_call(environ, account, action)
        with self.lock:
            if action == "PromoteReadReplica":
                self.promoted.update(query.get("DBInstanceIdentifier", []))
            if action == "DescribeDBInstances" and (self.db_status or self.promoted):
                rewrite = self.db_rewrite(dict(self.db_status), set(self.promoted))
            elif action == "DescribeInstanceStatus" and self.instance_status:
                rewrite = self.instance_rewrite(dict(self.instance_status))
            else:
                rewrite = None
        if rewrite is None:
            return self.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        answer = rewrite(b"".join(self.app(environ, capture)))
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(answer))))
        start_response(captured["status"], headers)
        return [answer]

    def log_call(self, environ, account, action: str) -> None:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        service = SCOPE.search(authorization)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = action or target.rsplit(".", 1)[-1] or f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
        with self.lock:
            self.calls.write(f"{account.group(1) if account else '-'} {service.group(1) if service else '-'} {operation}\n")

    @staticmethod
    def db_rewrite(faults: dict[str, str], promoted: set[str]):
        def one(match: re.Match) -> bytes:
            block = match.group(0)
            identifier = re.search(rb"<DBInstanceIdentifier>([^<]*)</DBInstanceIdentifier>", block)
            db = identifier.group(1).decode() if identifier else ""
            if db in faults:
                block = re.sub(rb"<DBInstanceStatus>[^<]*</DBInstanceStatus>",
                               f"<DBInstanceStatus>{faults[db]}</DBInstanceStatus>".encode(), block)
            if db in promoted:
                block = re.sub(rb"<ReadReplicaSourceDBInstanceIdentifier>[^<]*</ReadReplicaSourceDBInstanceIdentifier>",
                               b"", block)
            return block

        return lambda answer: DB_INSTANCE.sub(one, answer)

    @staticmethod
    def instance_rewrite(faults: dict[tuple[str, str], str]):
        def rewrite(answer: bytes) -> bytes:
            for (instance_id, check), status in faults.items():
                start = answer.find(f"<instanceId>{instance_id}</instanceId>".encode())
                if start < 0:
                    continue
                opening = answer.find(f"<{check}Status>".encode(), start)
                end = answer.find(f"</{check}Status>".encode(), start)
                if opening < 0 or end < opening:
                    continue
                summary = answer[opening:end].rsplit(b"<status>", 1)
                if len(summary) != 2:
                    continue
                details = summary[0].replace(b"<status>passed</status>", b"<status>failed</status>")
                answer = answer[:opening] + details + f"<status>{status}</status>".encode() + answer[end:]
            return answer

        return rewrite


def main() -> None:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, Faults(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
