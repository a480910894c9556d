"""Runtime tier: the built rds-rerouter bootstrap under the AWS Lambda Runtime Interface
Emulator, fed every events/rds-rerouter file over the Runtime API, in file order, against moto
seeded with the names the files use: primary orders-db (lost: stopped) with replicas
orders-db-replica-1 (ReplicaLag 2 s) and -2 (40 s) behind writer and reader records, and the
Aurora cluster orders-aurora."""

from medic_bench import EVENTS, assert_responses, Runtime, World, load_event

FUNCTION = "rds-rerouter"

# In file order; each row is (status or error type, label or error text).
EXPECTED = {
    "cluster-failover-failed.json": ("acted", None),  # one retry, to the reader with the lowest lag
    "cluster-failover-finished.json": ("alerted", None),
    "cluster-failover-restarted.json": ("alerted", None),
    "cluster-failover-started-across-az.json": ("alerted", None),
    "cluster-failover-started-within-az.json": ("alerted", None),
    "instance-failed.json": ("acted", None),  # promote replica-1, move the writer record
    "instance-failover-completed.json": ("alerted", None),
    "instance-failover-not-attempted.json": ("skipped", "already-promoted"),
    "instance-failover-standby-complete.json": ("alerted", None),
    "instance-failover-started.json": ("alerted", None),
    "instance-multi-az-activation-complete.json": ("alerted", None),
    "instance-multi-az-activation-started.json": ("alerted", None),
    "instance-restarted.json": ("alerted", None),
    "instance-shutdown.json": ("alerted", None),
    "instance-unknown-event-id.json": ("skipped", "unknown-db-event"),
    "malformed-missing-source-arn.json": ("NonRetryable", "missing field `SourceArn`"),
    "replica-creation-failed.json": ("acted", None),  # replica-2 leaves the reader set
    "replica-replication-error.json": ("alerted", None),  # replica-1 is now the only reader: kept
    "replica-replication-reset.json": ("alerted", None),
    "replica-replication-resumed.json": ("skipped", "reader-already-in"),
    "replica-replication-stopped.json": ("alerted", None),
    "replica-replication-terminated.json": ("alerted", None),
    "snapshot-event.json": ("NonRetryable", "RDS DB Snapshot Event"),
}


def test_every_rds_event_file_has_an_expectation():
    assert sorted(p.name for p in (EVENTS / FUNCTION).glob("*.json")) == sorted(EXPECTED)


def test_given_each_rds_file_in_order_when_invoked_then_expected_responses_and_aws_state():
    world = World("rt-rds")
    stack = world.db_stack(
        "orders-db",
        [("orders-db-replica-1", "us-east-1b", 2.0), ("orders-db-replica-2", "us-east-1c", 40.0)],
        f"{world.name}.internal.",
    )
    # The replicas carry their own reader-set tags: a promoted replica has no source any more (RDS
    # reports none, and so does moto_faults), and replica-1's later events still find its set.
    rds = world.session.client("rds")
    for replica in ("orders-db-replica-1", "orders-db-replica-2"):
        rds.add_tags_to_resource(ResourceName=world.db(replica)["DBInstanceArn"], Tags=[
            {"Key": "medic:zone-id", "Value": stack["zone_id"]}, {"Key": "medic:reader-record", "Value": stack["reader"]}])
    world.fail_db("orders-db")
    world.aurora("orders-aurora", [("orders-aurora-1", "us-east-1a"), ("orders-aurora-2", "us-east-1b"),
                                   ("orders-aurora-3", "us-east-1c")])
    world.put_lag("orders-aurora-2", "AuroraReplicaLag", 500.0)
    world.put_lag("orders-aurora-3", "AuroraReplicaLag", 20.0)
    seen = {}
    with Runtime(FUNCTION, world.env(promote_confirm_seconds="0")) as runtime:
        for name in sorted(EXPECTED):
            response = runtime.invoke(load_event(FUNCTION, name))
            if "errorType" in response:
                seen[name] = (response["errorType"], response["errorMessage"])
            else:
                seen[name] = (response["status"], response.get("label"))
    assert_responses(EXPECTED, seen)

    assert world.cluster_writer("orders-aurora") == "orders-aurora-3"
    assert world.db("orders-db-replica-1")["BackupRetentionPeriod"] == 7, "promoted with the primary's backups"
    assert world.db("orders-db-replica-2")["BackupRetentionPeriod"] == 0
    writer = world.record(stack["zone_id"], stack["writer"])
    assert writer["ResourceRecords"][0]["Value"] == world.db("orders-db-replica-1")["Endpoint"]["Address"]
    assert world.record(stack["zone_id"], stack["reader"], "orders-db-replica-1")["Weight"] == 100
    assert world.record(stack["zone_id"], stack["reader"], "orders-db-replica-2")["Weight"] == 0
    notices = world.notices()
    critical = [n["subject"] for n in notices if n["severity"] == "critical"]
    assert any("promoted orders-db-replica-1 to writer" in s for s in critical), critical
    assert sum("is the only reader in r" in s for s in critical) == 2, critical
