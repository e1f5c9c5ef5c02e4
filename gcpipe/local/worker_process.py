"""The runtime's handle on one worker process (``worker.py``): start it, invoke it, end it.

An invocation is bounded as Lambda bounds it:
- **timeout**: past the function's timeout the process is killed (SIGKILL: nothing of the handler runs
  after it) and the invoke answers Lambda's timeout error, ``Sandbox.Timedout`` ("Task timed out after
  N.NN seconds"; Step Functions fails the task with that error name);
- **memory**: a resident set beyond the function's memory size kills the process, answered as
  ``Runtime.OutOfMemory`` (Lambda: "Runtime exited with error: signal: killed");
- **crash**: a process that ends during an invocation (``os._exit``, a segfault, any signal) answers
  ``Runtime.ExitError`` with the exit status as Lambda words it ("exit status 3", "signal: segmentation
  fault").
Each is an unhandled function error (``x-amz-function-error: Unhandled``). A process that ended is not
reused: the pool starts a new one for the next invocation (a cold start, as on Lambda).

Processes are started from one long-lived thread (``_Spawner``): the worker asks the kernel to kill it
when its parent thread ends (PR_SET_PDEATHSIG), so the spawning thread must live as long as the runtime.
Each worker has its own session, so a terminal's Ctrl-C reaches the runtime only, which drains or stops.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit on the init phase (importing the handler)
POLL_SECONDS = 0.05  # how often a running invocation's memory is looked at
_SIGNAL_WORDS = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGKILL: "killed",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "floating point exception",
}
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

Output = Callable[[str], None]
OnMessage = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process is started with."""

    function_name: str
    code_dir: str
    environment: dict[str, str]  # the whole environment of the process


@dataclass(frozen=True)
class InvokeOutcome:
    payload: bytes  # the handler's JSON result, or Lambda's error payload
    function_error: str | None  # "Unhandled" for any function error (an exception, a timeout, a crash)
    error_type: str | None
    ended: bool  # the process is gone (timeout, crash, memory): not reusable


class _Spawner:
    """The one thread every worker process is started from (their parent-death signal follows it)."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, start: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="gcpipe-worker-spawner", daemon=True)
                self._thread.start()
        done: Future[Any] = Future()
        self._requests.put((start, done))
        return done.result()

    def stop(self) -> None:
        """End the thread (only once no worker it started is alive: they would be killed with it)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._requests.put(None)
            thread.join(5)

    def _loop(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            start, done = request
            try:
                done.set_result(start())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.set_exception(exc)


SPAWNER = _Spawner()


class WorkerProcess:
    """One function instance. ``invoke`` is called by one thread at a time (the pool hands it out)."""

    def __init__(self, spec: WorkerSpec, output: Output):
        self.spec = spec
        self._output = output
        self._sock, child = socket.socketpair()
        env = dict(spec.environment, GCPIPE_WORKER_FD=str(child.fileno()), GCPIPE_WORKER_PARENT=str(os.getpid()))
        try:
            self.process: subprocess.Popen[bytes] = SPAWNER.run(
                lambda: subprocess.Popen(
                    [sys.executable, "-m", "gcpipe.local.worker"],
                    cwd=spec.code_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    pass_fds=(child.fileno(),),
                    start_new_session=True,
                )
            )
        finally:
            child.close()
        self._buffer = b""
        self._ready = False
        self._init_error: dict[str, Any] | None = None
        self.ended = False
        self._reader = threading.Thread(
            target=self._forward_output, name=f"lambda-output-{spec.function_name}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    # -- output and channel ---------------------------------------------------------------
    def _forward_output(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            self._output(line.decode("utf-8", errors="replace"))

    def _receive(self, timeout: float) -> dict[str, Any] | None | bool:
        """A message; None when the worker closed its end (it ended); False when nothing came in ``timeout``."""
        while b"\n" not in self._buffer:
            self._sock.settimeout(max(timeout, 0.001))
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                return False
            except OSError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _rss_bytes(self) -> int:
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0

    # -- invocation -----------------------------------------------------------------------
    def invoke(
        self,
        event: Any,
        *,
        request_id: str,
        function_arn: str,
        timeout_seconds: float,
        memory_mb: int,
        on_message: OnMessage,
    ) -> InvokeOutcome:
        if not self._ready:  # a cold start: the init phase has its own limit, not the function's timeout
            init = self._wait_ready(on_message)
            if init is not None:
                return init
        deadline = time.monotonic() + timeout_seconds
        message = {
            "type": "invoke",
            "request_id": request_id,
            "payload": event,
            "function_arn": function_arn,
            "deadline_ms": int((time.time() + (deadline - time.monotonic())) * 1000),
        }
        try:
            self._sock.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            return self._ended_outcome(request_id)
        limit = memory_mb * 1024 * 1024
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                return _error(
                    request_id, "Sandbox.Timedout", f"Task timed out after {timeout_seconds:.2f} seconds", ended=True
                )
            got = self._receive(min(remaining, POLL_SECONDS))
            if got is False:
                if self._rss_bytes() > limit:
                    self.kill()
                    return _error(
                        request_id, "Runtime.OutOfMemory", "Runtime exited with error: signal: killed", ended=True
                    )
                continue
            if got is None:
                return self._ended_outcome(request_id)
            assert isinstance(got, dict)
            kind = got.get("type")
            if kind == "result":
                return InvokeOutcome(str(got.get("body", "null")).encode(), None, None, False)
            if kind == "error":
                error = dict(got.get("error") or {}, requestId=request_id)
                return InvokeOutcome(json.dumps(error).encode(), "Unhandled", str(error.get("errorType")), False)
            on_message(got)

    def _wait_ready(self, on_message: OnMessage) -> InvokeOutcome | None:
        deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                return _error(
                    "", "Sandbox.Timedout", f"Init phase timed out after {INIT_TIMEOUT_SECONDS:.2f} seconds", ended=True
                )
            got = self._receive(remaining)
            if got is False:
                continue
            if got is None:
                return self._ended_outcome("")
            assert isinstance(got, dict)
            if got.get("type") == "ready":
                self._ready = True
                return None
            if got.get("type") == "init_error":
                self._init_error = {k: v for k, v in got.items() if k != "type"}
                self.close()
                return InvokeOutcome(
                    json.dumps(self._init_error).encode(), "Unhandled", str(self._init_error.get("errorType")), True
                )
            on_message(got)

    def _ended_outcome(self, request_id: str) -> InvokeOutcome:
        try:
            code = self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        self.ended = True
        return _error(request_id, "Runtime.ExitError", f"Runtime exited with error: {exit_status(code)}", ended=True)

    # -- the end --------------------------------------------------------------------------
    def kill(self) -> None:
        """SIGKILL, as Lambda ends an environment that timed out or ran out of memory."""
        self.ended = True
        try:
            self.process.kill()
        except OSError:
            pass
        self._reap(5)

    def shut_channel(self) -> None:
        """Start the shutdown: the worker exits when it finds its channel closed (``close`` waits for it)."""
        self.ended = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self, grace_seconds: float = 2.0) -> None:
        """Shut the environment down: the worker exits when its channel closes; killed if it does not."""
        self.shut_channel()
        if not self._reap(grace_seconds):
            self.kill()

    def _reap(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        self._reader.join(1)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._sock.close()
        return True


def exit_status(code: int | None) -> str:
    """A process's end, as Lambda's runtime error words it (Go's os.ProcessState wording)."""
    if code is None:
        return "unknown"
    if code < 0:
        try:
            return "signal: " + _SIGNAL_WORDS.get(signal.Signals(-code), signal.Signals(-code).name.lower())
        except ValueError:
            return f"signal: {-code}"
    return f"exit status {code}"


def _error(request_id: str, error_type: str, message: str, *, ended: bool) -> InvokeOutcome:
    text = f"RequestId: {request_id} Error: {message}" if request_id else message
    payload = {"errorType": error_type, "errorMessage": text}
    if request_id:
        payload["requestId"] = request_id
    return InvokeOutcome(json.dumps(payload).encode(), "Unhandled", error_type, ended)


__all__ = ["INIT_TIMEOUT_SECONDS", "InvokeOutcome", "WorkerProcess", "WorkerSpec", "exit_status"]
