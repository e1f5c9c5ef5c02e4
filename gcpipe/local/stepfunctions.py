"""Step Functions gaps of moto 5.2.5 (with ``execute_state_machine``), closed here.

1. ASL ``Retry`` really sleeps: ``RetrierDecl._eval_body`` calls
   ``time.sleep(interval)`` with the computed backoff. ``moto_patches`` swaps the
   ``time`` that module sees for one whose ``sleep`` is scaled by
   ``RETRY_CLOCK.scale`` (0 = skip, the default for tests; 1 = real time, for a
   demo). The requested intervals are recorded, so a test can assert the
   backoff the ASL asked for without waiting for it.
2. No "Step Functions Execution Status Change" events. On AWS they go to the
   default bus for every status change; the pipeline's error logger hangs off
   them. ``moto_patches`` wraps ``Execution.start`` (RUNNING) and the execution
   worker's ``terminated`` callback (SUCCEEDED/FAILED/TIMED_OUT/ABORTED) to
   put the event, with AWS's detail shape, on the default bus of the
   execution's account and region. Rules there (the real one from the
   template) route it; Lambda targets are invoked asynchronously
   (eventbridge.py).
3. An execution has no status between its creation and ``start``: the backend appends it to its
   machine's list first, so a ListExecutions or DescribeExecution in that window (a poller's idleness
   check) raises ``AttributeError`` on ``exec_status.value``. On AWS an execution is RUNNING from the
   moment StartExecution creates it: ``execution_init`` sets that.
4. Every JSONPath is parsed anew: moto's ASL (``extract_json``, ``ResultPath``) and EventBridge's input
   templates call jsonpath_ng's ``parse``, which builds a ply parser each time (about 2 ms). With thousands of
   executions that was a large share of the local Step Functions' CPU (py-spy on a 5,000-event chaos run).
   ``cached_jsonpath_parse`` memoises it: a parsed path is only read (``find``, ``update``), never changed.
5. A Lambda task builds a new boto3 client for every invocation (``boto_client_for``: about 7 ms of CPU,
   13 % of the emulator's GIL time in a 5,000-event run). ``reused_lambda_client`` keeps one client per
   region and endpoint, made as moto makes it, with a connection pool sized for the executions' concurrent
   invokes (a botocore client is safe to share between threads once made).
6. StopExecution does not end a Retry wait: moto marks the execution stopped and the retrier's loop sees it
   only when its sleep is over (up to MaxDelaySeconds at real time). Until then the ABORTED status change is
   not emitted; the throughput bench's next stack, in the same process, received it and ran its error logger.
   ``retrier_with_environment`` makes the retrier's environment (the execution's, or its Map or Parallel
   branch's) known to ``RETRY_CLOCK.sleep`` while it runs, and the sleep ends when that environment stops,
   as the wait does on AWS.
7. No ``RedriveExecution``. ``replay_execution`` is the local stand-in and
   says so: it starts a *new* execution with the same input (AWS's redrive
   resumes the same execution at the failed state).
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import threading
import time as _time
from dataclasses import dataclass
from typing import Any

from . import service_metrics

LOG = logging.getLogger(__name__)

STATUS_CHANGE_DETAIL_TYPE = "Step Functions Execution Status Change"
STOP_POLL_SECONDS = 0.25  # how soon a Retry wait sees a stop it was not woken for (gap 6)
_EXECUTION = threading.local()  # .env: the ASL environment of the retrier running on this thread (gap 6)


class RetryClock:
    """What ``time`` is inside moto's retrier: sleeps scaled by ``scale``; every request recorded."""

    def __init__(self) -> None:
        self.scale = 0.0
        self.requested: list[float] = []
        self.slept: list[float] = []  # what was really slept, after scaling (tests read this, not the wall clock)

    def sleep(self, seconds: float) -> None:
        self.requested.append(float(seconds))
        if self.scale > 0:
            self.slept.append(float(seconds) * self.scale)
            _wait_unless_stopped(seconds * self.scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


RETRY_CLOCK = RetryClock()


def _wait_unless_stopped(seconds: float) -> None:
    """Sleep ``seconds``, or less if this thread's execution stops (StopExecution) meanwhile."""
    env = getattr(_EXECUTION, "env", None)
    if env is None:  # gap 6's patch removed
        _time.sleep(seconds)
        return
    deadline = _time.monotonic() + seconds
    while env.is_running():
        left = deadline - _time.monotonic()
        if left <= 0:
            return
        env.program_state_event.wait(min(left, STOP_POLL_SECONDS))  # set on every change of program state


def retrier_with_environment(original: Any) -> Any:
    """``RetrierDecl._eval_body(env)``, with ``env`` known to ``RETRY_CLOCK.sleep`` while it runs."""

    def eval_body(self: Any, env: Any) -> None:
        _EXECUTION.env = env
        try:
            original(self, env)
        finally:
            _EXECUTION.env = None

    return eval_body


class StatusEvents:
    """Emission switch and in-flight count of status-change events (for wait_until_idle)."""

    def __init__(self) -> None:
        self.enabled = True
        self.emitted: list[dict[str, Any]] = []
        self._busy = 0
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            self._busy += 1

    def __exit__(self, *exc: Any) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    @property
    def busy(self) -> int:
        return self._busy


STATUS_EVENTS = StatusEvents()


def _millis(value: datetime.datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


def status_change_detail(execution: Any, status: str | None = None) -> dict[str, Any]:
    """The detail of AWS's "Step Functions Execution Status Change" event for ``execution``."""
    status = status or execution.status
    output = None
    if status == "SUCCEEDED" and execution.output is not None:
        output = json.dumps(execution.output, separators=(",", ":"))
    redrivable = status in ("FAILED", "TIMED_OUT", "ABORTED")
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date) if status != "RUNNING" else None,
        "input": json.dumps(execution.input_data, separators=(",", ":")),
        "output": output,
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if output is not None else None,
        "error": execution.error,
        "cause": execution.cause,
        "redriveCount": 0,
        "redriveDate": None,
        "redriveStatus": "REDRIVABLE" if redrivable else "NOT_REDRIVABLE",
        "redriveStatusReason": "" if redrivable else f"Execution is {status} and cannot be redriven",
    }


def _emit_status_change(execution: Any, status: str | None = None) -> None:
    if not STATUS_EVENTS.enabled:
        return
    from moto.events.models import events_backends

    detail = status_change_detail(execution, status)
    STATUS_EVENTS.emitted.append(detail)
    try:
        events_backends[execution.account_id][execution.region_name].put_events(
            [
                {
                    "Source": "aws.states",
                    "DetailType": STATUS_CHANGE_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "Resources": [execution.exec_arn],
                }
            ]
        )
    except Exception:  # never break the execution over its event
        LOG.exception("could not emit the status change event of %s", execution.exec_arn)


def _record_end(execution: Any) -> None:
    started, stopped = _millis(execution.start_date), _millis(execution.stop_date)
    service_metrics.execution_ended(
        execution.state_machine_arn,
        execution.status,
        stopped - started if started is not None and stopped is not None else None,
    )


def cached_jsonpath_parse(original: Any) -> Any:
    """jsonpath_ng's ``parse``, memoised per path (gap 4)."""
    return functools.lru_cache(maxsize=4096)(original)


LAMBDA_CLIENT_POOL = 64  # concurrent Lambda tasks sharing one client (botocore's default pool holds 10)


def reused_lambda_client(_original: Any) -> Any:
    """moto's ``boto_client_for`` for Lambda tasks, memoised per region and endpoint (gap 5)."""
    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    clients: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto sends to its own server unless its in-process stubber is on: the endpoint is part of the key
        endpoint = None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
        key = (region, service, endpoint)
        with lock:
            if key not in clients:
                # moto's own client (its credentials and configuration), with a pool for many executions' invokes
                clients[key] = boto3.client(
                    service,
                    region_name=region,
                    aws_access_key_id="ak",
                    aws_secret_access_key="sk",
                    endpoint_url=endpoint,
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        max_pool_connections=LAMBDA_CLIENT_POOL,
                    ),
                )
            return clients[key]

    return boto_client_for


def execution_init(original: Any) -> Any:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        from moto.stepfunctions.parser.api import ExecutionStatus

        original(self, *args, **kwargs)
        self.exec_status = ExecutionStatus.RUNNING  # what AWS reports from creation on; start() sets it again

    return init


def execution_start(original: Any) -> Any:
    def start(self: Any) -> None:
        with STATUS_EVENTS:
            # Emitted before the worker thread starts, so RUNNING precedes the
            # terminal event. Sync (Express) executions have no status events on AWS.
            if type(self).__name__ == "Execution":
                service_metrics.execution_started(self.state_machine_arn)
                _emit_status_change(self, "RUNNING")
            original(self)

    return start


def terminated(original: Any) -> Any:
    def terminated(self: Any) -> None:
        with STATUS_EVENTS:
            original(self)
            if type(self.execution).__name__ == "Execution":
                _record_end(self.execution)
                _emit_status_change(self.execution)

    return terminated


@dataclass(frozen=True)
class LocalReplay:
    """What ``replay_execution`` did. ``note`` says plainly that this is not AWS's redrive."""

    original_execution_arn: str
    new_execution_arn: str
    note: str


REPLAY_MARK = "-replay-"  # the same naming as gcpipe.ops.executions, so `gcpipe failures` sees replays
EXECUTION_NAME_MAX = 80


def replay_execution(sfn_client: Any, execution_arn: str) -> LocalReplay:
    """Local stand-in for ``RedriveExecution`` (moto has none): a new execution with the same input.

    AWS's redrive resumes the *same* execution at the unsuccessful state; the
    name, ARN and history stay, and ``redriveCount`` goes up. Here the replay is
    a new execution named ``<original name>-replay-<N>`` (80 characters at
    most), so its history and ``$$.Execution.Name`` differ; the input, hence
    the event's dedup key, is the same.
    """
    described = sfn_client.describe_execution(executionArn=execution_arn)
    if described["status"] == "RUNNING":
        raise ValueError(f"{execution_arn} is RUNNING; only a closed execution can be replayed")
    base = described["name"].rsplit(REPLAY_MARK, 1)[0]
    for n in range(1, 1000):
        suffix = f"{REPLAY_MARK}{n}"
        name = base[: EXECUTION_NAME_MAX - len(suffix)] + suffix
        try:
            started = sfn_client.start_execution(
                stateMachineArn=described["stateMachineArn"], name=name, input=described["input"]
            )
        except sfn_client.exceptions.ExecutionAlreadyExists:
            continue
        return LocalReplay(
            original_execution_arn=execution_arn,
            new_execution_arn=started["executionArn"],
            note=(
                "local replay, not AWS RedriveExecution (moto has none): started the new execution "
                f"{name!r} with the same input"
            ),
        )
    raise RuntimeError(f"too many replays of {execution_arn}")
