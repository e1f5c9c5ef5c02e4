"""Run Lambda functions in this process, as moto's Lambda backend sees them.

Gap closed (moto 5.2.5): without Docker (``{"lambda": {"use_docker": False}}``)
``LambdaSimpleBackend.invoke`` only echoes its input. ``install()`` replaces
that method: it resolves the function's configured handler
(``dispatcher.handler.lambda_handler``), imports it from the function's code
directory and calls it with a Lambda-like context, the function's configured
environment variables applied for the duration of the call.

Errors come back as Lambda returns them: header ``x-amz-function-error:
Unhandled`` and payload ``{"errorType": <exception class name>,
"errorMessage": ..., "stackTrace": [...]}``. moto's Step Functions interpreter
reads ``errorType`` from that payload, so ASL ``Retry``/``Catch`` by error name
and the execution's ``error`` work as on AWS.

Environment variables are process-global, and the dispatcher, processor and
error logger have different ones. Invocations can come from several threads
at once (the SQS poller's workers, every Step Functions execution runs in its
own thread, asynchronous EventBridge deliveries). ``EnvironmentGate`` lets
invocations that need the *same* environment run concurrently and makes an
invocation that needs a different one wait until they are done (first come,
first served). A single global lock would be simpler but would also serialize
the processor with itself, hiding the concurrency the pipeline must survive;
a per-thread ``os.environ`` overlay would not reach the thread pools a handler
starts itself (the dispatcher's parallel StartExecution), nor C code.
Consequence: a handler that synchronously waits, in another thread, for a
function with a different environment would deadlock. None of ours does:
EventBridge→Lambda deliveries are asynchronous here, as on AWS.

Where the code comes from: ``register_code_dir(function_name, path)`` (the
deployer registers the template's asset directory), else the function's own
zip (``Code.ZipFile`` or the S3 object), extracted once into a temporary
directory. The directory goes on ``sys.path`` as Lambda's ``/var/task`` does.
Modules are shared by every function of the process (``sys.modules``), so two
functions whose code defines the same top-level module with different content
cannot both run in one process; ours share one asset (``lambdas/``), which is
exactly that case without conflict.

Reserved concurrency is enforced as Lambda does (``ReservedConcurrency``): a
function with ``ReservedConcurrentExecutions`` (PutFunctionConcurrency; the
deployer applies the template's) runs at most that many invocations at once.
A synchronous invoke beyond it fails with the Invoke API's own error, HTTP 429
``TooManyRequestsException`` (Reason
``ReservedFunctionConcurrentInvocationLimitExceeded``), not a function error:
moto's Step Functions interpreter turns that client error into
``Lambda.TooManyRequestsException``, the name the ASL's Retry matches, and the
SQS poller leaves the batch to the visibility timeout, as Lambda's event source
mapping does. An asynchronous (Event) invocation that finds no free slot waits
for one (Lambda queues the event and retries throttles for up to the
function's maximum event age, 6 h by default; here: until a slot frees, or
``ASYNC_MAX_EVENT_AGE_SECONDS``, then the event is dropped with a log line).
Unreserved functions are not limited (the account's 1,000 is not emulated).
Time compression: when the state machine's Retry waits are scaled down
(``RETRY_CLOCK.scale`` < 1: tests, the demo), a throttled invoke that Lambda's
retrier would have repeated seconds later would exhaust its attempts at once;
so then a synchronous invoke first waits up to ``compressed_slot_wait_seconds``
(30 s, about the lambdaService retrier's real waits) for a slot. At scale 1
(the throughput benchmark) an invoke beyond the limit is refused at once.

Not emulated: the function timeout (a Python thread cannot be killed; the
context's remaining time is reported correctly), the account concurrency
limit, Event-invocation retries of function errors, and destinations.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import json
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from . import _patching, outcome_sink, service_metrics

LOG = logging.getLogger(__name__)

ASYNC_MAX_EVENT_AGE_SECONDS = 6 * 3600  # Lambda's default MaximumEventAgeInSeconds for asynchronous invocations


class FunctionThrottled(Exception):
    """The function's reserved concurrency is in use: Lambda answers the invoke with 429 TooManyRequestsException."""

    def __init__(self, function_name: str, limit: int):
        super().__init__(f"Rate Exceeded. ({function_name}: reserved concurrency {limit} in use)")
        self.function_name, self.limit = function_name, limit


@dataclass(frozen=True)
class ConcurrencySnapshot:
    """Per function: invocations running now, the most at once, invokes refused (throttled), invokes waiting for a slot."""

    running: dict[str, int]
    peak: dict[str, int]
    throttled: dict[str, int]
    waiting: dict[str, int]


class ReservedConcurrency:
    """Concurrent invocations per function, held against the function's ReservedConcurrentExecutions."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()
        self._throttled: Counter[str] = Counter()
        self._waiting: Counter[str] = Counter()

    @staticmethod
    def limit_of(fn: Any) -> int | None:
        reserved = getattr(fn, "reserved_concurrency", None)
        return None if reserved is None or reserved == "" else int(reserved)

    def acquire(self, fn: Any, wait_seconds: float = 0.0) -> None:
        """Take one slot of ``fn``'s reserved concurrency, waiting up to ``wait_seconds`` for one;
        raises FunctionThrottled when none frees in time."""
        name, limit = fn.function_name, self.limit_of(fn)
        with self._cond:
            if limit is not None and self._running[name] >= limit:
                self._waiting[name] += 1
                try:
                    free = self._cond.wait_for(lambda: self._running[name] < limit, wait_seconds)
                finally:
                    self._waiting[name] -= 1
                if not free:
                    self._throttled[name] += 1
                    raise FunctionThrottled(name, limit)
            self._running[name] += 1
            self._peak[name] = max(self._peak[name], self._running[name])

    def release(self, fn: Any) -> None:
        with self._cond:
            self._running[fn.function_name] -= 1
            self._cond.notify_all()

    def snapshot(self) -> ConcurrencySnapshot:
        with self._cond:
            return ConcurrencySnapshot(dict(+self._running), dict(self._peak), dict(self._throttled), dict(+self._waiting))

    def reset(self) -> None:
        with self._cond:
            self._peak.clear()
            self._throttled.clear()


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
    timeout_seconds: float
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class EnvironmentGate:
    """A lock shared by holders that need the same environment, exclusive across environments.

    ``with gate.applied(env): ...`` sets ``env`` in ``os.environ`` (restoring the
    previous values when the last holder leaves). Arrivals are served in order:
    once someone waits for a different environment, newcomers for the current
    one queue behind it, so no function starves another.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._current: frozenset | None = None
        self._holders = 0
        self._holder_threads: dict[int, int] = {}
        self._queue: deque[object] = deque()
        self._saved: dict[str, str | None] = {}
        self._blanked: set[str] = set()

    def applied(self, env: Mapping[str, str]) -> "_GateEntry":
        return _GateEntry(self, dict(env))

    def _enter(self, env: dict[str, str]) -> None:
        key = frozenset(env.items())
        me = threading.get_ident()
        with self._cond:
            if self._holder_threads.get(me):
                if key != self._current:
                    raise RuntimeError(
                        "a Lambda invoked, in the same thread, a function with a different environment; "
                        "the in-process runtime cannot apply two environments at once"
                    )
                self._enter_as_holder(me)
                return
            ticket = object()
            self._queue.append(ticket)
            while not (
                self._queue[0] is ticket
                and (self._holders == 0 or self._current == key)
            ):
                self._cond.wait()
            self._queue.popleft()
            if self._holders == 0:
                self._current = key
                self._saved = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
            self._enter_as_holder(me)
            self._cond.notify_all()

    def _enter_as_holder(self, me: int) -> None:
        self._holders += 1
        self._holder_threads[me] = self._holder_threads.get(me, 0) + 1

    def _exit(self) -> None:
        me = threading.get_ident()
        with self._cond:
            self._holders -= 1
            self._holder_threads[me] -= 1
            if not self._holder_threads[me]:
                del self._holder_threads[me]
            if self._holders == 0:
                for k, v in self._saved.items():
                    if v is None:
                        # Left set, not deleted: another thread copying os.environ (botocore, moto)
                        # gets a KeyError if a key vanishes mid-copy. Every function sets all the
                        # variables it reads on entry; scrub() deletes these once no function runs.
                        self._blanked.add(k)
                    else:
                        os.environ[k] = v
                self._saved = {}
                self._current = None
            self._cond.notify_all()


    def scrub(self) -> None:
        """Delete the variables blanked by _exit (call only when no function runs)."""
        with self._cond:
            if self._holders == 0:
                for k in self._blanked:
                    os.environ.pop(k, None)
                self._blanked.clear()


class _GateEntry:
    def __init__(self, gate: EnvironmentGate, env: dict[str, str]):
        self._gate, self._env = gate, env

    def __enter__(self) -> None:
        self._gate._enter(self._env)

    def __exit__(self, *exc: Any) -> None:
        self._gate._exit()


class InProcessLambdaRuntime:
    """Code locations, handler cache and in-flight accounting for in-process invocations."""

    def __init__(self) -> None:
        self.gate = EnvironmentGate()
        self._code_dirs: dict[str, Path] = {}
        self._env_overrides: dict[str, dict[str, str]] = {}
        self._handlers: dict[tuple[str, str], Callable[..., Any]] = {}
        self._extracted: dict[str, Path] = {}
        self._inserted_paths: list[str] = []
        self._set_aside: dict[str, Any] | None = None  # the process's own copies of asset modules, while a stack runs
        self._tmp = tempfile.TemporaryDirectory(prefix="gcpipe-lambda-code-")
        self._lock = threading.Lock()
        self._async_in_flight = 0
        self._async_cond = threading.Condition()
        self.concurrency = ReservedConcurrency()
        self.compressed_slot_wait_seconds = 30.0
        self.invocations: list[dict[str, Any]] = []  # (function, request id, error type) of every invocation

    # -- configuration -------------------------------------------------------------------
    def register_code_dir(self, function_name: str, code_dir: str | Path) -> None:
        self._code_dirs[function_name] = Path(code_dir).resolve()

    def set_environment_overrides(self, function_name: str, overrides: Mapping[str, str]) -> None:
        """Variables that replace the configured ones at invocation (none, unless a caller says so)."""
        self._env_overrides[function_name] = dict(overrides)

    def reset(self) -> None:
        """Forget every function: the next invocations are cold starts.

        The stack's own copies of the modules the code directories define
        (``dispatcher``, ``genesys_pipeline``, ...) are dropped from
        ``sys.modules``: module-level state (boto3 clients bound to the previous
        emulator, token and secret caches) must not outlive the stack it was
        created for, as no Lambda container outlives its function. Copies the
        process imported before the stack's first invocation were set aside
        then (``_isolate``) and are put back.
        """
        if self._set_aside is not None:  # the stack imported its own copies: drop them
            names = self._asset_module_names()
            for mod in list(sys.modules):
                if mod.split(".", 1)[0] in names:
                    del sys.modules[mod]
        # Give back the modules the process had imported itself before the stack ran (the CLI,
        # tests): their classes (InvalidEvent, ...) must keep their identity for them.
        sys.modules.update(self._set_aside or {})
        self._set_aside = None
        for d in self._inserted_paths:  # only what this runtime put there (lambdas/ may be on sys.path for the CLI)
            while d in sys.path:
                sys.path.remove(d)
        self._inserted_paths.clear()
        _clear_powertools_parameter_caches()
        self.gate.scrub()
        self._code_dirs.clear()
        self._env_overrides.clear()
        self._handlers.clear()
        self._extracted.clear()
        self.concurrency.reset()
        self.invocations.clear()

    def _asset_module_names(self) -> set[str]:
        names: set[str] = set()
        for d in set(self._code_dirs.values()) | set(self._extracted.values()):
            if d.is_dir():
                names |= {p.stem if p.suffix == ".py" else p.name for p in d.iterdir()
                          if p.suffix == ".py" or (p.is_dir() and not p.name.endswith((".dist-info", "__pycache__")))}
        return names

    def _isolate(self) -> None:
        """Before the first handler import: set aside the process's own copies of asset modules,
        so the stack's functions start cold with their own (a Lambda container shares nothing)."""
        if self._set_aside is not None:
            return
        names = self._asset_module_names()
        self._set_aside = {m: sys.modules.pop(m) for m in list(sys.modules) if m.split(".", 1)[0] in names}

    # -- invocation -----------------------------------------------------------------------
    def code_dir_for(self, fn: Any) -> Path:
        registered = self._code_dirs.get(fn.function_name)
        if registered is not None:
            return registered
        code_bytes = getattr(fn, "code_bytes", b"") or b""
        if not code_bytes:
            raise RuntimeError(
                f"no code for function {fn.function_name}: register its code directory "
                "(InProcessLambdaRuntime.register_code_dir) or give it a zip"
            )
        digest = hashlib.sha256(code_bytes).hexdigest()[:16]
        with self._lock:
            path = self._extracted.get(digest)
            if path is None:
                path = Path(self._tmp.name) / digest
                with zipfile.ZipFile(io.BytesIO(code_bytes)) as zf:
                    zf.extractall(path)
                self._extracted[digest] = path
        return path

    def _load_handler(self, code_dir: Path, handler: str) -> Callable[..., Any]:
        key = (str(code_dir), handler)
        cached = self._handlers.get(key)
        if cached is not None:
            return cached
        module_name, _, attr = handler.rpartition(".")
        if not module_name:
            raise RuntimeError(f"bad handler {handler!r}: expected <module>.<function>")
        with self._lock:
            self._isolate()
            if str(code_dir) not in sys.path:
                sys.path.insert(0, str(code_dir))
                self._inserted_paths.append(str(code_dir))
        importlib.invalidate_caches()
        module = importlib.import_module(module_name)
        func = getattr(module, attr)
        # The function's own genesys_pipeline (imported by its handler) hands its outcome records to the harness.
        outcome_sink.install(outcome_sink.FEED.publish)
        self._handlers[key] = func
        return func

    def environment_for(self, fn: Any, code_dir: Path) -> dict[str, str]:
        """The function's configured variables on top of the variables the Lambda runtime sets."""
        region = fn.region
        env = {
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time or 'python3.11'}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": fn.handler or "",
            # There is no X-Ray daemon locally. SAM CLI sets this too; Powertools
            # then disables its Tracer, as in any Lambda emulator.
            "AWS_SAM_LOCAL": "true",
        }
        env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
        env.update(self._env_overrides.get(fn.function_name, {}))
        return env

    def invoke(self, fn: Any, payload: bytes | str | None, *, slot_wait_seconds: float = 0.0) -> tuple[bytes, str | None]:
        """Run the function once. Returns (response payload, function error or None).

        Raises FunctionThrottled, before anything runs, when the function's reserved concurrency is in use
        (after ``slot_wait_seconds``)."""
        try:
            self.concurrency.acquire(fn, slot_wait_seconds)
        except FunctionThrottled:
            service_metrics.lambda_throttled(fn.function_name)
            raise
        started = time.perf_counter()
        error: str | None = "Unhandled"
        try:
            body, error = self._run(fn, payload)
            return body, error
        finally:
            self.concurrency.release(fn)
            service_metrics.lambda_invoked(fn.function_name, (time.perf_counter() - started) * 1000, error is not None)

    def _run(self, fn: Any, payload: bytes | str | None) -> tuple[bytes, str | None]:
        request_id = str(uuid.uuid4())
        event = json.loads(payload) if payload else {}
        record: dict[str, Any] = {"function": fn.function_name, "request_id": request_id, "error_type": None}
        try:
            code_dir = self.code_dir_for(fn)
            env = self.environment_for(fn, code_dir)
            context = LambdaContext(
                function_name=fn.function_name,
                function_version="$LATEST",
                invoked_function_arn=fn.function_arn,
                memory_limit_in_mb=int(fn.memory_size),
                aws_request_id=request_id,
                log_group_name=f"/aws/lambda/{fn.function_name}",
                log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{request_id.replace('-', '')}",
                timeout_seconds=float(fn.timeout or 3),
            )
            with self.gate.applied(env):
                handler = self._load_handler(code_dir, fn.handler or "")
                result = handler(event, context)
            body = json.dumps(result).encode() if result is not None else b"null"
            return body, None
        except Exception as exc:  # noqa: BLE001 - Lambda reports any exception the same way
            record["error_type"] = type(exc).__name__
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "requestId": request_id,
                # the handler's frames only, as the Lambda runtime reports them
                "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]),
            }
            LOG.info("%s failed: %s: %s", fn.function_name, type(exc).__name__, exc)
            return json.dumps(error).encode(), "Unhandled"
        finally:
            self.invocations.append(record)

    def invoke_async(self, fn: Any, payload: bytes | str | None) -> None:
        """An Event invocation: accepted at once, run on its own thread."""
        with self._async_cond:
            self._async_in_flight += 1

        def run() -> None:
            try:
                # Lambda keeps a throttled Event invocation in its queue and retries it: here, wait for a slot.
                self.invoke(fn, payload, slot_wait_seconds=ASYNC_MAX_EVENT_AGE_SECONDS)
            except FunctionThrottled as exc:
                LOG.warning("%s: asynchronous event dropped after the maximum event age: %s", fn.function_name, exc)
            finally:
                with self._async_cond:
                    self._async_in_flight -= 1
                    self._async_cond.notify_all()

        threading.Thread(target=run, name=f"lambda-event-{fn.function_name}", daemon=True).start()

    @property
    def async_in_flight(self) -> int:
        return self._async_in_flight

    def wait_for_async(self, timeout: float) -> bool:
        with self._async_cond:
            return self._async_cond.wait_for(lambda: self._async_in_flight == 0, timeout)


def _clear_powertools_parameter_caches() -> None:
    """Powertools parameters keeps providers (a boto3 client bound to the previous emulator, and the
    cached secret values) in its own module, which ``reset`` does not drop: clear them too."""
    base = sys.modules.get("aws_lambda_powertools.utilities.parameters.base")
    if base is not None:
        for provider in getattr(base, "DEFAULT_PROVIDERS", {}).values():
            with contextlib.suppress(Exception):
                provider.clear_cache()
        getattr(base, "DEFAULT_PROVIDERS", {}).clear()


RUNTIME = InProcessLambdaRuntime()


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name.lower():
                return v
    return value


def _invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
    fn = self.get_function(function_name, qualifier)
    invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        RUNTIME.invoke_async(fn, body)
        return b""
    from .stepfunctions import RETRY_CLOCK

    wait = RUNTIME.compressed_slot_wait_seconds if RETRY_CLOCK.scale < 1 else 0.0
    try:
        payload, function_error = RUNTIME.invoke(fn, body, slot_wait_seconds=wait)
    except FunctionThrottled as exc:
        raise _too_many_requests_class()(str(exc)) from None
    if function_error:
        response_headers["x-amz-function-error"] = function_error
    response_headers["x-amz-executed-version"] = "$LATEST"
    response_headers["Content-Length"] = str(len(payload))
    return payload


@functools.cache
def _too_many_requests_class() -> type:
    """The Invoke API's 429, as a moto error (built on first use: importing this module must not import moto)."""
    from moto.core.exceptions import JsonRESTError

    class TooManyRequests(JsonRESTError):
        """The Invoke API's 429 (the shape Lambda answers a throttled invoke with)."""

        code = 429

        def __init__(self, message: str):
            super().__init__("TooManyRequestsException", message)
            self.description = json.dumps({"__type": "TooManyRequestsException", "message": message,
                                           "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User"})

    return TooManyRequests


def install() -> InProcessLambdaRuntime:
    """Make moto's Docker-less Lambda backend run the real handlers. Idempotent."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    _patching.replace(LambdaSimpleBackend, "invoke", _invoke)
    return RUNTIME
