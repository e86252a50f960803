"""One Lambda execution environment of the local stack: a process that runs handlers, one invocation at a time.

Started by local.lambda_runtime as `python -m local.lambda_worker <fd>`, with the Lambda service's
environment only (region, the stack's endpoint, stand-in credentials): never the developer's. It
talks to the runtime over the socket `fd` (multiprocessing.connection framing, JSON messages):

    -> {"code_root", "code_dir", "module", "attribute", "function_name", "env", "event", "context"}
    <- {"payload": <JSON text>, "function_error": bool, "logs": [lines]}

As in Lambda, a function's handler module is imported on its first invocation in this process and
kept; the environment during an invocation is the process's own plus the function's variables;
what the function prints (Powertools' log lines, EMF metrics) is sent back with the answer, to be
kept in the function's log; an exception becomes the runtime's FunctionError payload.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

_handlers: dict[str, Any] = {}


class _InvocationOutput(io.TextIOBase):
    """sys.stdout and sys.stderr for the worker's whole life, and the stream of every logging handler made in
    it (Powertools' Logger binds to the sys.stdout of the moment it is made): each write goes to the output of
    the invocation under way, or is kept for the next one's log if none is (a background thread's)."""

    def __init__(self) -> None:
        self._target = io.StringIO()

    def take(self) -> list[str]:
        """The lines written since the last take, and a fresh buffer for what comes next."""
        lines = self._target.getvalue().splitlines()
        self._target = io.StringIO()
        return lines

    def write(self, text: str) -> int:
        return self._target.write(text)

    def writable(self) -> bool:
        return True


_output = _InvocationOutput()


class LambdaContext:
    """The attributes of the Python runtime's context object that Powertools and the handlers read."""

    def __init__(self, fields: dict[str, Any], deadline: float) -> None:
        self.function_name: str = fields["function_name"]
        self.invoked_function_arn: str = fields["invoked_function_arn"]
        self.memory_limit_in_mb: int = fields["memory_limit_in_mb"]
        self.aws_request_id: str = fields["aws_request_id"]
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = ""
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _RuntimeLogFormat(logging.Formatter):
    """The Lambda Python runtime's own log lines, for what reaches the root logger (a library's warning, say):
    `[LEVEL]<tab>time<tab>request id<tab>message`. Powertools' Logger writes its JSON lines itself."""

    request_id = ""

    def __init__(self) -> None:
        super().__init__("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S")
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = self.request_id
        return super().format(record)


_runtime_log_format = _RuntimeLogFormat()


def main(fd: int) -> None:
    # As the runtime does: the root logger writes to the function's log (else a library's warning would go to
    # Python's last-resort handler, on stderr, unformatted).
    sys.stdout = sys.stderr = _output
    root_handler = logging.StreamHandler(_output)
    root_handler.setFormatter(_runtime_log_format)
    # Warnings and errors only: a library's DEBUG lines (botocore's hold whole KMS answers) never reach the log.
    root_handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(root_handler)
    connection = Connection(fd)
    base_environ = dict(os.environ)
    while True:
        try:
            request = json.loads(connection.recv_bytes())
        except EOFError:
            return
        try:
            answer = invoke(request, base_environ)
        except BaseException:  # SystemExit, KeyboardInterrupt: the runtime's process ends, as in Lambda
            exited = {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited without providing a reason"}
            answer = {"payload": json.dumps(exited), "function_error": True, "logs": _output.take(), "exited": True}
            connection.send_bytes(json.dumps(answer).encode())
            raise
        connection.send_bytes(json.dumps(answer).encode())


def invoke(request: dict[str, Any], base_environ: dict[str, str]) -> dict[str, Any]:
    fields = request["context"]
    _runtime_log_format.request_id = fields["aws_request_id"]
    deadline = time.monotonic() + float(fields["timeout_seconds"])
    os.environ.clear()
    os.environ.update({**base_environ, **request["env"]})
    function_error = False
    try:
        handler = _handler(request)
        payload = json.dumps(handler(json.loads(request["event"]), LambdaContext(fields, deadline)))
    except Exception as error:  # the runtime's contract: any exception becomes a FunctionError
        function_error = True
        report = _error_report(error, fields["aws_request_id"])
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
        payload = json.dumps(report)
    finally:
        _runtime_log_format.request_id = ""
        os.environ.clear()
        os.environ.update(base_environ)
    return {"payload": payload, "function_error": function_error, "logs": _output.take()}


def _handler(request: dict[str, Any]) -> Any:
    function_name = request["function_name"]
    if function_name not in _handlers:
        code_root = request["code_root"]
        if code_root not in sys.path:
            sys.path.append(code_root)
        # Functions that share a package share its module, as each would import it once.
        name = f"payment_steps.{request['code_dir']}.{request['module']}"
        path = Path(code_root) / request["code_dir"] / f"{request['module']}.py"
        module = sys.modules.get(name) or _load(path, name)
        _handlers[function_name] = getattr(module, request["attribute"])
    return _handlers[function_name]


def _load(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load handler {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]  # the next invocation imports it afresh, as Lambda's next environment would
        raise
    return module


def _error_report(error: Exception, request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


if __name__ == "__main__":
    main(int(sys.argv[1]))
