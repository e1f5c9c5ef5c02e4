"""The e2e tests run in two xdist groups (`make test`: -n 2 --dist loadgroup): the runs on the checkout's .local-run
share one worker, since two of them side by side rotate each other's lambdas.log; the LocalPipelines of their own
run on the other. pytest 9.2 with pytest-xdist 3.8 grouped nothing, silently."""

from __future__ import annotations

from pathlib import Path

from .conftest import CHECKOUT_RUN_FILES


def test_each_e2e_test_runs_in_its_group_under_loadgroup(request):
    if not request.config.getvalue("loadgroup"):
        return  # not distributed: one process runs everything, in order
    assert request.node.nodeid.endswith("@e2e"), request.node.nodeid
    checkout_runs = [item.nodeid for item in request.session.items if Path(str(item.fspath)).name in CHECKOUT_RUN_FILES]
    assert checkout_runs
    assert all(nodeid.endswith("@local-run") for nodeid in checkout_runs), checkout_runs
