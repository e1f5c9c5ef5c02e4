"""A Genesys Cloud API simulator on loopback, speaking the real shapes.

Genesys Cloud has no local edition. Tests, the local runner, the CLI and the
benchmarks point the pipeline's ``GENESYS_LOGIN_BASE_URL`` and
``GENESYS_API_BASE_URL`` at one ``GenesysSimulator.base_url``.

    with GenesysSimulator(client_id="cid", client_secret="secret") as sim:
        sim.fail_next(2, status=503)
        ...
        assert len(sim.writes_for(conversation_id)) == 1
"""

from __future__ import annotations

from .server import GenesysSimulator, RequestSecond, SimulatedWrite, error_body, rate_limited_body

__all__ = ["GenesysSimulator", "RequestSecond", "SimulatedWrite", "error_body", "rate_limited_body"]
