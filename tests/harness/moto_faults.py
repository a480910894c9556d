"""moto server, as `moto_server` runs it, plus what the tests need that moto cannot produce:

- an RDS DB instance in a terminal status (moto can stop a DB instance, never fail one):
  POST /_medic_faults/db-status with {"id": "orders-db", "status": "failed"} makes every
  DescribeDBInstances answer report that status for that instance; {"id": ..., "status": null}
  takes the fault back;
- an EC2 instance whose status checks are impaired (moto reports every running instance ok):
  POST /_medic_faults/instance-status with {"id": "i-...", "check": "system" or "instance",
  "status": "impaired"} makes DescribeInstanceStatus report that check impaired; "status": null
  takes it back;
- an instance stopped by EC2 itself (moto only ever stops one for a StopInstances call):
  POST /_medic_faults/state-reason with {"id": "i-...", "code": "Server.InternalError"} makes
  DescribeInstances report that StateReason code for the instance; "code": null takes it back;
- a promoted read replica that is a replica no more: moto promotes it but keeps reporting its
  source (ReadReplicaSourceDBInstanceIdentifier), which RDS clears; after a PromoteReadReplica
  passes through here, DescribeDBInstances answers leave that source out for the promoted instance;
- DynamoDB requests one at a time, each as a whole: moto checks a transaction's conditions and
  applies its writes without a lock, and undoes a cancelled one by restoring a copy of the table
  taken when it began, erasing what other requests wrote meanwhile (a lost update DynamoDB never
  makes: each of its requests is atomic, transactions included);
- a member account without medic's member role (moto lets anyone assume any role, even one that
  does not exist): POST /_medic_faults/no-role with {"arn": "arn:aws:iam::...:role/..."} makes
  every AssumeRole of that role answer AccessDenied, as STS does when the role is missing or its
  trust policy does not admit the caller; {"arn": ..., "missing": false} takes it back;
- how many times each role was assumed: GET /_medic_faults/assume-role-count?arn=... answers the
  count of AssumeRole calls for that role so far (refused ones included);
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
STATE_REASON_PATH = "/_medic_faults/state-reason"
NO_ROLE_PATH = "/_medic_faults/no-role"
ASSUME_COUNT_PATH = "/_medic_faults/assume-role-count"
ACCESS_DENIED = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    "<Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/medic is not authorized to "
    "perform: sts:AssumeRole on resource: {arn}</Message></Error><RequestId>medic-faults</RequestId></ErrorResponse>"
)
DB_INSTANCE = re.compile(rb"<DBInstance>.*?</DBInstance>", re.S)
ACCOUNT_KEY = re.compile(r"Credential=[^/,]*ACCOUNT(\d{12})/")
SCOPE = re.compile(r"Credential=[^/,]*/[^/]*/[^/]*/([^/]*)/")


class Faults:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.dynamodb = threading.Lock()
        self.db_status: dict[str, str] = {}
        self.instance_status: dict[tuple[str, str], str] = {}
        self.promoted: set[str] = set()
        self.state_reason: dict[str, str] = {}
        self.no_role: set[str] = set()
        self.assumed: dict[str, int] = {}
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
        if method == "POST" and path == NO_ROLE_PATH:
            fault = json.loads(body or b"{}")
            with self.lock:
                if fault.get("missing", True):
                    self.no_role.add(fault.get("arn", ""))
                else:
                    self.no_role.discard(fault.get("arn", ""))
            start_response("204 No Content", [])
            return [b""]
        if method == "GET" and path == ASSUME_COUNT_PATH:
            arn = parse_qs(environ.get("QUERY_STRING", "")).get("arn", [""])[0]
            with self.lock:
                count = self.assumed.get(arn, 0)
            answer = json.dumps({"arn": arn, "count": count}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
            return [answer]
        if method == "POST" and path in (DB_STATUS_PATH, INSTANCE_STATUS_PATH, STATE_REASON_PATH):
            fault = json.loads(body or b"{}")
            with self.lock:
                if path == DB_STATUS_PATH:
                    faults, key, value = self.db_status, fault.get("id", ""), fault.get("status")
                elif path == INSTANCE_STATUS_PATH:
                    faults, key = self.instance_status, (fault.get("id", ""), fault.get("check", "instance"))
                    value = fault.get("status")
                else:
                    faults, key, value = self.state_reason, fault.get("id", ""), fault.get("code")
                if value:
                    faults[key] = value
                else:
                    faults.pop(key, None)
            start_response("204 No Content", [])
            return [b""]
        query = parse_qs(body.decode("utf-8", errors="replace"))
        action = query.get("Action", [""])[0]
        if self.calls is not None:
            self.log_call(environ, account, action)
        if action == "AssumeRole":
            arn = query.get("RoleArn", [""])[0]
            with self.lock:
                self.assumed[arn] = self.assumed.get(arn, 0) + 1
                denied = arn in self.no_role
            if denied:
                answer = ACCESS_DENIED.format(arn=arn).encode()
                start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(answer)))])
                return [answer]
        with self.lock:
            if action == "PromoteReadReplica":
                self.promoted.update(query.get("DBInstanceIdentifier", []))
            if action == "DescribeDBInstances" and (self.db_status or self.promoted):
                rewrite = self.db_rewrite(dict(self.db_status), set(self.promoted))
            elif action == "DescribeInstanceStatus" and self.instance_status:
                rewrite = self.instance_rewrite(dict(self.instance_status))
            elif action == "DescribeInstances" and self.state_reason:
                rewrite = self.state_reason_rewrite(dict(self.state_reason))
            else:
                rewrite = None
        if rewrite is None and environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.dynamodb:
                return list(self.app(environ, start_response))
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
    def state_reason_rewrite(faults: dict[str, str]):
        # moto writes an instance's stateReason before its instanceId: the one to change is the
        # last stateReason before the instance's id and after the previous instance's.
        def rewrite(answer: bytes) -> bytes:
            for instance_id, code in faults.items():
                at = answer.find(f"<instanceId>{instance_id}</instanceId>".encode())
                if at < 0:
                    continue
                previous = max(answer.rfind(b"<instanceId>", 0, at), 0)
                start = answer.rfind(b"<stateReason>", previous, at)
                if start < 0:
                    continue
                end = answer.find(b"</stateReason>", start)
                reason = f"<stateReason><code>{code}</code><message>{code}: EC2 stopped the instance</message>"
                answer = answer[:start] + reason.encode() + answer[end:]
            return answer

        return rewrite

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
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, Faults(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
