"""Routes moto's Docker-less Lambda `Invoke` to our real handlers, in this process.

moto's LambdaSimpleBackend answers every invoke with a canned payload. We replace its
`invoke` so that the function's own configuration (handler, environment) is honoured: the
handler file is imported from lambdas/<code_dir>/handler.py, called with the payload and a
Lambda context, under the function's environment variables, and an exception becomes the
same `FunctionError` payload the Python runtime returns (`errorType` is what Retry/Catch see).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.exceptions import JsonRESTError

from local import scoped_environ
from local.faults import LambdaFaults
from local.function_logs import FunctionLogs
from payments import topology

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaServiceException(JsonRESTError):
    """What the Lambda service answers when it fails: Step Functions sees `Lambda.ServiceException`."""

    code = 500

    def __init__(self, message: str) -> None:
        super().__init__("ServiceException", message)

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        # Step Functions reports the Lambda request id of a failed invoke; botocore reads it here.
        return [*super().get_headers(*args, **kwargs), ("x-amzn-RequestId", str(uuid.uuid4()))]


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that Powertools reads."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InProcessLambdaRuntime:
    def __init__(self, code_root: Path, runtime_env: dict[str, str], logs: FunctionLogs) -> None:
        self.code_root = code_root
        self.runtime_env = runtime_env  # what the Lambda service adds: region, credentials, endpoint
        self.logs = logs
        self.faults = LambdaFaults()
        self.invocations: list[str] = []
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._environ = scoped_environ.install()

    def install(self) -> None:
        if str(self.code_root) not in sys.path:
            sys.path.append(str(self.code_root))
        runtime = self

        def invoke(
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            return runtime.invoke(backend, function_name, qualifier, body, response_headers)

        LambdaSimpleBackend.invoke = invoke  # type: ignore[assignment,method-assign]

    def invoke(
        self,
        backend: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        function = backend.get_function(function_name, qualifier)
        name = function.function_name
        with self._lock:
            self.invocations.append(name)
        event = json.loads(body) if body else {}
        fault = self.faults.take(name, event)
        if fault == "service_error":
            raise LambdaServiceException(f"injected fault: {name} unavailable")
        context = LambdaContext(
            function_name=name,
            invoked_function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size),
            timeout_seconds=int(function.timeout),
        )
        env = {
            **self.runtime_env,
            **(function.environment_vars or {}),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
            "_HANDLER": function.handler,
        }
        with self._environ.scoped(env), self.logs.capture(name):
            _log_to_stdout()
            try:
                handler = self._handler(name, function.handler)
                result = handler(event, context)
                payload = json.dumps(result).encode()
            except Exception as error:  # the runtime's contract: any exception becomes a FunctionError
                response_headers["x-amz-function-error"] = "Unhandled"
                report = _error_report(error, context.aws_request_id)
                print(
                    json.dumps(
                        {
                            "level": "ERROR",
                            "message": "Invoke Error",
                            "errorType": report["errorType"],
                            "errorMessage": report["errorMessage"],
                        }
                    )
                )
                payload = json.dumps(report).encode()
        if fault == "lose_response":
            raise LambdaServiceException(f"injected fault: {name} ran but its response was lost")
        if fault == "crash_after":
            response_headers["x-amz-function-error"] = "Unhandled"
            self.logs.append(name, "RequestId: injected Error: Runtime exited with error: signal: killed")
            return json.dumps(
                {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited with error: signal: killed"}
            ).encode()
        return payload

    def _handler(self, function_name: str, handler_setting: str) -> Handler:
        with self._lock:
            if function_name not in self._handlers:
                spec = next(f for f in topology.ALL_FUNCTIONS if f.function_name == function_name)
                module_name, _, attribute = handler_setting.rpartition(".")
                # Functions that share a package share its module, as each would import it once.
                name = f"payment_steps.{spec.code_dir}.{module_name}"
                module = sys.modules.get(name) or _load(self.code_root / spec.code_dir / f"{module_name}.py", name)
                self._handlers[function_name] = getattr(module, attribute)
            return self._handlers[function_name]


def _log_to_stdout() -> None:
    """The functions' logger writes to the stdout of this moment, as in Lambda.

    Powertools' Logger binds its handler to the sys.stdout of the moment it is created; in a test
    process that may be pytest's capture, and the function's log lines would then escape the
    captured logs (and the card-data scans of them).
    """
    for handler in logging.getLogger(topology.SERVICE_NAME).handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is not sys.stdout:
            handler.setStream(sys.stdout)


def _load(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load handler {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _error_report(error: Exception, request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }
