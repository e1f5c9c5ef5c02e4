"""A chaos run's wait for quiet ends on lack of progress, also when the emulator never answers again."""

from __future__ import annotations

import threading

from gcpipe.chaos.run import ChaosOptions, ChaosRun


class _EmulatorGone:
    def state(self):
        raise ConnectionError("the emulator is gone")


def test_an_emulator_that_never_answers_again_is_a_stall_not_a_wait_forever():
    # Given a run whose pipeline state can no longer be read
    run = ChaosRun(ChaosOptions(events=1, seed=0, quiet_timeout=0.3))
    answer: list[bool] = []
    # When it waits for quiet
    waiter = threading.Thread(target=lambda: answer.append(run.wait_quiet(_EmulatorGone())), daemon=True)
    waiter.start()
    waiter.join(10)
    # Then it gives up after its quiet timeout, as for any stall
    assert answer == [False]
