"""The transformed template (what CloudFormation deploys): the operability it promises exists,
and every EventBridge-shaped file in events/ reaches exactly its own function through the real
rule patterns, checked by moto's EventBridge (put_events -> rule -> SQS target); the member
account template (templates/member.yaml) forwards exactly those events, and its role can be
assumed by medic's function roles only, inside the organisation."""

import json
import os
import uuid
from pathlib import Path

import boto3
import pytest

from samtranslator.yaml_helper import yaml_parse
from transform import transformed

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
FUNCTIONS = {
    "InstanceHealerFunction": "instance-healer",
    "AlarmResponderFunction": "alarm-responder",
    "RdsRerouterFunction": "rds-rerouter",
    "NotifierFunction": "notifier",
    "ReconcilerFunction": "reconciler",
}
# The deployment the patterns are checked for: alarm names in the files start with web-prod-.
PARAMETERS = {"AlarmNamePrefix": "web-prod-"}
# Valid events the rules keep away from medic on purpose; each must reach no function at all.
FILTERED_BY_DESIGN = {
    "instance-healer/instance-running.json": "the rule forwards only states medic heals",
    "alarm-responder/eventbridge-ok-transition.json": "OK transitions are forwarded only with NotifyOnOk=true",
    "rds-rerouter/instance-unknown-event-id.json": "the rule forwards only the EventIDs medic handles",
    "rds-rerouter/snapshot-event.json": "snapshot events are not DB instance or cluster events",
    "reconciler/scheduled.json": "a schedule invokes the reconciler, no event pattern",
}


# The member template's forwarding rules, by the function whose central rule they mirror.
MEMBER_RULES = {
    "ForwardInstanceStateChange": "instance-healer",
    "ForwardAlarmStateChange": "alarm-responder",
    "ForwardDbEvent": "rds-rerouter",
    "ForwardAutoScalingActivity": "notifier",
    "ForwardHealthEvent": "notifier",
}


@pytest.fixture(scope="module")
def template() -> dict:
    return transformed()


@pytest.fixture(scope="module")
def member() -> dict:
    return yaml_parse((ROOT / "templates" / "member.yaml").read_text())


def resources(template: dict, kind: str) -> dict:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_dashboard_and_alarms_on_medic_itself_exist_and_notify_the_ops_topic(template):
    dashboards = resources(template, "AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = json.dumps(dashboards["Dashboard"]["Properties"]["DashboardBody"])
    for metric in ("Remediations", "Skipped", "BreakerOpen", "DecisionLatency", "ApproximateNumberOfMessagesVisible", "Errors", "Duration", "TimeToHeal"):
        assert metric in body, metric
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for function in FUNCTIONS:
        alarm = alarms[f"{function}ErrorsAlarm"]["Properties"]
        assert (alarm["MetricName"], alarm["Dimensions"][0]["Value"]) == ("Errors", {"Ref": function})
    assert alarms["DeadLetterQueueAlarm"]["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    breaker = alarms["BreakerOpenAlarm"]["Properties"]["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in breaker if "MetricStat" in m} == {"BreakerOpen"}
    for name in ("DeadLetterQueueAlarm", "BreakerOpenAlarm", *(f"{f}ErrorsAlarm" for f in FUNCTIONS)):
        assert alarms[name]["Properties"]["AlarmActions"] == [{"Ref": "OpsTopic"}], name
    critical = template["Resources"]["CriticalNoticeSubscription"]["Properties"]
    assert critical["FilterPolicy"] == {"severity": ["critical"]}


def test_functions_are_hardened(template):
    lambdas = resources(template, "AWS::Lambda::Function")
    log_groups = resources(template, "AWS::Logs::LogGroup")
    for function in FUNCTIONS:
        properties = lambdas[function]["Properties"]
        assert properties["LoggingConfig"]["LogFormat"] == "JSON", function
        assert "ReservedConcurrentExecutions" in properties, function
        assert properties["KmsKeyArn"] == {"Fn::GetAtt": ["MedicKey", "Arn"]}, function
        group = log_groups[f"{function}Logs"]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"} and "KmsKeyId" in group, function
    invoke_configs = resources(template, "AWS::Lambda::EventInvokeConfig")
    destinations = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"]["DestinationConfig"]["OnFailure"] for c in invoke_configs.values()}
    assert set(destinations) == set(FUNCTIONS), "an on-failure destination on every function"
    for rule_name, rule in resources(template, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            assert "DeadLetterConfig" in target, f"{rule_name}: every EventBridge target has a DLQ"
    for kind in ("AWS::SNS::Topic", "AWS::SQS::Queue"):
        for name, resource in resources(template, kind).items():
            assert resource["Properties"]["KmsMasterKeyId"] == {"Ref": "MedicKey"}, name


def resolve(value, template: dict, overrides: dict | None = None):
    """Resolves Ref to a parameter and Fn::If over the template's conditions, with PARAMETERS
    (and `overrides`) over the parameters' defaults."""
    parameters = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()} | PARAMETERS | (overrides or {})

    def condition(name: str) -> bool:
        return evaluate(template["Conditions"][name])

    def evaluate(node):
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" and arg in parameters:
                return parameters[arg]
            if key == "Fn::If":
                return evaluate(arg[1] if condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return evaluate(arg[0]) == evaluate(arg[1])
            if key == "Fn::Not":
                return not evaluate(arg[0])
            if key == "Fn::And":
                return all(evaluate(a) for a in arg)
            if key == "Fn::Join" and isinstance(evaluate(arg[1]), list):
                return arg[0].join(evaluate(arg[1]))
            if key == "Condition":
                return condition(arg)
        if isinstance(node, dict):
            return {k: evaluate(v) for k, v in node.items()}
        if isinstance(node, list):
            return [evaluate(v) for v in node]
        return node

    return evaluate(value)


def eventbridge_files():
    for path in sorted(EVENTS.glob("*/*.json")):
        event = json.loads(path.read_text())
        if "detail-type" in event and "malformed" not in path.name:
            yield f"{path.parent.name}/{path.name}", event


def test_every_eventbridge_event_file_reaches_its_own_function_and_no_other_and_member_rules_forward_exactly_those(
    template, member
):
    assert os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1"), "run with `make test` (moto)"
    events, sqs = boto3.client("events"), boto3.client("sqs")
    run = uuid.uuid4().hex[:6]
    def route(inboxes: dict, key: str, queue: str, rule_name: str, pattern: dict) -> None:
        """The rule `pattern` under a name of this run, sending to the SQS inbox of `key`."""
        if key not in inboxes:
            url = sqs.create_queue(QueueName=f"conformance-{run}-{queue}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            inboxes[key] = (url, arn)
        name = f"conformance-{run}-{rule_name}"[:64]
        events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "inbox", "Arn": inboxes[key][1]}])

    inboxes = {}
    for rule_name, rule in resources(template, "AWS::Events::Rule").items():
        if "ScheduleExpression" in rule["Properties"]:
            continue
        function = rule["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]
        route(inboxes, function, FUNCTIONS[function], rule_name, resolve(rule["Properties"]["EventPattern"], template))
    assert set(inboxes) == set(FUNCTIONS) - {"ReconcilerFunction"}, "every event-driven function has an EventBridge rule"
    forwarded = {}
    member_rules = {n: r for n, r in member["Resources"].items() if r["Type"] == "AWS::Events::Rule"}
    assert set(member_rules) == set(MEMBER_RULES), "a member rule for every central rule"
    for rule_name, rule in member_rules.items():
        function = MEMBER_RULES[rule_name]
        route(forwarded, function, f"member-{function}", rule_name, resolve(rule["Properties"]["EventPattern"], member))

    def drained(url: str) -> int:
        count = 0
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            count += len(messages)
        return count

    reached = {}
    for name, event in eventbridge_files():
        entry = {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
                 "Resources": event.get("resources", [])}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0, name
        reached[name] = sorted(FUNCTIONS[function] for function, (url, _) in inboxes.items() if drained(url))
        by_member = sorted(function for function, (url, _) in forwarded.items() if drained(url))
        assert by_member == reached[name], (name, "a member forwards what the central rules match", by_member)
    assert len(reached) >= 40, "the files were found"
    for name, functions in reached.items():
        expected = [] if name in FILTERED_BY_DESIGN else [name.split("/")[0]]
        assert functions == expected, (name, FILTERED_BY_DESIGN.get(name, "should reach its own function only"), functions)


def test_the_reconciler_runs_on_a_schedule_with_no_retry_and_a_dead_letter_queue(template):
    schedules = [r for r in resources(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert len(schedules) == 1
    rule = schedules[0]["Properties"]
    assert rule["ScheduleExpression"] == {"Fn::Sub": "rate(${ReconcileMinutes} minutes)"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ReconcilerFunction", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0, "the next run is the retry"
    assert template["Parameters"]["ReconcileMinutes"]["Default"] == 5
    environment = template["Resources"]["ReconcilerFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["MEDIC_DLQ_URL"] == {"Ref": "DeadLetterQueue"}
    assert environment["MEDIC_SWEEP_MAX_FINDINGS"] == {"Ref": "SweepMaxFindings"}


def statements(template: dict, role: str) -> dict[str, dict]:
    """The IAM statements of a function's role by Sid (a statement under Fn::If: its first branch)."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if "Sid" in node and "Effect" in node:
                found[node["Sid"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template["Resources"][role]["Properties"].get("Policies", []))
    return found


def test_rule14_iam_matches_the_code(template):
    """Opted-out resources are untouchable even with Scope=all; the healer may create the KMS grant
    StartInstances needs for encrypted volumes; record changes can be limited to named records."""
    opted_out = {
        "InstanceHealerFunctionRole": ({"autoscaling:SetInstanceHealth", "ec2:StartInstances"}, "aws:ResourceTag/medic:managed"),
        "AlarmResponderFunctionRole": ({"autoscaling:SetDesiredCapacity", "autoscaling:SetInstanceHealth",
                                        "ec2:RebootInstances", "ec2:StopInstances"}, "aws:ResourceTag/medic:managed"),
        "RdsRerouterFunctionRole": ({"rds:PromoteReadReplica", "rds:RebootDBInstance"}, "rds:db-tag/medic:managed"),
        "ReconcilerFunctionRole": ({"autoscaling:SetInstanceHealth", "ec2:StartInstances"}, "aws:ResourceTag/medic:managed"),
    }
    for role, (actions, key) in opted_out.items():
        deny = statements(template, role)["NeverActOnOptedOut"]
        assert deny["Effect"] == "Deny", role
        assert actions <= set(deny["Action"]), (role, deny["Action"])
        assert deny["Condition"] == {"StringEqualsIgnoreCase": {key: "false"}}, (role, deny)
        assert "Fn::If" not in json.dumps(deny), f"{role}: the deny holds whatever the Scope"
    clusters = statements(template, "RdsRerouterFunctionRole")["NeverFailOverOptedOutClusters"]
    assert (clusters["Effect"], clusters["Action"]) == ("Deny", "rds:FailoverDBCluster")
    assert clusters["Condition"] == {"StringEqualsIgnoreCase": {"rds:cluster-tag/medic:managed": "false"}}
    grant = statements(template, "InstanceHealerFunctionRole")["CreateGrantsForEncryptedVolumes"]
    assert (grant["Effect"], grant["Action"]) == ("Allow", "kms:CreateGrant")
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    for role in ("RdsRerouterFunctionRole", "ReconcilerFunctionRole"):
        change = json.dumps(statements(template, role)["ChangeOnlyCnameRecordsInTheDbZone"])
        assert "route53:ChangeResourceRecordSetsNormalizedRecordNames" in change and "HasDbRecordNames" in change, (role, change)


def test_org_the_member_role_trusts_only_medics_function_roles_inside_the_organisation(member, template):
    role = member["Resources"]["RemediationRole"]["Properties"]
    assert (role["RoleName"], role["Path"]) == ("medic-remediation", "/medic/")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Effect"], trust["Action"]) == ("Allow", "sts:AssumeRole")
    assert trust["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${MedicAccountId}:root"}}
    assert trust["Condition"]["ArnLike"] == {"aws:PrincipalArn": {"Fn::Sub": "arn:${AWS::Partition}:iam::${MedicAccountId}:role/medic/*"}}
    for external_id in ("", "s3cret"):
        equals = resolve(trust["Condition"]["StringEquals"], member, {"ExternalId": external_id, "OrganizationId": "o-abcdefghij"})
        assert equals["aws:PrincipalOrgID"] == "o-abcdefghij", "never assumable from outside the organisation"
        assert equals.get("sts:ExternalId") == (external_id or None)
    # medic's side, as deployed: the roles that assume it are on the path the trust names, and may
    # assume that role only (inside the organisation, when it is given).
    access = template["Resources"]["MedicMemberAccessPolicy"]
    assert access["Condition"] == "IsCentral"
    (assume,) = access["Properties"]["PolicyDocument"]["Statement"]
    assert (assume["Action"], assume["Resource"]) == ("sts:AssumeRole", {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/medic/medic-remediation"})
    assert resolve(assume["Condition"], template, {"OrganizationId": "o-abcdefghij"}) == {"StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}}
    for function in FUNCTIONS:
        assert template["Resources"][f"{function}Role"]["Properties"]["Path"] == "/medic/", function
    users = [f for f in FUNCTIONS if "MedicMemberAccessPolicy" in json.dumps(template["Resources"][f"{f}Role"]["Properties"]["ManagedPolicyArns"])]
    assert sorted(users) == ["AlarmResponderFunction", "InstanceHealerFunction", "RdsRerouterFunction", "ReconcilerFunction"], \
        "only the functions that act in members (the reconciler sweeps them)"


def test_org_the_central_bus_takes_events_from_the_organisation_or_the_listed_accounts_only(template):
    bus = template["Resources"]["CentralBusPolicy"]
    assert bus["Condition"] == "IsCentral"
    for overrides, principal, condition in [
        ({"Mode": "central", "OrganizationId": "o-abcdefghij"}, "*", {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}),
        ({"Mode": "central", "MemberAccounts": ["111111111111"]}, {"AWS": ["111111111111"]}, {"Ref": "AWS::NoValue"}),
    ]:
        statement = resolve(bus["Properties"]["Statement"], template, overrides)
        assert (statement["Principal"], statement["Condition"]) == (principal, condition), overrides
    for name, rule in resources(template, "AWS::Events::Rule").items():
        if "EventPattern" in rule["Properties"]:
            assert rule["Properties"]["EventBusName"] == {"Fn::If": ["IsCentral", {"Ref": "CentralBus"}, {"Ref": "AWS::NoValue"}]}, name
    variables = template["Resources"]["InstanceHealerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MEDIC_MODE"] == {"Ref": "Mode"} and variables["MEDIC_HOME_ACCOUNT"] == {"Ref": "AWS::AccountId"}


def test_org_the_member_role_carries_no_permission_medics_function_roles_lack(member, template):
    def actions(statement) -> set[str]:
        action = statement["Action"]
        return {action} if isinstance(action, str) else set(action)

    granted = set()
    for function in FUNCTIONS:
        for statement in statements(template, f"{function}Role").values():
            if statement["Effect"] == "Allow":
                granted |= actions(statement)
    member_statements = list(statements(member, "RemediationRole").values())
    member_statements += member["Resources"]["RerouteRecordsPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allowed = set().union(*(actions(s) for s in member_statements if s["Effect"] == "Allow"))
    assert allowed <= granted, allowed - granted
    denied = set().union(*(actions(s) for s in member_statements if s["Effect"] == "Deny"))
    mutating = {a for a in allowed if not a.split(":")[1].startswith(("Describe", "Get", "List"))}
    assert mutating - denied == {"kms:CreateGrant", "route53:ChangeResourceRecordSets"}, "every tagged remediation has its opted-out deny"
