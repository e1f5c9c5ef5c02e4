"""The e2e tests share one xdist worker (`make test`: -n 2 --dist loadgroup): two local runs side by side in one
checkout rotate each other's .local-run/lambdas.log. pytest 9.2 with pytest-xdist 3.8 grouped nothing, silently."""
from __future__ import annotations


def test_an_e2e_test_runs_in_the_e2e_group_under_loadgroup(request):
    if not request.config.getvalue("loadgroup"):
        return  # not distributed: one process runs everything, in order
    assert request.node.nodeid.endswith("@e2e"), request.node.nodeid
