"""One Lambda execution environment: the process the local runtime starts for a function instance.

Started by ``lambda_runtime`` as ``python -m gcpipe.local.worker`` with the function's code directory as
its working directory and first path entry (Lambda's ``/var/task``), and exactly the function's
environment: its configured variables, the variables the Lambda runtime sets (``AWS_LAMBDA_FUNCTION_NAME``,
``AWS_REGION``, ``_HANDLER`` ...), credentials, and ``AWS_ENDPOINT_URL`` (the emulator: moto's server). It
shares no module state with any other function instance.

The runtime's own variables (read here, then removed before the handler is imported):
- ``GCPIPE_WORKER_FD``: the channel to the runtime, a socket (newline-delimited JSON messages);
- ``GCPIPE_WORKER_PARENT``: the runtime's pid (the worker dies with it: PR_SET_PDEATHSIG);
- ``GCPIPE_LOCAL_IAM_POLICY``: the function role's resolved policy (``iam.RolePolicy`` JSON): every AWS call
  is checked against it (``iam_guard``);
- ``GCPIPE_LOCAL_HOOKS``: comma-separated hooks, ``module`` or ``module:function``, imported in order before
  the handler; each function (default ``install``) is called with no argument. This is the seam for fault
  injection (e.g. ``gcpipe.local.faults:install_from_env``, whose plan file it names in its own variable,
  passed through ``LambdaRuntime.worker_environment``). A hook that needs botocore events in every session the function
  creates calls ``register_botocore_handler``; one that counts per invocation registers ``on_invoke``.

Protocol (worker -> runtime): ``ready`` | ``init_error`` once; then per invocation any number of
``outcome`` (an ``OutcomeRecord`` as JSON) and ``api`` (an IAM decision) messages, then ``result`` or
``error``. Runtime -> worker: ``invoke`` {request_id, payload, deadline_ms, function_arn}. The process's
stdout and stderr (Powertools' JSON lines, EMF blobs, tracebacks) go to the runtime's log output.
A crash (``os._exit``, a signal), a timeout or memory beyond the function's size ends the process; the
runtime reports it as Lambda does and starts a new one for the next invocation.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

RUNTIME_VARIABLES = ("GCPIPE_WORKER_FD", "GCPIPE_WORKER_PARENT", "GCPIPE_LOCAL_IAM_POLICY", "GCPIPE_LOCAL_HOOKS")
_PR_SET_PDEATHSIG = 1


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    identity: Any = None
    client_context: Any = None
    _unused: Any = field(default=None, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


class Channel:
    """Newline-delimited JSON over the socket to the runtime. ``send`` is safe from any thread."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._lock = threading.Lock()
        self._buffer = b""

    def send(self, kind: str, **data: Any) -> None:
        line = (json.dumps({"type": kind, **data}, default=str) + "\n").encode()
        with self._lock:
            self._sock.sendall(line)

    def receive(self) -> dict[str, Any] | None:
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


_CHANNEL: Channel | None = None


def register_botocore_handler(event_name: str, handler: Callable[..., Any]) -> None:
    """Register ``handler`` for ``event_name`` in every botocore session this process creates from now on
    (botocore registers ``handlers.BUILTIN_HANDLERS`` in each new session)."""
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.append((event_name, handler))


_ON_INVOKE: list[Callable[[], None]] = []


def on_invoke(callback: Callable[[], None]) -> None:
    """Call ``callback`` (no argument) before each invocation's handler call (hooks that count per invocation)."""
    _ON_INVOKE.append(callback)


def send(kind: str, **data: Any) -> None:
    """A message to the runtime (hooks use it: ``api`` decisions, ``outcome`` records)."""
    if _CHANNEL is not None:
        _CHANNEL.send(kind, **data)


def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the runtime's stop() still ends every worker
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _load_handler(handler: str) -> Callable[..., Any]:
    module_name, _, attr = handler.rpartition(".")
    if not module_name:
        raise RuntimeError(f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")
    return getattr(importlib.import_module(module_name), attr)


def _error(exc: BaseException) -> dict[str, Any]:
    """The Python runtime's error payload: the handler's frames only."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]),
    }


def main() -> None:
    global _CHANNEL
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the operator's Ctrl-C is the runtime's to handle (drain)
    config = {name: os.environ.pop(name, "") for name in RUNTIME_VARIABLES}
    _die_with_parent(int(config["GCPIPE_WORKER_PARENT"] or os.getppid()))
    _CHANNEL = channel = Channel(socket.socket(fileno=int(config["GCPIPE_WORKER_FD"])))
    code_dir = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if sys.path[:1] != [code_dir]:
        sys.path.insert(0, code_dir)
    try:
        if config["GCPIPE_LOCAL_IAM_POLICY"]:
            from . import iam_guard

            iam_guard.install(config["GCPIPE_LOCAL_IAM_POLICY"], os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))
        for hook in filter(None, (h.strip() for h in config["GCPIPE_LOCAL_HOOKS"].split(","))):
            module, _, function = hook.partition(":")
            getattr(importlib.import_module(module), function or "install")()
        handler = _load_handler(os.environ.get("_HANDLER", ""))
    except Exception as exc:  # noqa: BLE001 - Lambda reports an init failure as Runtime.ImportModuleError
        module = os.environ.get("_HANDLER", "").rpartition(".")[0]
        channel.send(
            "init_error",
            errorType="Runtime.ImportModuleError",
            errorMessage=f"Unable to import module '{module}': {exc}",
            stackTrace=traceback.format_exc().splitlines(),
        )
        return
    from . import outcome_sink

    outcome_sink.install(lambda record: channel.send("outcome", record=record))
    channel.send("ready")
    _serve(channel, handler)


def _serve(channel: Channel, handler: Callable[..., Any]) -> None:
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    while True:
        message = channel.receive()
        if message is None:  # the runtime closed the channel: this environment is shut down
            return
        if message.get("type") != "invoke":
            continue
        request_id = message["request_id"]
        context = LambdaContext(
            function_name=name,
            function_version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            invoked_function_arn=message.get("function_arn", ""),
            memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            aws_request_id=request_id,
            log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{request_id.replace('-', '')}",
            deadline_ms=int(message["deadline_ms"]),
        )
        for callback in _ON_INVOKE:
            callback()
        try:
            result = handler(message.get("payload"), context)
            body = json.dumps(result)
        except Exception as exc:  # noqa: BLE001 - Lambda reports any exception the same way
            sys.stdout.flush()
            channel.send("error", error=_error(exc))
            continue
        sys.stdout.flush()
        channel.send("result", body=body)


if __name__ == "__main__":
    # Run as gcpipe.local.worker, not as __main__: hooks import this module (send, register_botocore_handler)
    # and must find the channel that main() set up.
    from gcpipe.local.worker import main as _main

    _main()
    # Lambda ends an environment by stopping it, not by tearing its interpreter down: skip the teardown,
    # which for boto3 and Powertools takes a few tenths of a second of CPU per worker when the pools close.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
