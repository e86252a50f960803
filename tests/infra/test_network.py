"""Staging and prod run the functions in a VPC whose only way to the internet is the Converge host; dev has none.

The picture and the reasons: infra/network.py and docs/network-and-scanners.md.
"""

import json
from urllib.parse import urlsplit

import pytest

from infra import REPO_ROOT
from infra import config as environments
from infra.concurrency import CALL_PROCESSOR_CONCURRENCY, RESERVED_CONCURRENCY, SCHEDULED_STEP_CONCURRENCY
from infra.network import (
    CARD_DATA_STEPS,
    CARD_DATA_SUBNET_STEPS,
    EVENT_PUBLISHER,
    INTERNAL_ENDPOINTS,
    NETWORK_DESCRIBE_ACTIONS,
    NETWORK_INTERFACE_ACTIONS,
    SERVICE_ENDPOINTS,
    SYNC_FINDER,
)
from infra.scanners import checkov_skips
from payments import topology
from tests.infra.conftest import synthesized
from tests.infra.test_stack import logical_id, resources

CARD_DATA = {"Intake", "Tokenize", "CallProcessor"}  # receive a card, or decrypt one (and send it to Converge)
# What runs in the CardData subnets: the card-data functions, and the functions that hold no card but call
# Converge (and KMS, Secrets Manager or Step Functions) as CallProcessor does: CallOperationProcessor, status
# sync's ResolveUnresolved, reconciliation's ListProcessorWindow.
CARD_DATA_SUBNET = CARD_DATA | {"CallOperationProcessor", "ResolveUnresolved", "ListProcessorWindow"}
# The functions that hold a connection to Converge.
PROCESSOR_CALLERS = {"CallProcessor", "CallOperationProcessor", "ResolveUnresolved", "ListProcessorWindow"}
# The AWS services each card-data function calls (lambdas/), by interface endpoint; DynamoDB has the gateway.
INTERFACE_SERVICES = {"kms", "states", "secretsmanager"}
# LedgerEvents, in the Internal subnets, puts events on the payments bus: EventBridge's endpoint, its alone.
INTERNAL_INTERFACE_SERVICES = {"events"}
ALL_ZONES = "0.0.0.0/0"


@pytest.fixture(scope="module")
def staging(tmp_path_factory):
    return synthesized("staging", tmp_path_factory.mktemp("staging"))


@pytest.fixture(params=["staging", "prod"])
def in_vpc(request, staging, prod):
    """(environment name, stack, template) for each environment whose functions run in the VPC."""
    stack, template, _ = {"staging": staging, "prod": prod}[request.param]
    return request.param, stack, template.to_json()["Resources"]


def of_type(resources_by_id, kind):
    return {name: r for name, r in resources_by_id.items() if r["Type"] == kind}


def subnets(resources_by_id, group):
    """{zone: subnet logical ID} of one subnet group (CDK tags each subnet with its group's name)."""
    found = {}
    for name, subnet in of_type(resources_by_id, "AWS::EC2::Subnet").items():
        tags = {t["Key"]: t["Value"] for t in subnet["Properties"]["Tags"]}
        if tags["aws-cdk:subnet-name"] == group:
            found[subnet["Properties"]["AvailabilityZone"]] = name
    return found


def route_table_of(resources_by_id, subnet_id):
    [table] = [
        a["Properties"]["RouteTableId"]["Ref"]
        for a in of_type(resources_by_id, "AWS::EC2::SubnetRouteTableAssociation").values()
        if a["Properties"]["SubnetId"] == {"Ref": subnet_id}
    ]
    return table


def routes_of(resources_by_id, table_id):
    return [
        r["Properties"]
        for r in of_type(resources_by_id, "AWS::EC2::Route").values()
        if r["Properties"]["RouteTableId"] == {"Ref": table_id}
    ]


def evaluate(value, endpoint_ids):
    """CloudFormation's Fn::Select/Split/Join over the firewall's EndpointIds, as CloudFormation evaluates them."""
    if isinstance(value, str):
        return value
    [(function, arguments)] = value.items()
    if function == "Fn::GetAtt":
        assert arguments[1] == "EndpointIds"
        return list(endpoint_ids)
    if function == "Fn::Join":
        separator, parts = arguments
        return separator.join(evaluate(parts, endpoint_ids))
    if function == "Fn::Split":
        separator, text = arguments
        return evaluate(text, endpoint_ids).split(separator)
    if function == "Fn::Select":
        index, listed = arguments
        return evaluate(listed, endpoint_ids)[int(index)]
    raise AssertionError(f"unexpected {function}")


def service_of(service_name):
    """The service's short name in com.amazonaws.<region>.<service> (a string, or an Fn::Join of one)."""
    if isinstance(service_name, dict):
        service_name = "".join(p if isinstance(p, str) else "<region>" for p in service_name["Fn::Join"][1])
    return service_name.rsplit(".", 1)[-1]


def cdk_json_environments():
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"][environments.CONTEXT_KEY]


# The setting ----------------------------------------------------------------------------------------


def test_dev_runs_outside_a_vpc_and_staging_and_prod_inside_one_over_two_zones_of_their_region():
    configured = cdk_json_environments()
    assert configured["dev"]["function_network"] == "none"
    for name in ("staging", "prod"):
        config = environments.load(name)
        assert config.functions_in_vpc, name
        assert len(config.vpc_availability_zones) >= 2, name
        assert all(zone.startswith(config.region) for zone in config.vpc_availability_zones), name


def test_an_unknown_function_network_is_refused():
    configured = cdk_json_environments()
    config = environments.load("prod", {**configured, "prod": {**configured["prod"], "function_network": "public"}})
    with pytest.raises(SystemExit, match="function_network must be one of"):
        config.functions_in_vpc  # noqa: B018 - the property validates


def test_the_card_data_functions_are_the_intake_tokenize_and_call_processor():
    assert CARD_DATA_STEPS == CARD_DATA
    assert CARD_DATA_SUBNET_STEPS == CARD_DATA_SUBNET
    assert {spec.step for spec in topology.ALL_FUNCTIONS if spec.uses_processor} == PROCESSOR_CALLERS
    # Interface endpoints serve the card-data subnets: only the functions there may call those services, and
    # FindUnresolved (Internal subnets) Step Functions, admitted by a group of the endpoint's own.
    assert set().union(*(spec.callers for spec in SERVICE_ENDPOINTS.values())) <= CARD_DATA_SUBNET | {SYNC_FINDER}
    assert SYNC_FINDER not in CARD_DATA_SUBNET
    assert {spec.iam_prefix for spec in SERVICE_ENDPOINTS.values()} == INTERFACE_SERVICES
    assert {spec.step for spec in topology.ALL_FUNCTIONS} >= CARD_DATA_SUBNET
    # CallOperationProcessor and ResolveUnresolved seal audit payloads (KMS) and read the Converge credentials, as
    # CallProcessor; ListProcessorWindow only reads the credentials (its listings go to S3, through the gateway).
    assert {"CallProcessor", "CallOperationProcessor", "ResolveUnresolved"} <= SERVICE_ENDPOINTS["Kms"].callers
    assert "ListProcessorWindow" not in SERVICE_ENDPOINTS["Kms"].callers
    assert SERVICE_ENDPOINTS["SecretsManager"].callers == PROCESSOR_CALLERS
    # The intake starts (and describes) payments; ResolveUnresolved describes a payment's or an operation's
    # execution; FindUnresolved lists status sync's running executions.
    assert SERVICE_ENDPOINTS["StepFunctions"].callers == {"Intake", "ResolveUnresolved", SYNC_FINDER}
    # LedgerEvents holds no card: it runs in the Internal subnets, and only it calls their EventBridge endpoint.
    assert EVENT_PUBLISHER == topology.EVENTS_FUNCTION.step == "LedgerEvents"
    assert EVENT_PUBLISHER not in CARD_DATA_SUBNET
    assert {spec.iam_prefix for spec in INTERNAL_ENDPOINTS.values()} == INTERNAL_INTERFACE_SERVICES
    assert set().union(*(spec.callers for spec in INTERNAL_ENDPOINTS.values())) == {EVENT_PUBLISHER}


def test_synth_looks_nothing_up_the_zones_come_from_cdk_json(prod):
    # A context lookup would make `cdk synth` ask AWS for the account's zones (credentials, network).
    _, _, outdir = prod
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert "missing" not in manifest


# Where each function runs ---------------------------------------------------------------------------


def test_card_data_functions_run_in_the_card_data_subnets_with_the_https_only_group(in_vpc):
    _, stack, by_id = in_vpc
    card_subnets = subnets(by_id, "CardData")
    internal_subnets = subnets(by_id, "Internal")
    card_group = logical_id(stack, stack.network.card_data_group)
    internal_group = logical_id(stack, stack.network.internal_group)
    events_group = logical_id(stack, stack.network.events_group)
    finder_group = logical_id(stack, stack.network.finder_group)
    for spec in topology.ALL_FUNCTIONS:
        vpc_config = by_id[logical_id(stack, stack.steps.functions[spec.step])]["Properties"]["VpcConfig"]
        own_group = {EVENT_PUBLISHER: events_group, SYNC_FINDER: finder_group}
        expected_subnets, group = (
            (card_subnets, card_group)
            if spec.step in CARD_DATA_SUBNET
            # LedgerEvents and FindUnresolved: the Internal subnets, each in a group of its own (the one the
            # EventBridge endpoint, or the Step Functions endpoint, admits).
            else (internal_subnets, own_group.get(spec.step, internal_group))
        )
        assert vpc_config["SubnetIds"] == [{"Ref": s} for s in expected_subnets.values()], spec.step
        assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [group, "GroupId"]}], spec.step


def test_function_security_groups_send_https_only_and_accept_nothing(in_vpc):
    _, stack, by_id = in_vpc
    for group in (
        stack.network.card_data_group,
        stack.network.internal_group,
        stack.network.events_group,
        stack.network.finder_group,
    ):
        properties = by_id[logical_id(stack, group)]["Properties"]
        [egress] = properties["SecurityGroupEgress"]
        assert {k: egress[k] for k in ("CidrIp", "IpProtocol", "FromPort", "ToPort")} == {
            "CidrIp": ALL_ZONES,
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
        }
        assert "SecurityGroupIngress" not in properties
        group_id = {"Fn::GetAtt": [logical_id(stack, group), "GroupId"]}
        for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            assert all(r["Properties"]["GroupId"] != group_id for r in of_type(by_id, kind).values())


def test_the_interface_endpoints_accept_https_from_the_card_data_functions_only(in_vpc):
    _, stack, by_id = in_vpc
    endpoint_group = {"Fn::GetAtt": [logical_id(stack, stack.network.endpoint_group), "GroupId"]}
    card_group = {"Fn::GetAtt": [logical_id(stack, stack.network.card_data_group), "GroupId"]}
    rules = [r["Properties"] for r in of_type(by_id, "AWS::EC2::SecurityGroupIngress").values()]
    [rule] = [r for r in rules if r["GroupId"] == endpoint_group]
    assert (rule["SourceSecurityGroupId"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == (
        card_group,
        "tcp",
        443,
        443,
    )
    properties = by_id[logical_id(stack, stack.network.endpoint_group)]["Properties"]
    assert "SecurityGroupIngress" not in properties
    # CDK's placeholder for "no egress at all" (a rule no packet matches).
    assert [e["CidrIp"] for e in properties["SecurityGroupEgress"]] == ["255.255.255.255/32"]


def test_the_eventbridge_endpoint_accepts_https_from_ledger_events_only(in_vpc):
    # The other internal functions (ledger steps, Normalize, Audit) still reach nothing but DynamoDB.
    _, stack, by_id = in_vpc
    internal_endpoints = {"Fn::GetAtt": [logical_id(stack, stack.network.internal_endpoint_group), "GroupId"]}
    events_group = {"Fn::GetAtt": [logical_id(stack, stack.network.events_group), "GroupId"]}
    rules = [r["Properties"] for r in of_type(by_id, "AWS::EC2::SecurityGroupIngress").values()]
    [rule] = [r for r in rules if r["GroupId"] == internal_endpoints]
    assert (rule["SourceSecurityGroupId"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == (
        events_group,
        "tcp",
        443,
        443,
    )
    # No other group admits LedgerEvents' group, and the internal functions' group is admitted nowhere.
    internal_group = {"Fn::GetAtt": [logical_id(stack, stack.network.internal_group), "GroupId"]}
    assert [r for r in rules if r["SourceSecurityGroupId"] == events_group] == [rule]
    assert [r for r in rules if r["SourceSecurityGroupId"] == internal_group] == []
    properties = by_id[logical_id(stack, stack.network.internal_endpoint_group)]["Properties"]
    assert "SecurityGroupIngress" not in properties
    assert [e["CidrIp"] for e in properties["SecurityGroupEgress"]] == ["255.255.255.255/32"]


def test_every_vpc_function_role_may_manage_its_network_interfaces(in_vpc, dev):
    _, stack, by_id = in_vpc
    for step, role in stack.steps.roles.items():
        statements = [
            s
            for p in of_type(by_id, "AWS::IAM::Policy").values()
            if {"Ref": logical_id(stack, role)} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        by_sid = {s.get("Sid"): s for s in statements}
        assert set(by_sid["NetworkInterfaces"]["Action"]) == NETWORK_INTERFACE_ACTIONS, step
        assert by_sid["NetworkInterfaces"]["Resource"]["Fn::Join"][1][-1] == ":*/*"  # this account and region
        assert set(by_sid["NetworkInterfacesDescribe"]["Action"]) == NETWORK_DESCRIBE_ACTIONS, step
        assert by_sid["NetworkInterfacesDescribe"]["Resource"] == "*"
    # Outside a VPC no role gets them.
    _, dev_template, _ = dev
    assert "ec2:" not in json.dumps(resources(dev_template, "AWS::IAM::Policy"))


# Routing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["as zones", "reversed"])
def test_each_zone_routes_card_data_out_and_back_through_its_own_firewall_endpoint(in_vpc, order):
    _, stack, by_id = in_vpc
    zones = list(stack.availability_zones)
    # EndpointIds lists "<zone>:<vpce-id>" in no particular order: the routes must find the right one either way.
    endpoint_ids = [f"{zone}:vpce-{zone}" for zone in zones]
    if order == "reversed":
        endpoint_ids.reverse()
    card_subnets, egress_subnets = subnets(by_id, "CardData"), subnets(by_id, "Egress")
    firewall_subnets, internal_subnets = subnets(by_id, "Firewall"), subnets(by_id, "Internal")
    assert set(card_subnets) == set(egress_subnets) == set(firewall_subnets) == set(internal_subnets) == set(zones)
    nats = {n["Properties"]["SubnetId"]["Ref"]: name for name, n in of_type(by_id, "AWS::EC2::NatGateway").items()}
    [gateway] = of_type(by_id, "AWS::EC2::InternetGateway")
    for zone in zones:
        # Card data: everything not in the VPC (or DynamoDB's prefix list) goes to this zone's firewall endpoint.
        [default] = [
            r for r in routes_of(by_id, route_table_of(by_id, card_subnets[zone])) if "DestinationCidrBlock" in r
        ]
        assert default["DestinationCidrBlock"] == ALL_ZONES
        assert evaluate(default["VpcEndpointId"], endpoint_ids) == f"vpce-{zone}"
        # Firewall subnet: on to this zone's NAT gateway.
        [onward] = routes_of(by_id, route_table_of(by_id, firewall_subnets[zone]))
        assert (onward["DestinationCidrBlock"], onward["NatGatewayId"]) == (
            ALL_ZONES,
            {"Ref": nats[egress_subnets[zone]]},
        )
        # Egress subnet: the internet gateway, and the replies for this zone's card-data range back to its firewall.
        egress_routes = routes_of(by_id, route_table_of(by_id, egress_subnets[zone]))
        [internet] = [r for r in egress_routes if r["DestinationCidrBlock"] == ALL_ZONES]
        assert internet["GatewayId"] == {"Ref": gateway}
        [back] = [r for r in egress_routes if r["DestinationCidrBlock"] != ALL_ZONES]
        assert back["DestinationCidrBlock"] == by_id[card_subnets[zone]]["Properties"]["CidrBlock"]
        assert evaluate(back["VpcEndpointId"], endpoint_ids) == f"vpce-{zone}"
        # Internal subnets: no route out of the VPC at all.
        assert routes_of(by_id, route_table_of(by_id, internal_subnets[zone])) == []


def test_the_firewall_has_an_endpoint_in_each_zone_and_nat_gateways_sit_in_the_egress_subnets(in_vpc):
    name, _, by_id = in_vpc
    [firewall] = of_type(by_id, "AWS::NetworkFirewall::Firewall").values()
    properties = firewall["Properties"]
    mapped = [m["SubnetId"] for m in properties["SubnetMappings"]]
    assert mapped == [{"Ref": s} for s in subnets(by_id, "Firewall").values()]
    assert properties["DeleteProtection"] is (name == "prod")
    nats = of_type(by_id, "AWS::EC2::NatGateway").values()
    assert sorted(n["Properties"]["SubnetId"]["Ref"] for n in nats) == sorted(subnets(by_id, "Egress").values())
    # No subnet hands out public addresses: the NAT gateways have Elastic IPs.
    assert all(
        s["Properties"].get("MapPublicIpOnLaunch") is not True for s in of_type(by_id, "AWS::EC2::Subnet").values()
    )


# The allow-list -------------------------------------------------------------------------------------


def test_the_firewall_admits_tls_to_the_converge_host_of_the_environment_and_drops_everything_else(in_vpc):
    name, _, by_id = in_vpc
    converge_host = urlsplit(cdk_json_environments()[name]["converge_url"]).hostname
    assert converge_host == {"staging": "api.demo.convergepay.com", "prod": "api.convergepay.com"}[name]
    [rule_group_id] = of_type(by_id, "AWS::NetworkFirewall::RuleGroup")
    rule_group = by_id[rule_group_id]["Properties"]
    assert rule_group["Type"] == "STATEFUL"
    assert rule_group["RuleGroup"]["RulesSource"] == {
        "RulesSourceList": {"GeneratedRulesType": "ALLOWLIST", "TargetTypes": ["TLS_SNI"], "Targets": [converge_host]}
    }
    assert rule_group["RuleGroup"]["StatefulRuleOptions"] == {"RuleOrder": "STRICT_ORDER"}
    [policy] = of_type(by_id, "AWS::NetworkFirewall::FirewallPolicy").values()
    firewall_policy = policy["Properties"]["FirewallPolicy"]
    # Every packet to the stateful engine; what the allow-list does not pass is dropped, and alerted.
    assert firewall_policy["StatelessDefaultActions"] == ["aws:forward_to_sfe"]
    assert firewall_policy["StatelessFragmentDefaultActions"] == ["aws:forward_to_sfe"]
    assert firewall_policy["StatefulEngineOptions"] == {"RuleOrder": "STRICT_ORDER"}
    assert firewall_policy["StatefulDefaultActions"] == ["aws:drop_established", "aws:alert_established"]
    assert firewall_policy["StatefulRuleGroupReferences"] == [
        {"ResourceArn": {"Fn::GetAtt": [rule_group_id, "RuleGroupArn"]}, "Priority": 1}
    ]
    assert "StatelessRuleGroupReferences" not in firewall_policy


def test_the_firewall_logs_its_alerts_to_an_encrypted_log_group(in_vpc):
    _, stack, by_id = in_vpc
    [logging] = of_type(by_id, "AWS::NetworkFirewall::LoggingConfiguration").values()
    [destination] = logging["Properties"]["LoggingConfiguration"]["LogDestinationConfigs"]
    alerts = logical_id(stack, stack.network.firewall_alerts)
    assert (destination["LogType"], destination["LogDestinationType"]) == ("ALERT", "CloudWatchLogs")
    assert destination["LogDestination"] == {"logGroup": {"Ref": alerts}}
    assert "KmsKeyId" in by_id[alerts]["Properties"]


def test_vpc_flow_logs_record_all_traffic_delivered_by_a_role_only_this_accounts_flow_logs_assume(in_vpc):
    _, stack, by_id = in_vpc
    [flow_log] = of_type(by_id, "AWS::EC2::FlowLog").values()
    properties = flow_log["Properties"]
    assert (properties["ResourceType"], properties["TrafficType"]) == ("VPC", "ALL")
    assert properties["LogGroupName"] == {"Ref": logical_id(stack, stack.network.flow_logs)}
    [role] = stack.network.roles
    [trust] = by_id[logical_id(stack, role)]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1][-1] == ":vpc-flow-log/*"


# Endpoints ------------------------------------------------------------------------------------------


def test_aws_is_reached_through_endpoints_that_admit_this_accounts_principals_and_resources_only(in_vpc):
    _, stack, by_id = in_vpc
    endpoints = of_type(by_id, "AWS::EC2::VPCEndpoint").values()
    by_service = {service_of(e["Properties"]["ServiceName"]): e["Properties"] for e in endpoints}
    assert set(by_service) == INTERFACE_SERVICES | INTERNAL_INTERFACE_SERVICES | {"dynamodb", "s3"}
    card_subnets = [{"Ref": s} for s in subnets(by_id, "CardData").values()]
    internal_subnets = [{"Ref": s} for s in subnets(by_id, "Internal").values()]
    endpoint_group = {"Fn::GetAtt": [logical_id(stack, stack.network.endpoint_group), "GroupId"]}
    internal_endpoint_group = {"Fn::GetAtt": [logical_id(stack, stack.network.internal_endpoint_group), "GroupId"]}
    for services, where, group in (
        (INTERFACE_SERVICES, card_subnets, endpoint_group),
        (INTERNAL_INTERFACE_SERVICES, internal_subnets, internal_endpoint_group),
    ):
        for service in services:
            endpoint = by_service[service]
            assert endpoint["VpcEndpointType"] == "Interface"
            assert endpoint["PrivateDnsEnabled"] is True  # the SDK's default host name resolves to it
            assert endpoint["SubnetIds"] == where, service
            # Step Functions' also admits FindUnresolved, through a group of its own (test_status_sync_stack).
            finder = {"Fn::GetAtt": [logical_id(stack, stack.network.finder_endpoint_group), "GroupId"]}
            assert endpoint["SecurityGroupIds"] == [group, *([finder] if service == "states" else [])], service
    # DynamoDB and S3: gateways, in the route tables of the function subnets (not the egress or firewall ones).
    function_subnets = [*subnets(by_id, "CardData").values(), *subnets(by_id, "Internal").values()]
    for service in ("dynamodb", "s3"):
        gateway = by_service[service]
        assert gateway["VpcEndpointType"] == "Gateway"
        assert sorted(t["Ref"] for t in gateway["RouteTableIds"]) == sorted(
            route_table_of(by_id, s) for s in function_subnets
        )
    # S3: this account's principals, on the report bucket only (an S3 ARN names no account: the bucket's own
    # name does, and aws:ResourceAccount).
    [statement] = by_service.pop("s3")["PolicyDocument"]["Statement"]
    bucket = f"arn:<AWS::Partition>:s3:::payment-workflow-{{env}}-reports-{stack.account}-{stack.region}"
    assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}
    assert statement["Action"] == "s3:*"
    account = {"Ref": "AWS::AccountId"}
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account, "aws:ResourceAccount": account}}
    rendered = [
        "".join(p if isinstance(p, str) else "<" + p["Ref"] + ">" for p in r["Fn::Join"][1])
        for r in statement["Resource"]
    ]
    name = bucket.format(env=stack.config.name)
    assert rendered == [name, f"{name}/*"]
    for service, endpoint in by_service.items():
        [statement] = endpoint["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}
        assert statement["Action"] == f"{service}:*"
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
        parts = statement["Resource"]["Fn::Join"][1]
        assert parts[:5] == ["arn:", {"Ref": "AWS::Partition"}, f":{service}:", {"Ref": "AWS::Region"}, ":"]
        assert parts[5] == {"Ref": "AWS::AccountId"}, service  # this account's resources only


# dev ------------------------------------------------------------------------------------------------


def test_dev_has_no_vpc_and_says_why_to_checkov(dev):
    stack, template, _ = dev
    by_id = template.to_json()["Resources"]
    assert stack.network is None
    assert not [r for r in by_id.values() if r["Type"].startswith(("AWS::EC2::", "AWS::NetworkFirewall::"))]
    for step, function in stack.steps.functions.items():
        assert "VpcConfig" not in by_id[logical_id(stack, function)]["Properties"], step
        assert "function_network" in checkov_skips(function)["CKV_AWS_117"], step


# Reserved concurrency and the environment's key -----------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_function_has_its_reserved_concurrency_and_the_processor_callers_the_least(env, dev, prod):
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    functions = resources(template, "AWS::Lambda::Function")
    reserved = {
        spec.step: functions[logical_id(stack, stack.steps.functions[spec.step])]["Properties"].get(
            "ReservedConcurrentExecutions"
        )
        for spec in topology.ALL_FUNCTIONS
    }
    assert reserved == RESERVED_CONCURRENCY
    # Each function that holds a connection to Converge has its own pool, narrower than every other step of a
    # payment or an operation; the scheduled workflows' single-shot steps get SCHEDULED_STEP_CONCURRENCY.
    single_shot = {"FindUnresolved", "PlanReconciliation", "MatchLedger"}
    assert {step: reserved[step] for step in single_shot} == dict.fromkeys(single_shot, SCHEDULED_STEP_CONCURRENCY)
    others = {step: n for step, n in reserved.items() if step not in single_shot}
    assert reserved["CallProcessor"] == CALL_PROCESSOR_CONCURRENCY == min(others.values())
    assert reserved["CallOperationProcessor"] == CALL_PROCESSOR_CONCURRENCY
    assert {step for step, n in reserved.items() if n == CALL_PROCESSOR_CONCURRENCY} == PROCESSOR_CALLERS
    # Lambda keeps 100 of the account's concurrency unreserved: this must fit a 1,000 quota with room.
    assert sum(reserved.values()) == 306  # docs/network-and-scanners.md, infra/concurrency.py
    assert sum(reserved.values()) <= 900 // 2


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_functions_environment_is_encrypted_with_the_key_of_its_log_group(env, dev, prod):
    # The storage key: the one the stack's logs use, never the card-data or audit key.
    stack, template, _ = {"dev": dev, "prod": prod}[env]
    by_id = template.to_json()["Resources"]
    keys = set()
    for step, function in stack.steps.functions.items():
        properties = by_id[logical_id(stack, function)]["Properties"]
        log_group = by_id[properties["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert properties["KmsKeyArn"] == log_group["KmsKeyId"], step
        keys.add(json.dumps(properties["KmsKeyArn"]))
    assert len(keys) == 1
