"""Run Lambda functions as Lambda does: every function instance in its own process.

Gap closed (moto 5.2.5): without Docker (``{"lambda": {"use_docker": False}}``)
``LambdaSimpleBackend.invoke`` only echoes its input. ``invoke`` replaces that method (``moto_patches``): the invocation
goes to a worker process of the function (``worker.py``; the runtime's handle is ``worker_process.py``),
which imported the function's configured handler (``dispatcher.handler.lambda_handler``) from the
function's code directory and runs it with a Lambda-like context.

Each function has a warm pool of workers, started lazily (a cold start: the first invocation that finds
no idle worker starts one) and reused like Lambda's execution environments. Each worker has exactly the
function's configured environment (``environment_for``: the template's variables, the variables the
Lambda runtime sets, credentials, and ``AWS_ENDPOINT_URL``: workers reach the emulator over moto's server
endpoint, ``aws_endpoint``, or one this runtime starts in this process when none is set) and its own
module state (token cache, boto3 clients, Powertools' caches). Nothing is shared between functions, or
between two instances of one function.

Errors come back as Lambda returns them: header ``x-amz-function-error: Unhandled`` and payload
``{"errorType", "errorMessage", "stackTrace"}``; moto's Step Functions interpreter reads ``errorType``,
so ASL ``Retry`` by error name works as on AWS. Limits, as AWS enforces them:

- **Timeout**: a worker running past the function's timeout is killed, and the caller gets
  ``Sandbox.Timedout`` (memory beyond the function's size: ``Runtime.OutOfMemory``; a process that ends
  mid-invocation, ``os._exit`` or a signal: ``Runtime.ExitError``). The pool replaces the worker.
- **Reserved concurrency** (``ReservedConcurrentExecutions``, PutFunctionConcurrency): the pool never runs
  more processes than that, and a synchronous invoke that finds them all busy fails with the Invoke API's
  own error, HTTP 429 ``TooManyRequestsException`` (Reason
  ``ReservedFunctionConcurrentInvocationLimitExceeded``), not a function error: Step Functions sees
  ``Lambda.TooManyRequestsException`` (its Retry applies), the SQS poller leaves the batch to the
  visibility timeout, as Lambda's event source mapping does. An asynchronous (Event) invocation waits for
  a slot (Lambda retries throttled events for up to the maximum event age, 6 h by default: here until a
  slot frees, or ``ASYNC_MAX_EVENT_AGE_SECONDS``). Time compression: while the state machine's Retry waits
  are scaled down (``RETRY_CLOCK.scale`` < 1: tests, the demo) a synchronous invoke first waits up to
  ``compressed_slot_wait_seconds`` (30 s) for a slot; at scale 1 it is refused at once. A function without
  reserved concurrency gets up to ``max_workers_per_function`` processes (invocations beyond wait for one:
  a local limit, not Lambda's account concurrency, which is not emulated).
- **IAM**: with the function role's policy registered (``set_role_policy``: the deployer's resolved
  template), every AWS call the function makes is checked (``iam``, ``iam_guard``); a denied call fails
  with AccessDenied as on AWS. ``permissions`` collects the decisions (granted-but-unused per role).

Hooks: ``worker_hooks`` (``module`` or ``module:function``) and ``worker_environment`` (variables) go to
every worker started from then on; the worker calls each hook (default ``install()``) before it imports
the handler (``worker.py``: the fault-injection seam). Lambda output (stdout and stderr of every worker, line by
line) goes to ``output`` (default: this process's ``sys.stdout`` at the time of the line).

Where the code comes from: ``register_code_dir(function_name, path)`` (the deployer registers the
template's asset directory), else the function's own zip (``Code.ZipFile`` or the S3 object), extracted
once into a temporary directory. It is the worker's working directory and first path entry (``/var/task``).

Not emulated: the account concurrency limit, Event-invocation retries of function errors, destinations.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import io
import json
import logging
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from . import service_metrics
from .iam import Decision, PermissionUse, RolePolicy
from .outcome_sink import FEED
from .worker_process import SPAWNER, InvokeOutcome, WorkerProcess, WorkerSpec

LOG = logging.getLogger(__name__)

ASYNC_MAX_EVENT_AGE_SECONDS = 6 * 3600  # Lambda's default MaximumEventAgeInSeconds for asynchronous invocations
DEFAULT_MAX_WORKERS = 4  # processes per function without reserved concurrency
# Worker credentials: the emulator accepts any; a real profile never reaches a worker.
WORKER_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}


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
            return ConcurrencySnapshot(
                dict(+self._running), dict(self._peak), dict(self._throttled), dict(+self._waiting)
            )

    def reset(self) -> None:
        with self._cond:
            self._peak.clear()
            self._throttled.clear()


class FunctionPool:
    """The warm workers of one function: idle ones are reused, new ones started up to ``size``."""

    def __init__(self, name: str, size: int):
        self.name = name
        self.size = size
        self._cond = threading.Condition()
        self._idle: list[WorkerProcess] = []
        self._all: list[WorkerProcess] = []
        self._starting = 0
        self.started = 0  # workers started (cold starts)

    def acquire(self, start: Callable[[], WorkerProcess]) -> WorkerProcess:
        with self._cond:
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.process.poll() is None:
                        return worker
                    self._all.remove(worker)  # ended while idle
                if len(self._all) + self._starting < self.size:
                    self._starting += 1
                    break
                self._cond.wait()
        try:
            worker = start()
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._starting -= 1
            self._all.append(worker)
            self.started += 1
        return worker

    def release(self, worker: WorkerProcess) -> None:
        with self._cond:
            if worker.ended:
                if worker in self._all:
                    self._all.remove(worker)
            else:
                self._idle.append(worker)
            self._cond.notify_all()

    @property
    def pids(self) -> list[int]:
        with self._cond:
            return [w.pid for w in self._all]

    def shut(self) -> list[WorkerProcess]:
        """Forget every worker and tell each to end (its channel closes); the caller reaps them (``close``)."""
        with self._cond:
            workers, self._all, self._idle = list(self._all), [], []
            self._cond.notify_all()
        for w in workers:  # all at once: a busy worker is not waited for before the idle ones are told
            w.shut_channel()
        return workers


@dataclass(frozen=True)
class WorkerSnapshot:
    """Per function: worker processes alive now, and how many were ever started (cold starts)."""

    alive: dict[str, list[int]]
    started: dict[str, int]


class LambdaRuntime:
    """The functions' worker pools, their code, environments, role policies and limits."""

    def __init__(self) -> None:
        self._code_dirs: dict[str, Path] = {}
        self._env_overrides: dict[str, dict[str, str]] = {}
        self._policies: dict[str, Path] = {}
        self._extracted: dict[str, Path] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="gcpipe-lambda-code-")
        self._lock = threading.Lock()
        self._pools: dict[str, FunctionPool] = {}
        self._async_in_flight = 0
        self._async_cond = threading.Condition()
        self._server: Any = None
        self.aws_endpoint: str | None = None
        self.concurrency = ReservedConcurrency()
        self.permissions = PermissionUse()
        self.compressed_slot_wait_seconds = 30.0
        self.max_workers_per_function = DEFAULT_MAX_WORKERS
        self.worker_hooks: list[str] = []
        self.worker_environment: dict[str, str] = {}
        self.output: Callable[[str], object] = lambda line: sys.stdout.write(line)
        self.invocations: list[dict[str, Any]] = []  # (function, request id, error type) of every invocation

    # -- configuration -------------------------------------------------------------------
    def register_code_dir(self, function_name: str, code_dir: str | Path) -> None:
        self._code_dirs[function_name] = Path(code_dir).resolve()

    def set_environment_overrides(self, function_name: str, overrides: Mapping[str, str]) -> None:
        """Variables that replace the configured ones at invocation (none, unless a caller says so)."""
        self._env_overrides[function_name] = dict(overrides)

    def set_role_policy(self, function_name: str, policy: RolePolicy) -> None:
        """Check every AWS call of the function's workers against its role's policy (from now on)."""
        path = Path(self._tmp.name) / f"policy-{hashlib.sha256(function_name.encode()).hexdigest()[:12]}.json"
        self._policies[function_name] = policy.write(path)
        self.permissions.register(policy)

    def reset(self) -> None:
        """End every worker and forget every function: the next invocations are cold starts."""
        self.stop_workers()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.aws_endpoint = None
        self._code_dirs.clear()
        self._env_overrides.clear()
        self._policies.clear()
        self._extracted.clear()
        self.concurrency = ReservedConcurrency()  # a caller's replacement (the chaos soak's throttles) ends here
        self.permissions.reset()
        self.invocations.clear()
        self.worker_hooks = []
        self.worker_environment = {}

    def stop_workers(self) -> None:
        """End every worker process (each pool's idle and busy ones); the next invocations start new ones."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        # Every pool's workers are told before any is waited for: they end side by side.
        for worker in [w for pool in pools for w in pool.shut()]:
            worker.close()
        SPAWNER.stop()  # no worker left: its thread may end (the next worker starts it again)

    def workers(self) -> WorkerSnapshot:
        with self._lock:
            pools = dict(self._pools)
        return WorkerSnapshot({n: p.pids for n, p in pools.items()}, {n: p.started for n, p in pools.items()})

    def endpoint(self) -> str:
        """Where workers reach the emulator: ``aws_endpoint``, else a moto server started here (it serves the
        same backends as ``mock_aws`` in this process)."""
        with self._lock:
            if self.aws_endpoint:
                return self.aws_endpoint
            if self._server is None:
                from .moto_server import MotoServer

                logging.getLogger("werkzeug").setLevel(logging.ERROR)
                server = MotoServer()
                server.start()
                self._server = server
            host, port = self._server.get_host_and_port()
            return f"http://{host}:{port}"

    # -- code and environment -------------------------------------------------------------
    def code_dir_for(self, fn: Any) -> Path:
        registered = self._code_dirs.get(fn.function_name)
        if registered is not None:
            return registered
        code_bytes = getattr(fn, "code_bytes", b"") or b""
        if not code_bytes:
            raise RuntimeError(
                f"no code for function {fn.function_name}: register its code directory "
                "(LambdaRuntime.register_code_dir) or give it a zip"
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

    def environment_for(self, fn: Any, code_dir: Path) -> dict[str, str]:
        """The function's configured variables on top of the variables the Lambda runtime sets."""
        region = fn.region
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time or 'python3.12'}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": fn.handler or "",
            # There is no X-Ray daemon locally. SAM CLI sets this too; Powertools
            # then disables its Tracer, as in any Lambda emulator.
            "AWS_SAM_LOCAL": "true",
        }
        env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
        env.update(self._env_overrides.get(fn.function_name, {}))
        return env

    def _worker_spec(self, fn: Any) -> WorkerSpec:
        code_dir = self.code_dir_for(fn)
        env = self.environment_for(fn, code_dir)
        env.update(WORKER_CREDENTIALS)
        env["AWS_ENDPOINT_URL"] = self.endpoint()
        env["PYTHONUNBUFFERED"] = "1"  # log lines reach the runtime's output as they are written
        policy = self._policies.get(fn.function_name)
        if policy is not None:
            env["GCPIPE_LOCAL_IAM_POLICY"] = str(policy)
        if self.worker_hooks:
            env["GCPIPE_LOCAL_HOOKS"] = ",".join(self.worker_hooks)
        env.update(self.worker_environment)
        return WorkerSpec(fn.function_name, str(code_dir), env)

    def _pool(self, fn: Any) -> FunctionPool:
        with self._lock:
            pool = self._pools.get(fn.function_name)
            limit = ReservedConcurrency.limit_of(fn)
            size = limit if limit is not None else self.max_workers_per_function
            if pool is None:
                pool = self._pools[fn.function_name] = FunctionPool(fn.function_name, size)
            pool.size = size  # PutFunctionConcurrency may have changed it
            return pool

    # -- invocation -----------------------------------------------------------------------
    def invoke(
        self, fn: Any, payload: bytes | str | None, *, slot_wait_seconds: float = 0.0
    ) -> tuple[bytes, str | None]:
        """Run the function once in one of its workers. Returns (response payload, function error or None).

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
        record: dict[str, Any] = {"function": fn.function_name, "request_id": request_id, "error_type": None}
        try:
            event = json.loads(payload) if payload else {}
            pool = self._pool(fn)
            spec = self._worker_spec(fn)
            worker = pool.acquire(lambda: WorkerProcess(spec, self._write_output))
            try:
                outcome: InvokeOutcome = worker.invoke(
                    event,
                    request_id=request_id,
                    function_arn=fn.function_arn,
                    timeout_seconds=float(fn.timeout or 3),
                    memory_mb=int(fn.memory_size or 128),
                    on_message=functools.partial(self._on_message, fn.function_name),
                )
            finally:
                pool.release(worker)
        except Exception as exc:  # the runtime's own failure, reported as Lambda's service error
            LOG.exception("%s: the local runtime could not run the invocation", fn.function_name)
            outcome = InvokeOutcome(
                json.dumps({"errorType": "Runtime.Unknown", "errorMessage": str(exc)}).encode(),
                "Unhandled",
                "Runtime.Unknown",
                True,
            )
        record["error_type"] = outcome.error_type
        if outcome.function_error:
            LOG.info("%s failed: %s", fn.function_name, outcome.error_type)
        self.invocations.append(record)
        return outcome.payload, outcome.function_error

    def _write_output(self, line: str) -> None:
        try:
            self.output(line)
        except Exception:  # noqa: BLE001 - a closed log file must not stop a worker's output thread
            pass

    def _on_message(self, function_name: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "outcome":
            FEED.publish(message.get("record") or {}, function_name)
        elif kind == "api":
            self.permissions.record(
                str(message.get("role")),
                Decision(
                    bool(message.get("allowed")),
                    str(message.get("action")),
                    str(message.get("resource")),
                    message.get("statement"),
                ),
            )

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


RUNTIME = LambdaRuntime()
atexit.register(RUNTIME.stop_workers)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name.lower():
                return v
    return value


def invoke(
    self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
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
            self.description = json.dumps(
                {
                    "__type": "TooManyRequestsException",
                    "message": message,
                    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                    "Type": "User",
                }
            )

    return TooManyRequests
