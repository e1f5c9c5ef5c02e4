"""``python -m gcpipe.simulator --port 8765``: run the Genesys simulator standalone until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from .server import DEFAULT_TOKEN_TTL_SECONDS, TOKEN_RATE_PER_MINUTE, GenesysSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gcpipe.simulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--client-id", default="sim-client")
    parser.add_argument("--client-secret", default="sim-secret")
    parser.add_argument("--token-ttl", type=int, default=DEFAULT_TOKEN_TTL_SECONDS, help="token lifetime in seconds")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="429 storm: API requests per 1 s fixed window (default: none)"
    )
    parser.add_argument(
        "--token-rate-per-minute",
        type=int,
        default=TOKEN_RATE_PER_MINUTE,
        help=f"Genesys's per-token limit (default {TOKEN_RATE_PER_MINUTE}; 0 = off)",
    )
    parser.add_argument(
        "--org-rate-limit",
        type=float,
        default=None,
        help="org-wide limit in API requests per second, over a 60 s sliding window (default: none)",
    )
    args = parser.parse_args(argv)
    sim = GenesysSimulator(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl_seconds=args.token_ttl,
        rate_limit_per_second=args.rate_limit,
        port=args.port,
        token_rate_per_minute=args.token_rate_per_minute or None,
        org_rate_limit_per_second=args.org_rate_limit,
    )
    with sim:
        print(f"Genesys simulator on {sim.base_url} (client id {args.client_id}); Ctrl-C stops it", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
