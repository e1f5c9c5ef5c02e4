"""When ``gcpipe local run`` stops waiting: on lack of progress, not on total time.

A big run on a slow machine can take minutes and still be healthy; what means
"stuck" is no new outcome for a while. ``--timeout`` is that while.
"""

from __future__ import annotations

import time
from typing import Callable


class ProgressWatch:
    """Tracks how many events have an outcome; stalled once that number has not moved for ``patience`` s."""

    def __init__(self, patience: float, clock: Callable[[], float] = time.monotonic):
        self.patience = patience
        self._clock = clock
        self.started = clock()
        self._last_change = self.started
        self.done = 0

    def observe(self, done: int) -> None:
        """``done``: events with an outcome so far (it only grows while a run lasts)."""
        if done != self.done:
            self.done = done
            self._last_change = self._clock()

    def restart(self) -> None:
        """A new phase: waiting starts now (sending its events took time that was not a stall)."""
        self._last_change = self._clock()

    @property
    def stalled(self) -> bool:
        return self._clock() - self._last_change > self.patience

    @property
    def rate(self) -> float:
        """Outcomes per second since the start."""
        elapsed = self._clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def explain(self, without_outcome: int, queued: int, running: int) -> str:
        """What a timeout means, for the summary: still working, and how fast; not a loss."""
        still = (
            f"{queued} on the main queue and {running} execution(s) running, so the pipeline was still working"
            if queued or running
            else "nothing left on the main queue or running"
        )
        return (
            f"stopped waiting after {self.patience:.0f} s without a new outcome: {without_outcome} event(s) had none "
            f"yet ({still}); it had reached {self.done} outcome(s) at {self.rate:.1f} events/s. Not known to be "
            "lost: raise --timeout on a slow machine"
        )


__all__ = ["ProgressWatch"]
