"""Routes moto's Docker-less Lambda `Invoke` to our real handlers, each run in a worker process.

moto's LambdaSimpleBackend answers every invoke with a canned payload. We replace its `invoke` so
that the function's own configuration (handler, environment) is honoured: the handler file is
imported from lambdas/<code_dir>/handler.py and called with the payload and a Lambda context,
under the function's environment variables, and an exception becomes the same `FunctionError`
payload the Python runtime returns (`errorType` is what Retry/Catch see).

As in Lambda, handlers run in processes of their own, not in the process that runs moto: a pool of
execution environments (local.lambda_worker), each running one invocation at a time, started as
invocations need them (up to `max_workers`; an invocation waits for a free one beyond that) and
kept warm. So the handlers and moto use every core, rather than taking turns under one GIL. The
workers share no memory with each other or with moto; a function's module is loaded once per worker
that runs it (its cold start), and its clients and caches live as long as that worker.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.exceptions import JsonRESTError

from local.faults import LambdaFaults
from local.function_logs import FunctionLogs
from payments import topology

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_WORKERS = 16  # Lambda would scale further; each worker is ~130 MB


class LambdaServiceException(JsonRESTError):
    """What the Lambda service answers when it fails: Step Functions sees `Lambda.ServiceException`."""

    code = 500

    def __init__(self, message: str) -> None:
        super().__init__("ServiceException", message)

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        # Step Functions reports the Lambda request id of a failed invoke; botocore reads it here.
        return [*super().get_headers(*args, **kwargs), ("x-amzn-RequestId", str(uuid.uuid4()))]


class _Worker:
    """One worker process and the runtime's end of its socket."""

    def __init__(self, env: dict[str, str]) -> None:
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter running our own module
            [sys.executable, "-m", "local.lambda_worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self.connection = Connection(ours.detach())

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        self.connection.send_bytes(json.dumps(request).encode())
        answer: dict[str, Any] = json.loads(self.connection.recv_bytes())
        return answer

    def wait(self, timeout: float) -> None:
        """Wait for the process to end, up to `timeout` seconds, then kill it."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        self.connection.close()
        self.process.kill()
        self.process.wait()


class WorkerPool:
    """Execution environments for every function: a free one is reused (warm), a new one is started
    when all are busy and there are fewer than `max_workers`; beyond that an invocation waits."""

    def __init__(self, env: dict[str, str], max_workers: int = DEFAULT_MAX_WORKERS) -> None:
        self.env = env
        self.max_workers = max_workers
        self.started = 0  # workers started since the pool was made (each a cold start)
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._changed = threading.Condition()
        self._stopped = False

    def invoke(self, request: dict[str, Any]) -> dict[str, Any]:
        worker = self._take()
        try:
            answer = worker.call(request)
        except (EOFError, OSError, TypeError, ValueError) as error:  # gone, or stopped under us
            self._discard(worker)
            raise LambdaServiceException(f"the execution environment of {request['function_name']} failed") from error
        except BaseException:
            self._discard(worker)
            raise
        if answer.get("exited"):
            self._discard(worker)  # its process has ended: the next invocation gets a new environment
        else:
            self._give_back(worker)
        return answer

    def prestart(self, count: int) -> None:
        """Start up to `count` idle workers now, so that the first invocations find one."""
        with self._changed:
            while len(self._all) < min(count, self.max_workers):
                worker = self._start()
                self._idle.append(worker)

    def stop(self, timeout: float = 5.0) -> None:
        with self._changed:
            self._stopped = True
            workers, self._all, self._idle = self._all, [], []
            self._changed.notify_all()
        for worker in workers:
            worker.connection.close()  # each reads EOF and exits; one busy with an invocation is killed below
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.wait(max(0.0, deadline - time.monotonic()))

    def _take(self) -> _Worker:
        with self._changed:
            while True:
                if self._stopped:
                    raise LambdaServiceException("the local Lambda service has stopped")
                if self._idle:
                    return self._idle.pop()  # the most recently used: the warmest
                if len(self._all) < self.max_workers:
                    return self._start()
                self._changed.wait()

    def _start(self) -> _Worker:
        worker = _Worker(self.env)
        self._all.append(worker)
        self.started += 1
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._changed:
            if self._stopped:
                return
            self._idle.append(worker)
            self._changed.notify()

    def _discard(self, worker: _Worker) -> None:
        with self._changed:
            if worker in self._all:
                self._all.remove(worker)
            self._changed.notify()
        worker.kill()


class LambdaRuntime:
    def __init__(
        self, code_root: Path, runtime_env: dict[str, str], logs: FunctionLogs, max_workers: int = DEFAULT_MAX_WORKERS
    ) -> None:
        self.code_root = code_root
        self.runtime_env = runtime_env  # what the Lambda service adds: region, credentials, endpoint
        self.logs = logs
        self.faults = LambdaFaults()
        self.invocations: list[str] = []
        self._lock = threading.Lock()
        self.workers = WorkerPool(runtime_env, max_workers)

    def install(self) -> None:
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
        self.workers.prestart(2)

    def stop(self) -> None:
        self.workers.stop()

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
        spec = next(f for f in topology.ALL_FUNCTIONS if f.function_name == name)
        module, _, attribute = str(function.handler).rpartition(".")
        answer = self.workers.invoke(
            {
                "code_root": str(self.code_root),
                "code_dir": spec.code_dir,
                "module": module,
                "attribute": attribute,
                "function_name": name,
                "env": {
                    **(function.environment_vars or {}),
                    "AWS_LAMBDA_FUNCTION_NAME": name,
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                    "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                    "_HANDLER": function.handler,
                },
                "event": json.dumps(event),
                "context": {
                    "function_name": name,
                    "invoked_function_arn": function.function_arn,
                    "memory_limit_in_mb": int(function.memory_size),
                    "timeout_seconds": int(function.timeout),
                    "aws_request_id": str(uuid.uuid4()),
                },
            }
        )
        for line in answer["logs"]:
            self.logs.append(name, line)
        if answer["function_error"]:
            response_headers["x-amz-function-error"] = "Unhandled"
        if fault == "lose_response":
            raise LambdaServiceException(f"injected fault: {name} ran but its response was lost")
        if fault == "crash_after":
            response_headers["x-amz-function-error"] = "Unhandled"
            self.logs.append(name, "RequestId: injected Error: Runtime exited with error: signal: killed")
            return json.dumps(
                {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited with error: signal: killed"}
            ).encode()
        return str(answer["payload"]).encode()
