"""A kept-running local stack in its own process, driven as an operator drives it from a terminal.

``gcpipe local run --keep-running`` (or ``make up``) runs in a new session, so that Ctrl-C can be
sent to its whole process group as a terminal does. Waits are on conditions (the state file, a
file's content, the process ending), with generous timeouts: never fixed sleeps. ``close()``
always leaves nothing running.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from gcpipe import PROJECT_ROOT

STATE_FILE = PROJECT_ROOT / ".local-run" / "endpoints.json"
LOCK_FILE = PROJECT_ROOT / ".local-run" / "kept-stack.lock"  # held by the one kept-running test stack
BIN = Path(sys.executable).parent
GCPIPE = str(BIN / "gcpipe")
START_TIMEOUT = 900.0  # a cold synth and the demo mix on a loaded 2-core machine
STEP_TIMEOUT = 600.0


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def flat(text: str) -> str:
    """rich wraps long lines at word boundaries: compare text with its whitespace collapsed."""
    return " ".join(text.split())


def environment() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}


def as_in_a_terminal() -> None:
    """Popen preexec_fn: Ctrl-C (SIGINT) does what it does in a terminal. A test run started in the background
    by a shell without job control inherits SIGINT ignored, and Python then installs no KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class KeptStack:
    def __init__(self, command: list[str] | str, logs: Path):
        self.command = command
        self.logs = Path(logs)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = self.logs / "stack.out", self.logs / "stack.err"
        self.proc: subprocess.Popen | None = None
        self.state: dict[str, Any] = {}
        self._lock: Any = None

    def start(self) -> "KeptStack":
        # A kept-running stack owns the project's .local-run/ (state file, lambdas.log), as the README's
        # operator does: two at once (pytest-xdist workers) would read each other's files. One at a time.
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(LOCK_FILE, "w")  # noqa: SIM115 - held (and the flock with it) until close()
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        started = time.time()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.command,
                cwd=PROJECT_ROOT,
                env=environment(),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                shell=isinstance(self.command, str),
                executable="/bin/bash" if isinstance(self.command, str) else None,
            )

        def ready() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the local stack exited ({self.proc.returncode}) before it was up:\n{self.stderr()[-3000:]}"
                )
            try:
                if STATE_FILE.stat().st_mtime < started:
                    return None  # a previous run's file
                return json.loads(STATE_FILE.read_text())
            except (OSError, ValueError):
                return None

        self.state = wait_for(ready, START_TIMEOUT, f"the state file {STATE_FILE}")
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_stderr(self, text: str, timeout: float = STEP_TIMEOUT) -> str:
        def said() -> str | None:
            err = flat(self.stderr())
            if text in err:
                return err
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the stack exited ({self.proc.returncode}) without saying {text!r}:\n{err[-3000:]}"
                )
            return None

        return wait_for(said, timeout, f"{text!r} on the stack's stderr")

    def ctrl_c(self) -> None:
        """What Ctrl-C in its terminal does: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float = STEP_TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        try:
            self._stop()
        finally:
            if self._lock is not None:
                self._lock.close()  # releases the flock
                self._lock = None

    def _stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGINT, 5), (signal.SIGINT, 60), (signal.SIGKILL, 30)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue
        if STATE_FILE.exists() and self.state and json.loads(STATE_FILE.read_text()) == self.state:
            STATE_FILE.unlink()  # killed: never leave a state file pointing at nothing


def gcpipe(*args: str, timeout: float = STEP_TIMEOUT, **kw: Any) -> subprocess.CompletedProcess:
    """``gcpipe <args>`` from another terminal (the project directory)."""
    return subprocess.run(
        [GCPIPE, *args], cwd=PROJECT_ROOT, env=environment(), capture_output=True, text=True, timeout=timeout, **kw
    )


def audit_records(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def outcome_lines(log: Path) -> dict[str, str]:
    """dedup key -> outcome, from the Lambdas' JSON log (the evidence the run itself leaves)."""
    outcomes: dict[str, str] = {}
    for line in Path(log).read_text(errors="replace").splitlines():
        if line.startswith("{") and '"outcome"' in line:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("dedup_key") and record.get("outcome"):
                outcomes[record["dedup_key"]] = record["outcome"]
    return outcomes
