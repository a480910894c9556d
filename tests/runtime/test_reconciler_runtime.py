"""Runtime tier: the built reconciler bootstrap under the AWS Lambda Runtime Interface Emulator, fed
the scheduled event in events/reconciler, against moto; and `medic redrive` (the built CLI) handing
dead letters back to the real bootstraps through the Lambda Invoke API, which a small router here
serves from the emulators (moto cannot run a function)."""

import json

from medic_bench import MANAGED, ROOT, LambdaRouter, Runtime, World, load_event, medic_cli

FUNCTION = "reconciler"


def test_every_event_file_is_sent_below():
    files = sorted(p.name for p in (ROOT / "events" / FUNCTION).glob("*.json"))
    assert files == ["scheduled.json"]


def test_given_the_scheduled_event_in_an_empty_account_when_invoked_then_a_report_of_nothing_to_do():
    world = World("rt-reconcile-empty", own_account=True)
    with Runtime(FUNCTION, world.env()) as runtime:
        report = runtime.invoke(load_event(FUNCTION, "scheduled.json"))
    assert report == {"checked": 0, "waiting": 0, "healed": [], "findings": [], "deferred": 0, "errors": []}, report
    assert world.notices() == []


def test_given_an_impaired_member_when_the_scheduled_event_arrives_then_replaced_and_notice():
    world = World("rt-reconcile", own_account=True)
    group, instances = world.group(3, MANAGED)
    world.impair(instances[2], "instance")
    with Runtime(FUNCTION, world.env()) as runtime:
        report = runtime.invoke(load_event(FUNCTION, "scheduled.json"))
        again = runtime.invoke(load_event(FUNCTION, "scheduled.json"))
    assert [f["status"] for f in report["findings"]] == ["acted"], report
    assert world.health(instances[2]) == "UNHEALTHY"
    (notice,) = world.notices()
    assert f"asg {group}: replaced {instances[2]}" in notice["subject"], notice
    assert "failed its EC2 instance status check" in notice["body"], notice
    assert [f["status"] for f in again["findings"]] == ["duplicate"], again
    assert again["checked"] == 1 and again["waiting"] == 1, again


def test_given_an_event_for_another_function_when_invoked_then_non_retryable_error():
    world = World("rt-reconcile-wrong", own_account=True)
    with Runtime(FUNCTION, world.env()) as runtime:
        response = runtime.invoke(load_event("instance-healer", "asg-instance-stopped.json"))
    assert response["errorType"] == "NonRetryable", response
    assert "unsupported event: source `aws.ec2`" in response["errorMessage"], response


def test_given_a_dead_letter_when_redriven_then_its_function_handles_it_and_the_message_is_deleted():
    world = World("rt-redrive")
    group, instances = world.group(2, MANAGED)
    world.stop(instances[0])
    dlq = world.sqs.create_queue(QueueName=f"{world.name}-dlq")["QueueUrl"]
    event = load_event("instance-healer", "asg-instance-stopped.json", **{"instance-id": instances[0]})
    arn = "arn:aws:lambda:us-east-1:123456789012:function:instance-healer"
    world.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(event),
                           MessageAttributes={"TARGET_ARN": {"DataType": "String", "StringValue": arn}})
    with Runtime("instance-healer", world.env()) as healer:
        router = LambdaRouter({"instance-healer": healer})
        try:
            env = {**world.env(), "MEDIC_DLQ_URL": dlq, "AWS_ENDPOINT_URL_LAMBDA": router.url}
            dry = medic_cli("redrive", "--dry-run", env=env)
            assert dry.returncode == 0, dry.stderr
            assert dry.stdout.startswith("would-redrive"), dry.stdout
            assert router.invoked == [] and world.health(instances[0]) == "HEALTHY"

            done = medic_cli("redrive", env=env)
        finally:
            router.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("redriven"), done.stdout
    assert f"instance-healer answered acted [replace] {instances[0]}: replaced" in done.stdout, done.stdout
    assert router.invoked == ["instance-healer"]
    assert world.health(instances[0]) == "UNHEALTHY"
    depth = world.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"
    (notice,) = world.notices()
    assert f"asg {group}: replaced {instances[0]}" in notice["subject"], notice
