"""A fault-injecting HTTP proxy between medic's SDK clients and moto: what moto never produces
(throttling, 5xx, a slow answer, a connection reset before or after the call was applied), on the
real wire, at the nth call of a chosen operation. It also counts every mutating call that
reached moto and was applied, per operation and resource: the ground truth for "done twice".

    python tests/harness/fault_proxy.py LISTEN_PORT UPSTREAM_URL

Control (JSON over HTTP on the same port):
- POST /_proxy/rules: replaces the rules with a list of
  {"service": "dynamodb", "operation": "PutItem" (or "*": any), "nth": 1, "times": 1, "fault": KIND};
  `nth` counts the calls matching service and operation from when the rules were set (1 = the
  next), and the fault hits `times` consecutive matching calls from there. KIND is `throttle`
  (the service's own throttling error), `500`, `503` (InternalFailure, ServiceUnavailable),
  `slow` (moto applies the call at once and its answer is held `MEDIC_PROXY_SLOW_SECONDS`,
  default 5, past the SDK's 4 s attempt timeout), `late` (the call itself is held as long, then
  passed on: it lands after the client gave up), `reset-before` (the connection reset before the
  call reaches moto) or `reset-after` (moto applies the call, the answer is lost and the
  connection reset).
- GET /_proxy/calls: {"mutations": {"<service> <operation> <resource>": count},
  "faults": [[service, operation, kind], ...], "calls": [[service, operation], ...] in order,
  "log": [[seconds, "<service> <operation> <resource>"], ...], each mutation with its time,
  "timeline": [[arrived, answered, service, operation], ...], each call's time at the proxy}.
  `stages(timeline)` numbers the calls by sequential stage.
- POST /_proxy/reset: no rules, no counts.
Each path takes `?client=ACCESS_KEY_ID`: rules that hit only calls signed with that key, and the
calls, faults and counts of that key alone, so that clients with keys of their own (the fault
matrix's cells, run side by side) never see each other's faults. Without it: every client.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import io
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

SCOPE = re.compile(r"Credential=([^/,]*)/[^/]*/[^/]*/([^/]*)/")
MUTATING = {
    "SetInstanceHealth", "SetDesiredCapacity", "TerminateInstanceInAutoScalingGroup", "StartInstances",
    "StopInstances", "RebootInstances", "PromoteReadReplica", "FailoverDBCluster", "ModifyDBInstance",
    "ChangeResourceRecordSets", "Publish",
}
RESOURCE_PARAMETERS = ("InstanceId", "InstanceIds.member.1", "InstanceId.1", "AutoScalingGroupName",
                       "DBInstanceIdentifier", "DBClusterIdentifier", "TopicArn")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}
THROTTLE_CODE = {"dynamodb": "ThrottlingException", "ec2": "RequestLimitExceeded", "sns": "Throttled"}
SERVER_ERROR_CODE = {"500": "InternalFailure", "503": "ServiceUnavailable"}


@dataclass
class Rule:
    service: str
    operation: str
    nth: int = 1
    times: int = 1
    fault: str = "throttle"
    seen: int = 0

    def hits(self) -> bool:
        self.seen += 1
        return self.nth <= self.seen < self.nth + self.times


@dataclass
class Partition:
    """The rules and records of one client (an access key id), or of all ("")."""
    rules: list[Rule] = field(default_factory=list)
    mutations: dict[str, int] = field(default_factory=dict)
    faults: list[list[str]] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    # [[seconds since the proxy started, "<service> <operation> <resource>"], ...] per mutation.
    log: list[list] = field(default_factory=list)
    # [[arrived, answered (seconds since the proxy started), service, operation], ...] per call.
    timeline: list[list] = field(default_factory=list)


@dataclass
class State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    clients: dict[str, Partition] = field(default_factory=lambda: {"": Partition()})

    def of(self, client: str) -> Partition:
        return self.clients.setdefault(client, Partition())

    def parts(self, client: str) -> list[Partition]:
        """Where a call signed by `client` is matched and recorded: its own, then all."""
        return [self.of(client), self.of("")] if client else [self.of("")]


def client(headers) -> str:
    """The access key id that signed the request."""
    scope = SCOPE.search(headers.get("Authorization", ""))
    return scope.group(1) if scope else ""


def identify(headers, method: str, path: str, body: bytes) -> tuple[str, str, str]:
    """(service, operation, resource) of an AWS request: the service from the signature's
    credential scope, the operation from X-Amz-Target (JSON protocols), the `Action` parameter
    (Query protocols) or the REST path (Route 53)."""
    scope = SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(2) if scope else "-"
    target = headers.get("X-Amz-Target", "")
    if target:
        operation = target.rsplit(".", 1)[-1]
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {}
        resource = str(payload.get("TableName") or payload.get("QueueUrl") or "")
        return service, operation, resource
    query = urllib.parse.parse_qs(body.decode("utf-8", errors="replace"))
    if "Action" in query:
        resource = next((query[p][0] for p in RESOURCE_PARAMETERS if p in query), "")
        return service, query["Action"][0], resource
    rrset = re.match(r"/2013-04-01/hostedzone/([^/]+)/rrset/?(\?.*)?$", path)
    if rrset:
        return service, "ChangeResourceRecordSets" if method == "POST" else "ListResourceRecordSets", rrset.group(1)
    return service, f"{method} {path}", ""


def stages(timeline: list[list]) -> list[int]:
    """The sequential stage of each call of a timeline ([arrived, answered, ...] rows, in order of
    arrival), from 1: one more than the latest stage among the calls answered before it arrived.
    Calls sent together share a stage; a call that may have waited for another (it arrived after
    that one was answered) comes after it, so the count errs long, never short."""
    numbered: list[int] = []
    for arrived, *_ in timeline:
        earlier = [stage for (_, answered, *_), stage in zip(timeline, numbered) if answered <= arrived]
        numbered.append(max(earlier, default=0) + 1)
    return numbered


def error(service: str, status: int, code: str) -> tuple[int, dict[str, str], bytes]:
    """An error answer in the service's own protocol, as AWS sends it."""
    request_id = str(uuid.uuid4())
    if service in ("dynamodb", "sqs"):
        body = json.dumps({"__type": f"com.amazonaws.{service}#{code}", "message": "Rate exceeded"}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code,
                        "x-amzn-RequestId": request_id}, body
    if service == "ec2":
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>Injected by fault_proxy.</Message></Error>"
                f"</Errors><RequestID>{request_id}</RequestID></Response>").encode()
        return status, {"Content-Type": "text/xml"}, body
    kind = "Sender" if status < 500 else "Receiver"
    body = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>Injected by fault_proxy</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body


def throttle(service: str) -> tuple[int, dict[str, str], bytes]:
    """The service's own throttling error (EC2 answers 503 RequestLimitExceeded, the others 400)."""
    return error(service, 503 if service == "ec2" else 400, THROTTLE_CODE.get(service, "Throttling"))


def serve(port: int, upstream: str, slow_seconds: float | None = None) -> http.server.ThreadingHTTPServer:
    """Starts the proxy on 127.0.0.1:`port` (0: any free port) in a background thread."""
    target = urllib.parse.urlsplit(upstream)
    state = State()
    started = time.monotonic()
    if slow_seconds is None:
        slow_seconds = float(os.environ.get("MEDIC_PROXY_SLOW_SECONDS", "5"))

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def reset(self) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.wfile = io.BytesIO()
            self.close_connection = True

        def control(self, body: bytes) -> bool:
            if not self.path.startswith("/_proxy/"):
                return False
            path, _, query = self.path.partition("?")
            key = urllib.parse.parse_qs(query).get("client", [""])[0]
            with state.lock:
                part = state.of(key)
                if path == "/_proxy/rules" and self.command == "POST":
                    part.rules = [Rule(**rule) for rule in json.loads(body or b"[]")]
                    reply = {"rules": len(part.rules)}
                elif path == "/_proxy/reset" and self.command == "POST":
                    if key:
                        state.clients.pop(key, None)
                    else:
                        state.clients = {"": Partition()}
                    reply = {}
                else:
                    reply = {"mutations": dict(part.mutations), "faults": list(part.faults), "calls": list(part.calls),
                             "log": list(part.log), "timeline": sorted(part.timeline)}
            self.answer(200, {"Content-Type": "application/json"}, json.dumps(reply).encode())
            return True

        def forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream_connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream_connection.request(self.command, self.path, body, headers)
            response = upstream_connection.getresponse()
            payload = response.read()
            upstream_connection.close()
            return response.status, response.getheaders(), payload

        def handle_call(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            if self.control(body):
                return
            service, operation, resource = identify(self.headers, self.command, self.path, body)
            arrived = time.monotonic() - started
            try:
                self.relay(body, service, operation, resource)
            finally:
                with state.lock:
                    for part in state.parts(client(self.headers)):
                        part.timeline.append([round(arrived, 4), round(time.monotonic() - started, 4), service, operation])

        def relay(self, body: bytes, service: str, operation: str, resource: str) -> None:
            """Passes the call on to moto, or answers it with the fault its rules give it."""
            with state.lock:
                parts = state.parts(client(self.headers))
                rules = [rule for part in parts for rule in part.rules]
                fault = next((r.fault for r in rules
                              if r.service == service and r.operation in (operation, "*") and r.hits()), None)
                for part in parts:
                    part.calls.append([service, operation])
                    if fault:
                        part.faults.append([service, operation, fault])
            if fault == "reset-before":
                return self.reset()
            if fault == "throttle":
                return self.answer(*throttle(service))
            if fault in ("500", "503"):
                return self.answer(*error(service, int(fault), SERVER_ERROR_CODE[fault]))
            if fault == "late":
                time.sleep(slow_seconds)
            status, headers, payload = self.forward(body)
            if operation in MUTATING and 200 <= status < 300:
                key = f"{service} {operation} {resource}"
                with state.lock:
                    for part in state.parts(client(self.headers)):
                        part.mutations[key] = part.mutations.get(key, 0) + 1
                        part.log.append([round(time.monotonic() - started, 3), key])
            if fault == "reset-after":
                return self.reset()
            if fault == "slow":
                time.sleep(slow_seconds)
            # After a slow answer the client has given up waiting, as it should.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.answer(status, {k: v for k, v in headers if k.lower() not in HOP_BY_HOP}, payload)

        do_GET = do_POST = do_PUT = do_DELETE = handle_call  # noqa: N815

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def running(upstream: str, slow_seconds: float | None = None):
    """The proxy in this process for the length of a `with`: yields (its URL, control), where
    control(path, payload=None) calls its control API (GET, or POST with a JSON payload)."""
    server = serve(0, upstream, slow_seconds)
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def control(path: str, payload=None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        with urllib.request.urlopen(urllib.request.Request(url + path, data=data), timeout=10) as answer:
            return json.loads(answer.read())

    try:
        yield url, control
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
    threading.Event().wait()
