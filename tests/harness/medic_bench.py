"""Test bench shared by the runtime tier and `make demo`: an emulated AWS world built with boto3
against moto (AWS_ENDPOINT_URL), and a function's real bootstrap under the AWS Lambda Runtime
Interface Emulator, fed events over the Runtime API exactly as `sam local invoke -e` would."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
IMAGE_ID = "ami-12c6146b"
MANAGED = {"medic:managed": "true"}


def rie_binary() -> Path:
    import samcli  # shipped by the aws-sam-cli package

    return Path(samcli.__file__).parent / "local" / "rapid" / "aws-lambda-rie-x86_64"


def bootstrap(function: str) -> Path:
    path = Path(os.environ.get("MEDIC_BOOTSTRAP_DIR", ROOT / "target" / "debug")) / function
    if not path.exists():
        raise FileNotFoundError(f"{path} is not built: run `cargo build -p {function}` (make does)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def invoke_emulator(port: int, event: dict, timeout: float = 60) -> dict:
    """One invoke through a Runtime Interface Emulator listening on `port` of this host."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations",
        data=json.dumps(event).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:  # the emulator answers 502 when init fails
        return {"httpStatus": error.code, "body": error.read().decode(errors="replace")}


class Runtime:
    """One function process under the Runtime Interface Emulator: the debug bootstrap of
    `function`, or `executable` when given (`make bench` runs release builds); its log goes to
    `log_dir` (default target/)."""

    def __init__(self, function: str, env: dict[str, str], executable: Path | None = None, log_dir: Path | None = None):
        # A port free when chosen can be taken (by an outgoing connection) before the emulator
        # binds it; the emulator then exits with "address already in use", and a retry takes others.
        for _ in range(5):
            if self._start(function, env, executable, log_dir):
                return
        raise RuntimeError(f"runtime emulator did not start; see {self.log_path}")

    def _start(self, function: str, env: dict[str, str], executable: Path | None, log_dir: Path | None) -> bool:
        self.port, api_port = free_port(), free_port()
        self.log_path = (log_dir or ROOT / "target") / f"rie-{function}-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [
                str(rie_binary()),
                "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
                "--runtime-api-address", f"127.0.0.1:{api_port}",
                str(executable or bootstrap(function)),
            ],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                if self.process.poll() is not None and "address already in use" in self.log():
                    self._log.close()
                    return False
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"runtime emulator did not start; see {self.log_path}")
                time.sleep(0.05)

    def invoke(self, event: dict) -> dict:
        return invoke_emulator(self.port, event)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def post_fault(kind: str, fault: dict) -> None:
    """A fault moto cannot produce, from tests/harness/moto_faults.py (`db-status`, `instance-status`)."""
    request = urllib.request.Request(
        os.environ["AWS_ENDPOINT_URL"].rstrip("/") + f"/_medic_faults/{kind}",
        data=json.dumps(fault).encode(), method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()


class LambdaRouter:
    """The Lambda Invoke API for `medic redrive`: POST /2015-03-31/functions/<name or ARN>/invocations
    goes to the emulator running that function (by the name after `function:`)."""

    def __init__(self, runtimes: dict[str, Runtime]):
        router = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                name = urllib.parse.unquote(self.path.split("/")[3]).split("function:")[-1].split(":")[0]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                router.invoked.append(name)
                answer = runtimes[name].invoke(json.loads(body))
                data = json.dumps(answer).encode()
                self.send_response(200)
                if isinstance(answer, dict) and "errorType" in answer:
                    self.send_header("X-Amz-Function-Error", "Unhandled")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.invoked: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def medic_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    binary = Path(os.environ.get("MEDIC_BOOTSTRAP_DIR", ROOT / "target" / "debug")) / "medic"
    return subprocess.run([str(binary), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def load_event(function: str, name: str, **detail) -> dict:
    """An events/ file; keyword arguments replace detail fields, and a fresh EventBridge id is
    given when any do (a new event about another resource)."""
    event = json.loads((EVENTS / function / name).read_text())
    if detail:
        event["detail"].update({k.replace("_", "-"): v for k, v in detail.items()})
        event["id"] = str(uuid.uuid4())
        if "instance-id" in event["detail"]:
            event["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{event['detail']['instance-id']}"]
    return event


def from_account(event: dict, account: str) -> dict:
    """`event` as a member account's forwarding rule puts it on medic's central bus: its own
    account in the envelope and the resource ARNs."""
    event = json.loads(json.dumps(event).replace("123456789012", account))
    event["account"] = account
    return event


def renamed(event: dict, names: dict[str, str]) -> dict:
    """The event about other resources: each name in `names` replaced wherever it appears (an
    alarm's three shapes carry names in nested JSON too), and a fresh EventBridge id when it has
    one (a new event)."""
    text = json.dumps(event)
    for old, new in names.items():
        text = text.replace(old, new)
    event = json.loads(text)
    if "id" in event:
        event["id"] = str(uuid.uuid4())
    return event


def set_alarm_time(event: dict, changed_at: str) -> dict:
    """Sets the state-change time of an alarm event in any of its three shapes."""
    if "alarmData" in event:
        event["alarmData"]["state"]["timestamp"] = changed_at
    elif "Records" in event:
        message = json.loads(event["Records"][0]["Sns"]["Message"])
        message["StateChangeTime"] = changed_at
        event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    else:
        event["detail"]["state"]["timestamp"] = changed_at
    return event


def assert_responses(expected: dict[str, tuple[str, str | None]], seen: dict[str, tuple[str, str | None]]) -> None:
    """Every file got its expected (status, label), or (error type, text in the error)."""
    for name, (status, detail) in expected.items():
        got_status, got_detail = seen[name]
        assert got_status == status, (name, seen[name])
        if status == "NonRetryable":
            assert got_detail.startswith("malformed event: ") and detail in got_detail, (name, got_detail)
        elif detail is not None:
            assert got_detail == detail, (name, seen[name])


class World:
    """Uniquely named resources in moto: ledger table, notice topic with an SQS inbox, and
    instances. Nothing is shared with other worlds, so tests need no global reset."""

    def __init__(self, prefix: str, own_account: bool = False, member: str | None = None, name: str | None = None):
        self.name = name or f"{prefix}-{uuid.uuid4().hex[:6]}"
        # An account of its own (tests/harness/moto_faults.py routes an access key ending in
        # ACCOUNT and 12 digits to that account): for functions that list a whole account.
        self.access_key = f"MEDICACCOUNT{uuid.uuid4().int % 10**11 + 2 * 10**11}" if own_account else None
        self.session = boto3.Session(aws_access_key_id=self.access_key, aws_secret_access_key="testing",
                                     aws_session_token="testing") if own_account else boto3.Session()
        if member:
            # A member account of central mode, built as its team would: moto runs calls signed
            # with an assumed role's keys in that role's account.
            credentials = boto3.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{member}:role/team-builder", RoleSessionName="medic-demo")["Credentials"]
            self.session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                         aws_secret_access_key=credentials["SecretAccessKey"],
                                         aws_session_token=credentials["SessionToken"])
        self.ddb = self.session.client("dynamodb")
        self.sns = self.session.client("sns")
        self.sqs = self.session.client("sqs")
        self.ec2 = self.session.client("ec2")
        self.asg = self.session.client("autoscaling")
        self.table = f"{self.name}-ledger"
        self.ddb.create_table(
            TableName=self.table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb.update_time_to_live(
            TableName=self.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        self.topic_arn = self.sns.create_topic(Name=f"{self.name}-notices")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName=f"{self.name}-inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def env(self, **settings: str) -> dict[str, str]:
        """The function's environment, as template.yaml sets it, pointed at this world."""
        env = {"MEDIC_LEDGER_TABLE": self.table, "MEDIC_TOPIC_ARN": self.topic_arn, "MEDIC_ENVIRONMENT": "dev"}
        if self.access_key:
            env.update({"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing"})
        env.update({f"MEDIC_{k.upper()}": v for k, v in settings.items()})
        return env

    def group(self, size: int, tags: dict[str, str] | None = None, grace_seconds: int = 0) -> tuple[str, list[str]]:
        group = f"{self.name}-web"
        return group, self.named_group(group, 1, size + 2, size, tags or {}, grace_seconds)

    def named_group(self, group: str, minimum: int, maximum: int, desired: int, tags: dict[str, str],
                    grace_seconds: int | None = None) -> list[str]:
        """A group with a chosen name (fixtures name theirs), in a launch template of this world;
        its health-check grace period is moto's default (300 s) unless `grace_seconds` is given."""
        template = f"{self.name}-{group}-lt"
        self.ec2.create_launch_template(
            LaunchTemplateName=template, LaunchTemplateData={"ImageId": IMAGE_ID, "InstanceType": "t3.micro"}
        )
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=group,
            LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
            MinSize=minimum,
            MaxSize=maximum,
            DesiredCapacity=desired,
            AvailabilityZones=["us-east-1a"],
            HealthCheckType="EC2",
            Tags=[
                {"ResourceId": group, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": True}
                for k, v in tags.items()
            ],
        )
        if grace_seconds is not None:
            # moto's create turns a grace period of 0 into 300; its update keeps the value.
            self.asg.update_auto_scaling_group(AutoScalingGroupName=group, HealthCheckGracePeriod=grace_seconds)
        described = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in described["Instances"]]

    def metric_alarm(self, name: str, namespace: str, metric: str, dimensions: dict[str, str], operator: str,
                     threshold: float, tags: dict[str, str] | None = None) -> str:
        cloudwatch = self.session.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace=namespace, MetricName=metric, Statistic="Average", Period=60,
            EvaluationPeriods=2, Threshold=threshold, ComparisonOperator=operator,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )
        return cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]

    def fire(self, alarm: str) -> str:
        """Puts the alarm into ALARM as a new transition (through OK first) and returns the
        transition's time as an alarm event carries it (medic acts only on a live alarm)."""
        cloudwatch = self.session.client("cloudwatch")
        for state in ("OK", "ALARM"):
            cloudwatch.set_alarm_state(AlarmName=alarm, StateValue=state, StateReason="set by the test bench")
        described = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
        at = described.get("StateTransitionedTimestamp") or described["StateUpdatedTimestamp"]
        return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"

    def desired(self, group: str) -> int:
        return self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["DesiredCapacity"]

    def standalone(self, tags: dict[str, str] | None = None) -> str:
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
        run = self.ec2.run_instances(
            ImageId=IMAGE_ID, InstanceType="t3.micro", MinCount=1, MaxCount=1, TagSpecifications=spec if tags else []
        )
        return run["Instances"][0]["InstanceId"]

    def stop(self, instance_id: str) -> None:
        self.ec2.stop_instances(InstanceIds=[instance_id])

    def terminate(self, instance_id: str) -> None:
        self.ec2.terminate_instances(InstanceIds=[instance_id])

    def health(self, instance_id: str) -> str:
        described = self.asg.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
        return described[0]["HealthStatus"].upper()

    def set_healthy(self, instance_id: str) -> None:
        self.asg.set_instance_health(InstanceId=instance_id, HealthStatus="Healthy")

    def ec2_state(self, instance_id: str) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    def notices(self, wait: int = 1) -> list[dict]:
        """Drains the SQS inbox: [{subject, severity, attributes, body}]. moto delivers a publish
        before it answers, so `wait=0` (no long poll) suffices once the publisher is done."""
        found = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
            ).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                envelope = json.loads(message["Body"])
                attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
                found.append(
                    {
                        "subject": envelope.get("Subject", ""),
                        "severity": attributes.get("severity", ""),
                        "attributes": attributes,
                        "body": envelope.get("Message", ""),
                    }
                )
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def pause(self, reason: str) -> None:
        """The pause switch, set as README's `aws dynamodb put-item` command sets it."""
        self.ddb.put_item(TableName=self.table, Item={"pk": {"S": "control#pause"}, "reason": {"S": reason}})

    def resume(self) -> None:
        """The pause switch cleared, as README's `aws dynamodb delete-item` command clears it."""
        self.ddb.delete_item(TableName=self.table, Key={"pk": {"S": "control#pause"}})

    def ledger_item(self, event_key: str) -> dict | None:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": f"event#{event_key}"}}, ConsistentRead=True)
        return item.get("Item")

    # --- RDS, Route 53 and replica lag (RDS rerouter) ---

    def db_stack(self, primary: str, replicas: list[tuple[str, str, float | None]], zone_name: str) -> dict:
        """A MySQL primary in us-east-1a (7 days of backups) with opted-in replicas
        [(id, az, ReplicaLag seconds or None)] (no backups), a private zone `zone_name` with the
        writer CNAME and one weighted reader CNAME (weight 100) per replica; the primary is tagged
        with the zone and both record names. Returns {zone_id, writer, reader}."""
        rds, r53 = self.session.client("rds"), self.session.client("route53")
        vpc = self.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        zone_id = r53.create_hosted_zone(
            Name=zone_name, CallerReference=str(uuid.uuid4()), HostedZoneConfig={"PrivateZone": True},
            VPC={"VPCRegion": "us-east-1", "VPCId": vpc},
        )["HostedZone"]["Id"].removeprefix("/hostedzone/")
        writer, reader = f"writer.{zone_name}", f"reader.{zone_name}"
        tags = {**MANAGED, "medic:zone-id": zone_id, "medic:writer-record": writer, "medic:reader-record": reader}
        rds.create_db_instance(
            DBInstanceIdentifier=primary, DBInstanceClass="db.t3.micro", Engine="mysql", MasterUsername="admin",
            MasterUserPassword="password123", AllocatedStorage=20, AvailabilityZone="us-east-1a",
            BackupRetentionPeriod=7, Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        self.upsert_cname(zone_id, writer, self.db(primary)["Endpoint"]["Address"])
        for replica, az, lag in replicas:
            rds.create_db_instance_read_replica(
                DBInstanceIdentifier=replica, SourceDBInstanceIdentifier=primary, AvailabilityZone=az,
                Tags=[{"Key": k, "Value": v} for k, v in MANAGED.items()],
            )
            rds.modify_db_instance(DBInstanceIdentifier=replica, BackupRetentionPeriod=0, ApplyImmediately=True)
            self.upsert_cname(zone_id, reader, self.db(replica)["Endpoint"]["Address"], (replica, 100))
            if lag is not None:
                self.put_lag(replica, "ReplicaLag", lag)
        return {"zone_id": zone_id, "writer": writer, "reader": reader}

    def aurora(self, cluster: str, members: list[tuple[str, str]]) -> None:
        """An opted-in Aurora MySQL cluster; the first (id, az) member is the writer."""
        rds = self.session.client("rds")
        rds.create_db_cluster(
            DBClusterIdentifier=cluster, Engine="aurora-mysql", MasterUsername="admin",
            MasterUserPassword="password123", Tags=[{"Key": k, "Value": v} for k, v in MANAGED.items()],
        )
        for member, az in members:
            rds.create_db_instance(
                DBInstanceIdentifier=member, DBInstanceClass="db.r6g.large", Engine="aurora-mysql",
                DBClusterIdentifier=cluster, AvailabilityZone=az,
            )

    def upsert_cname(self, zone_id: str, name: str, value: str, weighted: tuple[str, int] | None = None) -> None:
        record = {"Name": name, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": value}]}
        if weighted:
            record.update({"SetIdentifier": weighted[0], "Weight": weighted[1]})
        self.session.client("route53").change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]}
        )

    def record(self, zone_id: str, name: str, set_identifier: str | None = None) -> dict:
        sets = self.session.client("route53").list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=name)
        return next(r for r in sets["ResourceRecordSets"] if r["Name"] == name and r.get("SetIdentifier") == set_identifier)

    def put_lag(self, db: str, metric: str, value: float) -> None:
        self.session.client("cloudwatch").put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[{"MetricName": metric, "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db}],
                         "Value": value}],
        )

    def db(self, db: str) -> dict:
        return self.session.client("rds").describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]

    def fail_db(self, db: str) -> None:
        """A primary lost for good: stopped in moto, and reported `failed` from then on by
        tests/harness/moto_faults.py (moto cannot fail a DB instance)."""
        self.stop_db(db)
        post_fault("db-status", {"id": db, "status": "failed"})

    def impair(self, instance_id: str, check: str = "system") -> None:
        """EC2 reports the instance's `check` (system or instance) status check impaired, by
        tests/harness/moto_faults.py (moto reports every check ok)."""
        post_fault("instance-status", {"id": instance_id, "check": check, "status": "impaired"})

    def stop_db(self, db: str) -> None:
        """moto cannot fail a DB instance; a stopped primary stands in for a lost one."""
        self.session.client("rds").stop_db_instance(DBInstanceIdentifier=db)

    def cluster_writer(self, cluster: str) -> str:
        members = self.session.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterMembers"]
        return next(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"])
