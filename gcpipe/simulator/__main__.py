"""``python -m gcpipe.simulator --port 8765``: run the Genesys simulator standalone until Ctrl-C."""
from __future__ import annotations

import argparse
import threading

from .server import DEFAULT_TOKEN_TTL_SECONDS, GenesysSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gcpipe.simulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--client-id", default="sim-client")
    parser.add_argument("--client-secret", default="sim-secret")
    parser.add_argument("--token-ttl", type=int, default=DEFAULT_TOKEN_TTL_SECONDS, help="token lifetime in seconds")
    parser.add_argument("--rate-limit", type=float, default=None, help="API requests per second (default: unlimited)")
    args = parser.parse_args(argv)
    sim = GenesysSimulator(client_id=args.client_id, client_secret=args.client_secret,
                           token_ttl_seconds=args.token_ttl, rate_limit_per_second=args.rate_limit, port=args.port)
    with sim:
        print(f"Genesys simulator on {sim.base_url} (client id {args.client_id}); Ctrl-C stops it", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
