"""A chaos run compresses time; its in-progress retries must still outlast its processor timeout."""

from __future__ import annotations

import pytest

from gcpipe.chaos.plan import make_plan
from gcpipe.chaos.run import ChaosOptions, check_processor_capacity, check_time_compression
from gcpipe.local.run import RunnerError
from gcpipe.local.run.stack_config import retry_wait_seconds

IN_PROGRESS = "IdempotencyAlreadyInProgressError"


def _definition(retry: list[dict]) -> dict:
    return {"StartAt": "Process", "States": {"Process": {"Type": "Task", "Retry": retry, "End": True}}}


def test_the_in_progress_wait_is_read_from_the_first_retrier_that_names_it():
    # Given the stack's retriers: the in-progress one 2 s doubling, capped at 30 s, 6 attempts; a later catch-all
    definition = _definition(
        [
            {"ErrorEquals": ["GenesysRateLimited"], "IntervalSeconds": 5, "MaxAttempts": 10, "BackoffRate": 2.0},
            {
                "ErrorEquals": [IN_PROGRESS],
                "IntervalSeconds": 2,
                "MaxAttempts": 6,
                "BackoffRate": 2.0,
                "MaxDelaySeconds": 30,
            },
            {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1},
        ]
    )
    # Then the wait is 2 + 4 + 8 + 16 + 30 + 30, and an error nobody retries waits nothing
    assert retry_wait_seconds(definition, IN_PROGRESS) == 90
    assert retry_wait_seconds(_definition([]), IN_PROGRESS) == 0


def test_the_defaults_outlast_the_runs_processor_timeout():
    # Given the default scale and the plan's processor timeout, against the stack's 90 s of in-progress waits
    timeout = make_plan(1, 4).processor_timeout_seconds
    # Then the run accepts them
    check_time_compression(90, ChaosOptions(events=1, seed=1).retry_time_scale, timeout)


def test_a_scale_at_which_the_retries_end_before_the_timeout_is_refused_with_the_fix():
    # Given the 4 s-era scale (5.4 s of waits) against a 10 s timeout
    with pytest.raises(RunnerError) as refused:
        check_time_compression(90, 0.06, 10)
    # Then the error names the scale and the least one that works
    assert "retry_time_scale 0.06" in str(refused.value) and "above 0.111" in str(refused.value)


def test_a_rate_the_processors_reserved_concurrency_cannot_take_is_refused():
    # Given the defaults, then the run accepts them
    options = ChaosOptions(events=1, seed=1)
    check_processor_capacity(options.genesys_rate, options.processor_concurrency)
    # Given 50 requests/s against dev's 5 processors (what the first worker-process soaks ran)
    with pytest.raises(RunnerError) as refused:
        check_processor_capacity(50, 5)
    # Then the error names the concurrency the rate needs
    assert "at least 50" in str(refused.value)
