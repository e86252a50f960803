"""Where the functions run in staging and prod: private subnets, AWS through endpoints, the internet only to Converge.

One VPC over the environment's availability zones (cdk.json "vpc_availability_zones"), four subnet
tiers in each zone:

                                   Internet
                                       |
                               Internet gateway
                                       |
    Egress    (public)    NAT gateway   <- route: CardData CIDR of this zone -> firewall endpoint
                              |  ^
    Firewall  (/28)      Network Firewall endpoint: admits TLS only with SNI = the Converge host,
                              |  ^       drops and logs every other flow (strict order, drop_established)
    CardData  (private)  Intake, Tokenize, CallProcessor,    route: 0.0.0.0/0 -> firewall endpoint
                         CallOperationProcessor,
                         ResolveUnresolved, ListProcessorWindow
                         + interface endpoints: KMS, Step Functions, Secrets Manager (private DNS)
    Internal  (private)  the ledger steps (the payments' and  no route out of the VPC
                         the operations'), Normalize, Audit,
                         LedgerEvents, FindUnresolved,
                         PlanReconciliation, MatchLedger
                         + interface endpoint: EventBridge (private DNS), for LedgerEvents only
    CardData, Internal:  DynamoDB gateway endpoint, S3 gateway endpoint (the report bucket only)
                         (prefix-list routes)

Outbound, a card-data function's packet to Converge leaves its subnet for the firewall endpoint
of its own zone, then the NAT gateway of that zone, then the internet gateway. The reply comes back
to the NAT gateway, whose subnet (Egress) routes the CardData range of that zone to the same
firewall endpoint: both directions cross one firewall endpoint, which its stateful engine needs.
Calls to AWS never reach the firewall: DynamoDB and S3 go through their gateway endpoints (their
prefix-list routes are more specific than 0.0.0.0/0), KMS, Step Functions and Secrets Manager through
interface endpoints inside the VPC (the local route). CloudWatch Logs and X-Ray get no endpoint: Lambda ships
a function's stdout and its trace segments itself (the X-Ray daemon it runs listens on a link-local
address, outside the function's network interface), and Powertools' metrics are log lines (EMF).
(The X-Ray path is reasoned, not yet seen in an account: should staging show no traces from the
card-data functions, add InterfaceVpcEndpointAwsService.XRAY to SERVICE_ENDPOINTS.)

CallOperationProcessor (a capture, void or refund) holds no card: it names the payment's transaction at
Converge. It runs in the CardData subnets all the same, because it needs what CallProcessor needs of
the network: Converge through the firewall, KMS (it seals audit payloads) and Secrets Manager (the
Converge credentials) through the interface endpoints. So do the scheduled workflows' two steps that
call Converge, for the same reason: status sync's ResolveUnresolved (KMS, Secrets Manager, and Step
Functions' DescribeExecution: is the execution that wrote a pending entry still running?) and
reconciliation's ListProcessorWindow (Secrets Manager, and S3 for its listings, through the gateway).
Their other steps (FindUnresolved, PlanReconciliation, MatchLedger) run in the Internal subnets: the
ledger through DynamoDB's gateway, MatchLedger the report bucket through S3's. The S3 gateway endpoint
admits this account's principals on the report bucket only: no other bucket is reachable from the VPC.
FindUnresolved also asks Step Functions whether an earlier status sync run is still at work: it has a
security group of its own, which the Step Functions endpoint (in the CardData subnets; a VPC takes
one private-DNS endpoint per service) admits through a second group of the endpoint's, so it reaches
that endpoint alone, not KMS's or Secrets Manager's.

The functions that never touch card data (ledger steps, Normalize, Audit) run in the VPC as well,
in subnets with no way out but DynamoDB: nothing they hold (amounts, last four digits, processor
replies) can leave for anywhere but this account's tables, and checkov's "Lambda in a VPC" holds
for every function without an exception. It costs nothing: the gateway endpoint is free, and they
use no interface endpoint.

LedgerEvents (the ledger's terminal entries onto the payments bus: infra.events) holds no card either
and runs in the Internal subnets, in a security group of its own. Besides DynamoDB (its idempotency
records, through the gateway) it calls EventBridge's PutEvents, through an interface endpoint in the
Internal subnets that admits its group alone: the other internal functions still reach nothing but
DynamoDB. It never calls DynamoDB Streams or SQS itself: Lambda's poller reads the ledger's stream and
writes the failure queue, outside the function's network.

Security groups: the functions of the CardData subnets may send TCP 443 only; internal functions the
same (their routes end at DynamoDB and S3), LedgerEvents and FindUnresolved too (each in its own group);
the CardData interface endpoints accept 443 from the CardData functions only (the Step Functions one
also from FindUnresolved), the EventBridge endpoint from LedgerEvents only. Every endpoint's policy
admits this account's principals acting on this account's resources only: the endpoints are not a way
to write into someone else's table, key or secret (nor, S3's, to reach any bucket but the reports').
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from aws_cdk import Aws, Fn
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_networkfirewall as networkfirewall
from constructs import Construct

from infra import names
from infra.config import EnvironmentConfig
from infra.log_groups import protected_log_group
from infra.scanners import ignore_cfn_lint
from payments import topology

# What handles a card: the intake receives it, Tokenize and CallProcessor decrypt it (CallProcessor
# sends it to Converge). Only these reach the internet, and only Converge.
CARD_DATA_STEPS = frozenset({topology.INTAKE_FUNCTION.step, "Tokenize", "CallProcessor"})
# What runs in the CardData subnets: the card-data functions, and every function that calls the
# processor (CallOperationProcessor, ResolveUnresolved, ListProcessorWindow: no card, but Converge, and
# KMS or Secrets Manager, as CallProcessor).
CARD_DATA_SUBNET_STEPS = CARD_DATA_STEPS | {spec.step for spec in topology.ALL_FUNCTIONS if spec.uses_processor}
# The one function that reaches EventBridge (through the Internal subnets' endpoint): LedgerEvents.
EVENT_PUBLISHER = topology.EVENTS_FUNCTION.step
# The one Internal function that reaches Step Functions (the CardData subnets' endpoint admits its group):
# status sync's FindUnresolved, which lets one run at a time work.
SYNC_FINDER = "FindUnresolved"

# A private range of its own (nothing is peered with it). /22: four tiers of two zones fit with room.
VPC_CIDR = "10.64.0.0/22"
EGRESS_SUBNETS = "Egress"  # public: the NAT gateways
FIREWALL_SUBNETS = "Firewall"  # the Network Firewall endpoints, nothing else (AWS requires them dedicated)
CARD_DATA_SUBNETS = "CardData"
INTERNAL_SUBNETS = "Internal"

# Stateful rule groups cannot be resized once created: room for a second processor host.
EGRESS_RULE_CAPACITY = 10

# The actions Lambda takes with the function's role to attach it to its subnets (Lambda developer
# guide, "Giving Lambda functions access to resources in a VPC"; the AWSLambdaVPCAccessExecutionRole
# managed policy, less its CloudWatch Logs actions). DescribeNetworkInterfaces and DescribeSubnets
# take no resource; the guide asks for "all resource IDs" of DeleteNetworkInterface.
NETWORK_INTERFACE_ACTIONS = frozenset(
    {
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
)
NETWORK_DESCRIBE_ACTIONS = frozenset({"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"})


@dataclass(frozen=True)
class ServiceEndpoint:
    """An AWS service a function in the VPC calls, reached through an interface endpoint in its subnets."""

    service: ec2.InterfaceVpcEndpointAwsService
    iam_prefix: str  # the service's prefix in IAM actions and ARNs
    resources: str  # this account's resources of the service, as the ARN's resource part
    callers: frozenset[str]  # who calls it (lambdas/), for the reader


SERVICE_ENDPOINTS = {
    # The AWS Encryption SDK: the intake seals the card, Tokenize and CallProcessor open it and seal tokens;
    # CallProcessor, CallOperationProcessor and ResolveUnresolved seal audit payloads.
    "Kms": ServiceEndpoint(
        ec2.InterfaceVpcEndpointAwsService.KMS,
        "kms",
        "key/*",
        frozenset({"Intake", "Tokenize", "CallProcessor", "CallOperationProcessor", "ResolveUnresolved"}),
    ),
    # The intake starts the payment's execution (and describes it on a retry); ResolveUnresolved describes
    # the execution that wrote a pending entry; FindUnresolved (Internal subnets, admitted by a group of its
    # own) lists status sync's running executions and describes its own.
    "StepFunctions": ServiceEndpoint(
        ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
        "states",
        "*",
        frozenset({"Intake", "ResolveUnresolved", SYNC_FINDER}),
    ),
    # Every function that calls the processor reads the Converge credentials (Powertools parameters).
    "SecretsManager": ServiceEndpoint(
        ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        "secretsmanager",
        "secret:*",
        frozenset(spec.step for spec in topology.ALL_FUNCTIONS if spec.uses_processor),
    ),
}
# The interface endpoints of the Internal subnets, each admitting its callers' security group only.
INTERNAL_ENDPOINTS = {
    # LedgerEvents puts each terminal entry's event on the payments bus.
    "EventBridge": ServiceEndpoint(
        ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE, "events", "event-bus/*", frozenset({EVENT_PUBLISHER})
    ),
}


def converge_host(converge_url: str) -> str:
    """The host the firewall admits: the one in CONVERGE_URL."""
    host = urlsplit(converge_url).hostname
    if not host:
        raise ValueError(f"converge_url has no host: {converge_url!r}")
    return host


@dataclass(frozen=True)
class Placement:
    """Where one function runs: its subnets and its security group."""

    subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup


class FunctionNetwork(Construct):
    """The VPC of the module docstring: subnets, firewall, routes, endpoints, security groups, flow logs."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey) -> None:
        """`key`: the key of the stack's log groups (the firewall's alerts and the VPC's flow logs)."""
        super().__init__(scope, construct_id)
        self.config = config
        zones = list(config.vpc_availability_zones)
        if len(zones) < 2:
            raise SystemExit(
                f"environment {config.name!r} runs its functions in a VPC: "
                'name two or more zones in "vpc_availability_zones"'
            )
        self.converge_host = converge_host(config.converge_url)
        self.flow_logs = protected_log_group(
            self, "FlowLogs", name=f"/payment-workflow/{config.name}/vpc-flow-logs", config=config, key=key
        )
        # The confused-deputy guard AWS recommends for the flow-logs service: this account's flow logs only.
        self.flow_logs_role = iam.Role(
            self,
            "FlowLogsDelivery",
            description=f"VPC flow logs of the payment workflow ({config.name}) into their log group",
            assumed_by=iam.ServicePrincipal(
                "vpc-flow-logs.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:ec2:{Aws.REGION}:{Aws.ACCOUNT_ID}:vpc-flow-log/*"
                    },
                },
            ),
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            availability_zones=zones,
            subnet_configuration=[
                # Nothing launched here needs a public address: the NAT gateways get Elastic IPs.
                ec2.SubnetConfiguration(
                    name=EGRESS_SUBNETS, subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=28, map_public_ip_on_launch=False
                ),
                # PRIVATE_WITH_EGRESS: CDK routes 0.0.0.0/0 to the NAT gateway of the zone, as the firewall needs.
                ec2.SubnetConfiguration(
                    name=FIREWALL_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=28
                ),
                # ISOLATED: CDK adds no default route; the card-data one (to the firewall) is added below.
                ec2.SubnetConfiguration(
                    name=CARD_DATA_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=26
                ),
                ec2.SubnetConfiguration(
                    name=INTERNAL_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=26
                ),
            ],
            nat_gateways=len(zones),  # one per zone: a zone's egress does not depend on another zone
            nat_gateway_subnets=ec2.SubnetSelection(subnet_group_name=EGRESS_SUBNETS),
            # CDK would strip the default security group's rules with a custom-resource Lambda of its own
            # (one more function, role and runtime to keep up): nothing here is ever placed in that group.
            restrict_default_security_group=False,
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_logs, self.flow_logs_role),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        for subnet in [*self.vpc.public_subnets, *self.vpc.private_subnets, *self.vpc.isolated_subnets]:
            ignore_cfn_lint(
                subnet,
                "W3010",
                "The zones are named in cdk.json on purpose: the firewall's routes pick each zone's firewall "
                "endpoint out of EndpointIds by the zone's name (firewall_endpoint_in), which must be a literal.",
            )
        self._security_groups()
        self._egress_firewall(config, zones, key)
        self._endpoints()
        self.card_data = Placement(ec2.SubnetSelection(subnet_group_name=CARD_DATA_SUBNETS), self.card_data_group)
        self.internal = Placement(ec2.SubnetSelection(subnet_group_name=INTERNAL_SUBNETS), self.internal_group)
        self.event_publisher = Placement(ec2.SubnetSelection(subnet_group_name=INTERNAL_SUBNETS), self.events_group)
        self.sync_finder = Placement(ec2.SubnetSelection(subnet_group_name=INTERNAL_SUBNETS), self.finder_group)

    def placement(self, step: str) -> Placement:
        if step in CARD_DATA_SUBNET_STEPS:
            return self.card_data
        if step == SYNC_FINDER:
            return self.sync_finder
        return self.event_publisher if step == EVENT_PUBLISHER else self.internal

    @property
    def log_groups(self) -> list[logs.LogGroup]:
        return [self.flow_logs, self.firewall_alerts]

    @property
    def roles(self) -> list[iam.Role]:
        """The roles of the network itself (not the functions'): the flow logs' delivery role."""
        return [self.flow_logs_role]

    def _security_groups(self) -> None:
        self.card_data_group = ec2.SecurityGroup(
            self,
            "CardDataFunctions",
            vpc=self.vpc,
            description=(
                "Intake, Tokenize, CallProcessor, CallOperationProcessor: HTTPS out only "
                "(Converge via firewall, AWS via endpoints)"
            ),
            allow_all_outbound=False,
        )
        self.card_data_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS only")
        self.internal_group = ec2.SecurityGroup(
            self,
            "InternalFunctions",
            vpc=self.vpc,
            description="Ledger steps, Normalize, Audit: HTTPS out only; their subnets route to DynamoDB alone",
            allow_all_outbound=False,
        )
        self.internal_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to DynamoDB only")
        self.events_group = ec2.SecurityGroup(
            self,
            "EventPublisher",
            vpc=self.vpc,
            description="LedgerEvents: HTTPS out only; its subnets reach DynamoDB, EventBridge by its endpoint",
            allow_all_outbound=False,
        )
        self.events_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to DynamoDB and the EventBridge endpoint only"
        )
        self.endpoint_group = ec2.SecurityGroup(
            self,
            "ServiceEndpoints",
            vpc=self.vpc,
            description="Interface endpoints (KMS, Step Functions, Secrets Manager): HTTPS from card-data functions",
            allow_all_outbound=False,
        )
        self.endpoint_group.add_ingress_rule(self.card_data_group, ec2.Port.tcp(443), "Card-data functions")
        self.internal_endpoint_group = ec2.SecurityGroup(
            self,
            "InternalServiceEndpoints",
            vpc=self.vpc,
            description="Interface endpoint of the Internal subnets (EventBridge): HTTPS from LedgerEvents only",
            allow_all_outbound=False,
        )
        self.internal_endpoint_group.add_ingress_rule(self.events_group, ec2.Port.tcp(443), "LedgerEvents")
        self.finder_group = ec2.SecurityGroup(
            self,
            "StatusSyncFinder",
            vpc=self.vpc,
            description="FindUnresolved: HTTPS out only; its subnets reach DynamoDB, Step Functions by its endpoint",
            allow_all_outbound=False,
        )
        self.finder_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to DynamoDB and the Step Functions endpoint only"
        )
        # A second group on the Step Functions endpoint (in the CardData subnets: private DNS admits one endpoint
        # per service in a VPC), admitting FindUnresolved alone; the KMS and Secrets Manager endpoints stay closed
        # to it.
        self.finder_endpoint_group = ec2.SecurityGroup(
            self,
            "StepFunctionsForStatusSync",
            vpc=self.vpc,
            description="Step Functions endpoint: HTTPS from FindUnresolved (Internal subnets) only",
            allow_all_outbound=False,
        )
        self.finder_endpoint_group.add_ingress_rule(self.finder_group, ec2.Port.tcp(443), "FindUnresolved")

    def _egress_firewall(self, config: EnvironmentConfig, zones: list[str], key: kms.IKey) -> None:
        # Domain allow-list on TLS SNI only: card data never travels in clear HTTP, so no HTTP_HOST target
        # (it would admit plaintext HTTP to the host). Strict order with drop_established: whatever the
        # list does not pass is dropped once its handshake is seen (the SNI comes after it), and alerted.
        self.egress_rules = networkfirewall.CfnRuleGroup(
            self,
            "ConvergeOnly",
            rule_group_name=f"payment-workflow-{config.name}-converge-only",
            type="STATEFUL",
            capacity=EGRESS_RULE_CAPACITY,
            description=f"TLS to {self.converge_host} only",
            rule_group=networkfirewall.CfnRuleGroup.RuleGroupProperty(
                rules_source=networkfirewall.CfnRuleGroup.RulesSourceProperty(
                    rules_source_list=networkfirewall.CfnRuleGroup.RulesSourceListProperty(
                        generated_rules_type="ALLOWLIST", target_types=["TLS_SNI"], targets=[self.converge_host]
                    )
                ),
                stateful_rule_options=networkfirewall.CfnRuleGroup.StatefulRuleOptionsProperty(
                    rule_order="STRICT_ORDER"
                ),
            ),
        )
        self.egress_policy = networkfirewall.CfnFirewallPolicy(
            self,
            "EgressPolicy",
            firewall_policy_name=f"payment-workflow-{config.name}-egress",
            firewall_policy=networkfirewall.CfnFirewallPolicy.FirewallPolicyProperty(
                # Every packet goes to the stateful engine; it decides.
                stateless_default_actions=["aws:forward_to_sfe"],
                stateless_fragment_default_actions=["aws:forward_to_sfe"],
                stateful_engine_options=networkfirewall.CfnFirewallPolicy.StatefulEngineOptionsProperty(
                    rule_order="STRICT_ORDER"
                ),
                stateful_default_actions=["aws:drop_established", "aws:alert_established"],
                stateful_rule_group_references=[
                    networkfirewall.CfnFirewallPolicy.StatefulRuleGroupReferenceProperty(
                        resource_arn=self.egress_rules.attr_rule_group_arn, priority=1
                    )
                ],
            ),
        )
        firewall_subnets = self.vpc.select_subnets(subnet_group_name=FIREWALL_SUBNETS).subnets
        self.firewall = networkfirewall.CfnFirewall(
            self,
            "Firewall",
            firewall_name=f"payment-workflow-{config.name}",
            description="Egress of the card-data functions: the Converge host only",
            vpc_id=self.vpc.vpc_id,
            firewall_policy_arn=self.egress_policy.attr_firewall_policy_arn,
            subnet_mappings=[
                networkfirewall.CfnFirewall.SubnetMappingProperty(subnet_id=subnet.subnet_id)
                for subnet in firewall_subnets
            ],
            delete_protection=config.retain_data,
            subnet_change_protection=config.retain_data,
            firewall_policy_change_protection=config.retain_data,
        )
        self.firewall_alerts = protected_log_group(
            self,
            "FirewallAlerts",
            name=f"/aws/vendedlogs/network-firewall/payment-workflow-{config.name}/alerts",
            config=config,
            key=key,
        )
        networkfirewall.CfnLoggingConfiguration(
            self,
            "FirewallLogging",
            firewall_arn=self.firewall.attr_firewall_arn,
            logging_configuration=networkfirewall.CfnLoggingConfiguration.LoggingConfigurationProperty(
                log_destination_configs=[
                    networkfirewall.CfnLoggingConfiguration.LogDestinationConfigProperty(
                        log_type="ALERT",
                        log_destination_type="CloudWatchLogs",
                        log_destination={"logGroup": self.firewall_alerts.log_group_name},
                    )
                ]
            ),
        )
        card_data = {
            s.availability_zone: s for s in self.vpc.select_subnets(subnet_group_name=CARD_DATA_SUBNETS).subnets
        }
        egress = {s.availability_zone: s for s in self.vpc.select_subnets(subnet_group_name=EGRESS_SUBNETS).subnets}
        for index, zone in enumerate(zones, start=1):
            endpoint = firewall_endpoint_in(zone, self.firewall)
            # Out: the card-data subnet's default route goes to the firewall of its zone...
            ec2.CfnRoute(
                self,
                f"CardDataToFirewall{index}",
                route_table_id=card_data[zone].route_table.route_table_id,
                destination_cidr_block="0.0.0.0/0",
                vpc_endpoint_id=endpoint,
            )
            # ...and back: replies reaching the NAT gateway return through that same firewall endpoint.
            ec2.CfnRoute(
                self,
                f"ReturnThroughFirewall{index}",
                route_table_id=egress[zone].route_table.route_table_id,
                destination_cidr_block=card_data[zone].ipv4_cidr_block,
                vpc_endpoint_id=endpoint,
            )

    def _endpoints(self) -> None:
        in_vpc = [
            ec2.SubnetSelection(subnet_group_name=CARD_DATA_SUBNETS),
            ec2.SubnetSelection(subnet_group_name=INTERNAL_SUBNETS),
        ]
        self.dynamodb_endpoint = self.vpc.add_gateway_endpoint(
            "DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets=in_vpc
        )
        self.dynamodb_endpoint.add_to_policy(own_account_only("dynamodb", "table/*"))
        # Reconciliation's listings and reports (ListProcessorWindow in CardData, MatchLedger in Internal).
        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=in_vpc
        )
        self.s3_endpoint.add_to_policy(report_bucket_only(names.report_bucket_name(self, self.config)))
        self.service_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for endpoints, subnets, group in (
            (SERVICE_ENDPOINTS, CARD_DATA_SUBNETS, self.endpoint_group),
            (INTERNAL_ENDPOINTS, INTERNAL_SUBNETS, self.internal_endpoint_group),
        ):
            for name, spec in endpoints.items():
                # The Step Functions endpoint also admits FindUnresolved, from the Internal subnets.
                extra = [self.finder_endpoint_group] if SYNC_FINDER in spec.callers else []
                endpoint = ec2.InterfaceVpcEndpoint(
                    self,
                    name,
                    vpc=self.vpc,
                    service=spec.service,
                    subnets=ec2.SubnetSelection(subnet_group_name=subnets),
                    security_groups=[group, *extra],
                    open=False,  # the endpoint's group admits its callers' group, no one else in the VPC
                    private_dns_enabled=True,  # the SDKs' default host names resolve to the endpoint
                )
                endpoint.add_to_policy(own_account_only(spec.iam_prefix, spec.resources))
                self.service_endpoints[name] = endpoint


def own_account_only(iam_prefix: str, resources: str) -> iam.PolicyStatement:
    """An endpoint policy: this account's principals, on this account's resources of the service in this region."""
    return iam.PolicyStatement(
        sid="ThisAccountOnly",
        principals=[iam.AnyPrincipal()],
        actions=[f"{iam_prefix}:*"],
        resources=[f"arn:{Aws.PARTITION}:{iam_prefix}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resources}"],
        conditions={"StringEquals": {"aws:PrincipalAccount": Aws.ACCOUNT_ID}},
    )


def report_bucket_only(bucket: str) -> iam.PolicyStatement:
    """The S3 gateway endpoint's policy: this account's principals, on the report bucket and its objects only.
    (An S3 ARN names no account: the bucket's own name, with this account and region in it, does.)"""
    arn = names.bucket_arn(bucket)
    return iam.PolicyStatement(
        sid="ReportBucketOnly",
        principals=[iam.AnyPrincipal()],
        actions=["s3:*"],
        resources=[arn, f"{arn}/*"],
        conditions={"StringEquals": {"aws:PrincipalAccount": Aws.ACCOUNT_ID, "aws:ResourceAccount": Aws.ACCOUNT_ID}},
    )


def firewall_endpoint_in(zone: str, firewall: networkfirewall.CfnFirewall) -> str:
    """The firewall endpoint (vpce-...) in `zone`, from EndpointIds, whatever order CloudFormation gives them in.

    EndpointIds is a list of "<zone>:<vpce-id>" in no particular order (CloudFormation reference,
    AWS::NetworkFirewall::Firewall), so it cannot be indexed by zone. Joined with "," and split on
    "<zone>:", the part after the zone starts with its endpoint id, followed by "," and the rest if
    any: the first field of that part split on "," is the id. (Zone names are literal strings here:
    Fn::Split takes no function as its delimiter.)
    """
    listed = Fn.join(",", firewall.attr_endpoint_ids)
    return Fn.select(0, Fn.split(",", Fn.select(1, Fn.split(f"{zone}:", listed))))


def network_interface_statements() -> list[iam.PolicyStatement]:
    """What a function's role needs for Lambda to attach it to its subnets (see NETWORK_INTERFACE_ACTIONS)."""
    return [
        iam.PolicyStatement(
            sid="NetworkInterfaces",
            actions=sorted(NETWORK_INTERFACE_ACTIONS),
            resources=[f"arn:{Aws.PARTITION}:ec2:{Aws.REGION}:{Aws.ACCOUNT_ID}:*/*"],
        ),
        iam.PolicyStatement(sid="NetworkInterfacesDescribe", actions=sorted(NETWORK_DESCRIBE_ACTIONS), resources=["*"]),
    ]
