"""The local stack: moto server, Lambda runtime (handlers in worker processes), Converge sandbox, set up as CDK does."""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import boto3
from botocore.config import Config
from moto.core.config import default_user_config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local import function_logs, moto_patches
from local.asl import load_definition
from local.aws_faults import AwsFaultMiddleware
from local.faults import FaultSchedule
from local.lambda_runtime import LambdaRuntime
from local.sandbox import ConvergeSandbox
from local.stream_pump import StreamPump
from payments import events, topology
from payments.processors.converge.client import DEFAULT_LISTING_LIMIT

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_ROOT = REPO_ROOT / "lambdas"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# moto accepts any credentials; these keep a developer's real ones out of every client we make.
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
# Locally, what upstream services would subscribe to the payments bus: one queue that the bus's
# rule delivers every ledger event to (`python -m local events` reads it).
EVENTS_QUEUE = "payment-events"
EVENTS_RULE = "ledger-events-to-queue"
# The operations console's own subscription (local.console): a rule sending every ledger event to a log
# group, as one keeps an event history in AWS. Reading a log takes nothing off anything.
CONSOLE_EVENTS_LOG_GROUP = "/payments/local/ledger-events"
CONSOLE_EVENTS_RULE = "ledger-events-to-log"
# The read-only operations console (local.console), served by the stack's endpoint under this path.
CONSOLE_PATH = "/console"
# GET <endpoint>{CAUGHT_UP_PATH}?timeout=<seconds>: answers once the stream pump has delivered every
# stream record that existed when asked (200), or the timeout passed first (504).
CAUGHT_UP_PATH = "/_local/events/caught-up"
# GET <endpoint>{EXECUTION_ENDED_PATH}?arn=<execution ARN>&timeout=<seconds>: answers once the execution has
# ended (200), at once if it already has, or when the timeout passed first (504). Then DescribeExecution
# has its status and output: a client waits for an execution without polling.
EXECUTION_ENDED_PATH = "/_local/executions/ended"
_DYNAMODB_WRITES = frozenset(
    f"DynamoDB_20120810.{operation}"
    for operation in (
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    )
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObservedRequest:
    """One request that reached the stack's AWS endpoint, from any process, with moto's answer: what
    CloudTrail would see of it. The `/_local/...` routes are not AWS requests and are not observed."""

    method: str
    path: str  # PATH_INFO, percent-decoded
    query: str  # the raw query string
    headers: dict[str, str]  # lower-case names: x-amz-target, user-agent, authorization, content-type...
    body: bytes
    status: int
    response: bytes


RequestObserver = Callable[[ObservedRequest], None]
_LAMBDA_ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
_LAMBDA_FUNCTIONS_PATH = "/2015-03-31/functions/"
_STATES_ROLE_POLICY = _LAMBDA_ROLE_POLICY.replace("lambda.amazonaws.com", "states.amazonaws.com")


class _MotoServer(ThreadedMotoServer):
    """moto's threaded server with the fault middleware in front of its WSGI app, and two routes of
    the local stack's own: whether the stream pump has caught up (for `python -m local events`), and
    whether an execution has ended (for waiting on one without polling). Each AWS request is shown to
    the `observers` once answered (LocalStack.observe_requests)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self.faults = AwsFaultMiddleware(DomainDispatcherApplication(create_backend_app))
        self.pump: StreamPump | None = None
        self.observers: tuple[RequestObserver, ...] = ()
        self.console: Any = None  # the console's WSGI app, once the stack is provisioned
        self.dynamodb_writes = 0  # DynamoDB write requests answered (a write that failed counts too)
        self._counting = threading.Lock()
        # moto's backends are not thread-safe (a Query that iterates a table while a PutItem adds to it
        # fails with "dictionary changed size during iteration"); AWS serves each request atomically.
        # So requests reach the backends one at a time, except those that wait on something else:
        # Lambda Invoke (a handler runs meanwhile, and makes requests of its own) and SQS long polls.
        # Python runs one thread at a time anyway: this costs no throughput.
        self._backends = threading.Lock()

    def _server_entry(self) -> None:
        self._server = make_server(self._ip_address, self._port, self._app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == CAUGHT_UP_PATH:
            timeout = _timeout(environ)
            return _json_answer(start_response, "caught_up", self.pump is not None and self.pump.caught_up(timeout))
        if path == EXECUTION_ENDED_PATH:
            arn = dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("arn", "")
            return _json_answer(start_response, "ended", moto_patches.execution_ended.wait(arn, _timeout(environ)))
        if path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/"):
            return self._console(environ, start_response)
        observers = self.observers
        if observers:
            return self._observed(environ, start_response, observers)
        return self._answer(environ, start_response)

    def _console(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.console is None:
            body = b"The stack is still starting."
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return self.console(environ, start_response)

    def _answer(self, environ: dict[str, Any], start_response: Any) -> Any:
        if _waits(environ):
            answer = self.faults(environ, start_response)
        else:
            with self._backends:
                answer = _read_in_full(self.faults(environ, start_response))
        if environ.get("HTTP_X_AMZ_TARGET") in _DYNAMODB_WRITES:
            with self._counting:  # answered on many threads at once
                self.dynamodb_writes += 1
            if self.pump is not None:
                self.pump.notice_write()  # carried out by now: the fault layer answers writes in full
        return answer

    def _observed(self, environ: dict[str, Any], start_response: Any, observers: tuple[RequestObserver, ...]) -> Any:
        """The answer, read in full so that the observers see it with its request; then the observers."""
        length, stream = environ.get("CONTENT_LENGTH"), environ["wsgi.input"]
        # Without a length, only a chunked body (the server marks it terminated) can be read to its end.
        body = stream.read(int(length)) if length else stream.read() if environ.get("wsgi.input_terminated") else b""
        environ["wsgi.input"] = io.BytesIO(body)
        statuses: list[str] = []

        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        answer = self._answer(environ, start)
        try:
            chunks = list(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        request = ObservedRequest(
            method=environ.get("REQUEST_METHOD", ""),
            path=environ.get("PATH_INFO", ""),
            query=environ.get("QUERY_STRING", ""),
            headers={
                name[5:].replace("_", "-").lower(): str(value)
                for name, value in environ.items()
                if name.startswith("HTTP_")
            }
            | {"content-type": environ.get("CONTENT_TYPE", "")},
            body=body,
            status=int(statuses[-1].split(" ", 1)[0]) if statuses else 0,
            response=b"".join(chunks),
        )
        for observer in observers:
            try:
                observer(request)
            except Exception:  # an observer's fault is not the request's: the caller gets moto's answer
                log.exception("request observer %r failed", observer)
        return chunks


def _waits(environ: dict[str, Any]) -> bool:
    """A request whose answer waits on something other than moto: Lambda Invoke, an SQS ReceiveMessage."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(_LAMBDA_FUNCTIONS_PATH) and path.endswith("/invocations"):
        return True
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target == "AmazonSQS.ReceiveMessage" or "Action=ReceiveMessage" in environ.get("QUERY_STRING", "")


def _read_in_full(answer: Any) -> list[bytes]:
    try:
        return list(answer)
    finally:
        if hasattr(answer, "close"):
            answer.close()


def ask_stack(endpoint_url: str, path: str, query: dict[str, str], timeout: float) -> bool | None:
    """One of the stack's own long-poll routes (CAUGHT_UP_PATH, EXECUTION_ENDED_PATH), waiting up to `timeout`
    seconds: True (200), False (504: not within the timeout), None (the stack cannot say)."""
    url = f"{endpoint_url.rstrip('/')}{path}?{urlencode(query | {'timeout': f'{timeout:g}'})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout + 10) as reply:  # noqa: S310 - the stack's own endpoint
            return bool(next(iter(json.loads(reply.read()).values()), False))
    except urllib.error.HTTPError as error:
        return False if error.code == 504 else None
    except (OSError, ValueError):
        return None


def _timeout(environ: dict[str, Any]) -> float:
    """The request's `timeout` query parameter in seconds, within 0 to 120 (10 if absent or unreadable)."""
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    try:
        return min(max(float(query.get("timeout", "10")), 0.0), 120.0)
    except ValueError:
        return 10.0


def _json_answer(start_response: Any, name: str, value: bool) -> list[bytes]:
    body = json.dumps({name: value}).encode()
    start_response(
        "200 OK" if value else "504 Gateway Timeout",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to use the stack; `serve --ready-file` writes exactly this."""

    endpoint_url: str
    region: str
    state_machine_arn: str
    # Capture, void and refund run on one state machine (the Operation in the input says which).
    capture_state_machine_arn: str
    void_state_machine_arn: str
    refund_state_machine_arn: str
    # Status sync: resolves payments and operations that never ended, or ended with their outcome unknown.
    status_sync_state_machine_arn: str
    ledger_table: str
    audit_table: str
    card_vault_table: str
    intake_function: str
    # The bus every terminal ledger entry is published on, and the queue its rule delivers them to.
    event_bus_name: str
    events_queue_url: str
    kms_key_arn: str
    audit_kms_key_arn: str
    converge_url: str
    converge_credentials: dict[str, str]
    # Daily reconciliation, and the bucket its listings and reports go to.
    reconciliation_state_machine_arn: str = ""
    report_bucket: str = ""
    # The read-only operations console (local.console), served on the endpoint.
    console_url: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def client(self, service: str, config: Config | None = None) -> Any:
        """A client of the stack's endpoint. Without a config, one per service and endpoint, made once and
        shared (boto3 clients are thread-safe): making one costs milliseconds and a connection pool."""
        if config is not None:
            return _new_stack_client(self.endpoint_url, self.region, service, config)
        return _shared_stack_client(self.endpoint_url, self.region, service)


def _new_stack_client(endpoint_url: str, region: str, service: str, config: Config | None = None) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, config=config, **CREDENTIALS)


_stack_clients: dict[tuple[str, str, str], Any] = {}
_stack_clients_lock = threading.Lock()


def _shared_stack_client(endpoint_url: str, region: str, service: str) -> Any:
    key = (endpoint_url, region, service)
    with _stack_clients_lock:
        if key not in _stack_clients:
            _stack_clients[key] = _new_stack_client(endpoint_url, region, service)
        return _stack_clients[key]


class LocalStack:
    """Start with `with LocalStack() as stack:`; `stack.info` then describes it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        echo_function_logs: bool = False,
        converge_read_timeout: float = 5.0,
        converge_listing_limit: int = DEFAULT_LISTING_LIMIT,
    ) -> None:
        self.host = host
        self.port = port
        self.converge_read_timeout = converge_read_timeout
        # The sandbox cuts txnquery listings at this length and the functions page by it, as CDK sets the
        # client's to the terminal's.
        self.converge_listing_limit = converge_listing_limit
        self.logs = function_logs.install(echo=echo_function_logs)
        # A withheld answer (timeout_after_charge) outlasts the client's read timeout.
        self.sandbox = ConvergeSandbox(
            host=host, hold_seconds=max(3.0, 3 * converge_read_timeout), listing_limit=converge_listing_limit
        )
        self._server: _MotoServer | None = None
        self.runtime: LambdaRuntime | None = None
        self.info: StackInfo | None = None
        # The stand-in for Lambda's event source mapping: the ledger's stream to LedgerEvents.
        self.pump: StreamPump | None = None
        self._received_events: list[dict[str, Any]] = []
        self._receiving = threading.Lock()
        # The operations console's web application (local.console), served on the endpoint at CONSOLE_PATH,
        # and the events it has taken off its own queue (local.console.views.EventLog).
        self.console: Any = None
        self.console_events: Any = None

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StackInfo:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # The interpreter logs every Fail state as an error; the execution history already says it.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        default_user_config.setdefault("lambda", {})["use_docker"] = False
        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        self._server = _MotoServer(self.host, self.port)
        self._server.start()
        host, port = self._server.get_host_and_port()
        endpoint_url = f"http://{host}:{port}"
        # moto's Step Functions interpreter calls Lambda on localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)
        self.sandbox.start()
        self.runtime = LambdaRuntime(
            code_root=LAMBDAS_ROOT,
            runtime_env={
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
                "AWS_ENDPOINT_URL": endpoint_url,
                # Nothing of the developer's ~/.aws reaches a function: no profile, no config, no credentials.
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "PATH": os.environ.get("PATH", ""),
                "TZ": "UTC",
            },
            logs=self.logs,
        )
        self.runtime.install()
        self.info = self._provision(endpoint_url)
        from local.console.app import create_app  # Flask and the templates: only once a stack runs

        self.console = self._server.console = create_app(self.info, self.events_caught_up, self.changes)
        self.console_events = self.console.extensions["payments_console_events"]
        self.pump = StreamPump(
            self.info.client,
            table_name=self.info.ledger_table,
            function_name=topology.EVENTS_FUNCTION.function_name,
        )
        self._server.pump = self.pump
        self.pump.start()
        # Everything made to start the stack (moto's backends and service models, the compiled ASL, botocore's
        # models, Flask) lives as long as the stack: kept out of the collector's full passes, which walked it
        # all and held the one process moto runs in for up to 270 ms each (most of a payment's p99).
        gc.freeze()
        return self.info

    def changes(self) -> tuple[int, int]:
        """Changes so far: DynamoDB writes, executions started or ended. What was read from the stack
        before holds as long as this stays the same (the console's payments list relies on it)."""
        assert self._server is not None
        return self._server.dynamodb_writes, moto_patches.execution_ended.changes

    def events_caught_up(self, timeout: float = 30.0) -> bool:
        """True once every record the ledger's stream holds now has been delivered to LedgerEvents
        (and so its event, if any, is on the queue); False if `timeout` seconds passed first."""
        assert self.pump is not None
        return self.pump.caught_up(timeout)

    def received_events(self) -> list[dict[str, Any]]:
        """Every event the queue has received since the stack started, in the order received, as EventBridge
        delivered it (detail-type, source, detail...). Reading takes them off the queue, so within
        this process read them here only: the stack keeps what it took. Wait for
        `events_caught_up` first to have the events of every entry written so far."""
        assert self.info is not None
        with self._receiving:
            self._received_events += list(take_events(self.info))
            return list(self._received_events)

    def observe_requests(self, observer: RequestObserver) -> Callable[[], None]:
        """Call `observer` with every AWS request that reaches the stack's endpoint from now on, from any
        process (the handlers' workers, the interpreter, the stream pump, clients), once moto has answered
        it: an ObservedRequest, on the server's thread for that request (so concurrently: the observer
        must be thread-safe, and should be quick). Returns a function that stops the observing. The stack
        must be started."""
        assert self._server is not None
        server = self._server
        server.observers = (*server.observers, observer)

        def stop_observing() -> None:
            server.observers = tuple(o for o in server.observers if o is not observer)

        return stop_observing

    def apply_fault_schedule(self, schedule: FaultSchedule | None) -> None:
        """Route DynamoDB, KMS and Lambda faults through `schedule` (None: no more faults)."""
        assert self._server is not None and self.runtime is not None
        self._server.faults.schedule = schedule
        self.runtime.faults.schedule = schedule

    def stop(self) -> None:
        try:
            if self.pump is not None:
                self.pump.stop()
            self.sandbox.stop()
            if self._server is not None:
                self._server.stop()
        finally:
            if self.runtime is not None:
                self.runtime.stop()  # no worker process outlives the stack

    def _provision(self, endpoint_url: str) -> StackInfo:
        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION, **CREDENTIALS)

        def create_key(description: str) -> str:
            created = client("kms").create_key(Description=f"{description} (local)", KeySpec="SYMMETRIC_DEFAULT")
            return str(created["KeyMetadata"]["Arn"])

        # One key per data class, as deployed: card data, audit payloads, storage.
        key_arn = create_key("PAYMENT_KMS_KEY_ARN: card data")
        audit_key_arn = create_key("AUDIT_KMS_KEY_ARN: audit payloads")
        storage_key_arn = create_key("storage: tables")
        dynamodb = client("dynamodb")
        for table in (*topology.TABLES, topology.CARD_VAULT_TABLE, topology.IDEMPOTENCY_TABLE):
            # The ledger's stream is the events' outbox: the stream pump delivers it to LedgerEvents. The
            # chaos checks read it too, to prove no entry is ever rewritten.
            stream = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            attributes = {key.name: key.type for key in table.keys}
            attributes.update({key.name: key.type for index in table.indexes for key in index.keys})
            indexes = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.keys),
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.projected)},
                }
                for index in table.indexes
            ]
            dynamodb.create_table(
                TableName=table.name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": kind} for name, kind in attributes.items()
                ],
                KeySchema=_key_schema(table.keys),
                SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": storage_key_arn},
                **({"StreamSpecification": stream} if table in topology.TABLES else {}),
                **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
            )
            if table.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=table.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
                )
        # The payments bus, and what an upstream service would subscribe: a rule sending every ledger
        # event to a queue (moto's EventBridge delivers to SQS targets as it puts the event).
        create_report_bucket(client("s3"), storage_key_arn)
        client("events").create_event_bus(Name=topology.EVENT_BUS)
        queue_url = subscribe_queue(client("events"), client("sqs"), EVENTS_QUEUE, EVENTS_RULE)
        subscribe_log_group(client("events"), client("logs"), CONSOLE_EVENTS_LOG_GROUP, CONSOLE_EVENTS_RULE)
        credentials = self.sandbox.credentials
        values = {
            topology.PAYMENT_KMS_KEY_ARN: key_arn,
            topology.AUDIT_KMS_KEY_ARN: audit_key_arn,
            topology.DYNAMODB_TABLE_NAME: topology.LEDGER_TABLE.name,
            topology.DYNAMODB_AUDIT_TABLE_NAME: topology.AUDIT_TABLE.name,
            topology.CARD_VAULT_TABLE_NAME: topology.CARD_VAULT_TABLE.name,
            topology.CONVERGE_URL: self.sandbox.xml_url,
            topology.CONVERGE_MERCHANT_ID: credentials.ssl_merchant_id,
            topology.CONVERGE_USER_ID: credentials.ssl_user_id,
            topology.CONVERGE_PIN: credentials.ssl_pin,
            topology.CONVERGE_CONNECT_TIMEOUT_SECONDS: "0.5",  # loopback
            topology.CONVERGE_READ_TIMEOUT_SECONDS: str(self.converge_read_timeout),
            topology.POWERTOOLS_SERVICE_NAME: topology.SERVICE_NAME,
            topology.POWERTOOLS_METRICS_NAMESPACE: topology.METRICS_NAMESPACE,
            topology.EVENT_BUS_NAME: topology.EVENT_BUS,
            topology.IDEMPOTENCY_TABLE_NAME: topology.IDEMPOTENCY_TABLE.name,
            topology.REPORT_BUCKET_NAME: topology.REPORT_BUCKET,
            topology.CONVERGE_LISTING_LIMIT: str(self.converge_listing_limit),
        }
        iam, lambda_client = client("iam"), client("lambda")

        def create_function(spec: topology.FunctionSpec) -> str:
            role = iam.create_role(RoleName=f"{spec.function_name}Role", AssumeRolePolicyDocument=_LAMBDA_ROLE_POLICY)
            function = lambda_client.create_function(
                FunctionName=spec.function_name,
                Runtime=topology.LAMBDA_RUNTIME,
                Architectures=["arm64"],
                Role=role["Role"]["Arn"],
                Handler=spec.handler,
                Code={"ZipFile": _placeholder_zip(spec.code_dir)},
                Timeout=60,
                MemorySize=512,
                Environment={"Variables": {name: values[name] for name in spec.environment("local")}},
            )
            return str(function["FunctionArn"])

        steps = {spec.step: spec for workflow in topology.WORKFLOWS for spec in workflow.functions}
        substitutions = {spec.placeholder: create_function(spec) for spec in steps.values()}
        substitutions[topology.CARD_VAULT_TABLE_PLACEHOLDER] = topology.CARD_VAULT_TABLE.name

        def create_state_machine(workflow: topology.WorkflowSpec) -> str:
            role = iam.create_role(RoleName=f"{workflow.name}Role", AssumeRolePolicyDocument=_STATES_ROLE_POLICY)
            created = client("stepfunctions").create_state_machine(
                name=workflow.name,
                definition=load_definition(REPO_ROOT / workflow.asl_path, substitutions),
                roleArn=role["Role"]["Arn"],
                type="STANDARD",
            )
            return str(created["stateMachineArn"])

        payments_arn = create_state_machine(topology.PAYMENT_WORKFLOW)
        operations_arn = create_state_machine(topology.OPERATION_WORKFLOW)
        status_sync_arn = create_state_machine(topology.STATUS_SYNC_WORKFLOW)
        reconciliation_arn = create_state_machine(topology.RECONCILIATION_WORKFLOW)
        # The intake starts executions, so it is made once the state machine exists.
        values[topology.STATE_MACHINE_ARN] = payments_arn
        create_function(topology.INTAKE_FUNCTION)
        create_function(topology.EVENTS_FUNCTION)
        return StackInfo(
            endpoint_url=endpoint_url,
            region=REGION,
            state_machine_arn=payments_arn,
            capture_state_machine_arn=operations_arn,
            void_state_machine_arn=operations_arn,
            refund_state_machine_arn=operations_arn,
            status_sync_state_machine_arn=status_sync_arn,
            ledger_table=topology.LEDGER_TABLE.name,
            audit_table=topology.AUDIT_TABLE.name,
            card_vault_table=topology.CARD_VAULT_TABLE.name,
            intake_function=topology.INTAKE_FUNCTION.function_name,
            event_bus_name=topology.EVENT_BUS,
            events_queue_url=queue_url,
            kms_key_arn=key_arn,
            audit_kms_key_arn=audit_key_arn,
            converge_url=self.sandbox.xml_url,
            converge_credentials=asdict(credentials),
            reconciliation_state_machine_arn=reconciliation_arn,
            report_bucket=topology.REPORT_BUCKET,
            console_url=endpoint_url + CONSOLE_PATH,
        )


def subscribe_queue(events_client: Any, sqs: Any, queue: str, rule: str) -> str:
    """A queue, and a rule sending it every ledger event on the payments bus; the queue's URL."""
    queue_url = str(sqs.create_queue(QueueName=queue)["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    _subscribe(events_client, rule, queue, queue_arn)
    return queue_url


def subscribe_log_group(events_client: Any, logs: Any, group: str, rule: str) -> None:
    """A log group, and a rule sending it every ledger event on the payments bus."""
    logs.create_log_group(logGroupName=group)
    _subscribe(events_client, rule, "log-group", f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}")


def _subscribe(events_client: Any, rule: str, target_id: str, target_arn: str) -> None:
    events_client.put_rule(
        Name=rule,
        EventBusName=topology.EVENT_BUS,
        EventPattern=json.dumps({"source": [events.EVENT_SOURCE]}),
        State="ENABLED",
    )
    events_client.put_targets(
        Rule=rule, EventBusName=topology.EVENT_BUS, Targets=[{"Id": target_id, "Arn": target_arn}]
    )


def create_report_bucket(s3: Any, storage_key_arn: str) -> None:
    """Reconciliation's bucket, as CDK makes it: private, encrypted with the storage key by default."""
    s3.create_bucket(Bucket=topology.REPORT_BUCKET)
    s3.put_public_access_block(
        Bucket=topology.REPORT_BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=topology.REPORT_BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": storage_key_arn,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )


def take_events(info: StackInfo, wait_seconds: int = 0) -> Iterator[dict[str, Any]]:
    """The events on the stack's queue, each as EventBridge delivered it, taken off the queue once the
    caller has had them (a message received but never handed over is received again later). Reads until
    the queue answers empty, after waiting up to `wait_seconds` for a first message."""
    sqs = info.client("sqs")
    wait = wait_seconds
    while True:
        messages = sqs.receive_message(
            QueueUrl=info.events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return
        for message in messages:
            yield json.loads(message["Body"])
        sqs.delete_message_batch(
            QueueUrl=info.events_queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        wait = 0


def _placeholder_zip(code_dir: str) -> bytes:
    """moto wants a code package; the runtime loads the handler from lambdas/ instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", f"# runs in process from lambdas/{code_dir}/handler.py\n")
    return buffer.getvalue()


def _key_schema(keys: tuple[topology.KeyAttribute, ...]) -> list[dict[str, str]]:
    return [{"AttributeName": key.name, "KeyType": kind} for key, kind in zip(keys, ("HASH", "RANGE"), strict=False)]
