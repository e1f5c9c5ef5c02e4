"""Token efficiency: OAuth token requests per 1,000 events, the module-scope cache against a fetch per invocation.

The real ``GenesysClient`` / ``TokenProvider`` write to the Genesys simulator, whose tokens live
``token_ttl`` seconds (5 minutes here, the shortest Genesys allows). Simulated time: the events are
spread evenly over ``minutes`` simulated minutes and the client's clock (its injected ``clock``)
reads the event's time, so token lifetimes run out as they would in that span while the run takes
seconds. A container is an isolated token cache: each container's client has its own
``TokenCache`` (``GenesysClient(token_cache=...)``), as each Lambda container has its own
interpreter and so its own module-scope cache. Events go to a container chosen at random (seeded). Baseline: the cache is
cleared before every invocation (the seeds' fetch per invocation).
"""

from __future__ import annotations

import random
import time
from typing import Any

from . import _common as c

NAME = "tokens"
LIMIT_PER_MINUTE = 300  # token.rate.per.minute and client.credentials.token.rate.per.minute (team reference)


def _peak_per_minute(times: list[float]) -> int:
    """Most fetches in any 60 s window (simulated seconds), sliding."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 60:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def simulate(
    sim: Any, *, containers: int, events: int, minutes: float, per_invocation: bool, seed: int
) -> dict[str, Any]:
    c.ensure_paths()
    from genesys_pipeline.genesys import ClientCredentials, GenesysClient, TokenCache
    from genesys_pipeline.settings import GenesysSettings

    settings = GenesysSettings(
        domain="mypurecloud.com", secret_name="bench", api_base_url=sim.base_url, login_base_url=sim.base_url
    )
    credentials = ClientCredentials(c.CLIENT_ID, c.CLIENT_SECRET)
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    rng = random.Random(seed)
    # One client per container (a warm container keeps its client), one cache per container.
    caches = [TokenCache() for _ in range(containers)]
    clients = [GenesysClient(settings, credentials, clock=clock, token_cache=cache) for cache in caches]
    fetch_times: list[float] = []
    api_calls_before = sim.request_count("/api/")
    try:
        for i in range(events):
            now[0] = i * minutes * 60 / events
            k = rng.randrange(containers)
            if per_invocation:
                caches[k].clear()
            before = sim.token_fetches
            clients[k].patch_participant_attributes(f"conv-{i}", f"part-{i}", {"aws_processed": "true"})
            fetch_times.extend([now[0]] * (sim.token_fetches - before))
    finally:
        for cl in clients:
            cl.close()
    fetches = len(fetch_times)
    peak = _peak_per_minute(fetch_times)
    rate = events / minutes  # events per minute offered
    # At what event rate does token creation reach the limit? per-invocation: one fetch per event;
    # cached: containers x one fetch per (lifetime - margin), independent of the event rate.
    return {
        "containers": containers,
        "design": "per-invocation (seeds)" if per_invocation else "cached (shipped)",
        "events": events,
        "token_fetches": fetches,
        "fetches_per_1000_events": round(fetches * 1000 / events, 2),
        "peak_fetches_per_minute": peak,
        "peak_fraction_of_limit": round(peak / LIMIT_PER_MINUTE, 4),
        "api_calls": sim.request_count("/api/") - api_calls_before,
        "events_per_minute_offered": round(rate, 2),
        "events_per_minute_at_limit": LIMIT_PER_MINUTE if per_invocation else None,
    }


def run(
    smoke: bool = False,
    events: int | None = None,
    minutes: float = 30.0,
    token_ttl: int = 300,
    containers: str = "1,4,16",
    seed: int = 5,
) -> dict[str, Any]:
    started = time.perf_counter()
    c.ensure_paths()
    c.dummy_aws_env()
    from gcpipe.simulator import GenesysSimulator

    events = events or (200 if smoke else 1000)
    counts = [int(x) for x in str(containers).split(",") if x]
    rows = []
    with c.lambda_output(c.RESULTS_DIR / "tokens-lambdas.log.tmp"):
        with GenesysSimulator(client_id=c.CLIENT_ID, client_secret=c.CLIENT_SECRET, token_ttl_seconds=token_ttl) as sim:
            for n in counts:  # both designs for each container count, back to back
                for per_invocation in (False, True):
                    rows.append(
                        simulate(
                            sim, containers=n, events=events, minutes=minutes, per_invocation=per_invocation, seed=seed
                        )
                    )
    from genesys_pipeline.genesys.oauth import refresh_margin
    from genesys_pipeline.settings import GenesysSettings

    margin = refresh_margin(
        token_ttl,
        GenesysSettings(domain="x", secret_name="x", api_base_url="x", login_base_url="x").token_refresh_margin_seconds,
    )
    for r in rows:
        if r["events_per_minute_at_limit"] is None:
            # cached: fetches/min = containers * 60 / (ttl - margin) whatever the event rate
            per_min = r["containers"] * 60 / (token_ttl - margin)
            r["steady_fetches_per_minute"] = round(per_min, 2)
            r["containers_at_limit"] = int(LIMIT_PER_MINUTE / (60 / (token_ttl - margin)))
    results = {"rows": rows, "limit_per_minute": LIMIT_PER_MINUTE, "refresh_margin_seconds": margin}
    notes = [
        f"{events} events over {minutes:g} simulated minutes, token lifetime {token_ttl} s (refresh {margin:g} s early).",
        "Shipped: fetches ~= containers x (1 + span / (lifetime - margin)), independent of the event rate; "
        "the per-invocation baseline fetches once per event, so it reaches 300 fetches/min at 300 events/min (5/s).",
        "A container is an isolated cache in one process (its client's own TokenCache), not a subprocess: the "
        "code path (TokenProvider, its clock, the simulator's token endpoint) is the real one.",
    ]
    params = {"events": events, "minutes": minutes, "token_ttl_seconds": token_ttl, "containers": counts, "seed": seed}
    return c.envelope(NAME, params, results, smoke=smoke, started=started, notes=notes)


def render(result: dict[str, Any]) -> None:
    r = result["results"]
    c.table(
        f"OAuth token requests ({result['params']['events']} events, {result['params']['minutes']:g} simulated min, "
        f"token lifetime {result['params']['token_ttl_seconds']} s; limit {r['limit_per_minute']}/min)",
        ["design", "containers", "fetches", "per 1,000 events", "peak / min", "of limit"],
        [
            [
                x["design"],
                x["containers"],
                x["token_fetches"],
                x["fetches_per_1000_events"],
                x["peak_fetches_per_minute"],
                f"{x['peak_fraction_of_limit']:.1%}",
            ]
            for x in r["rows"]
        ],
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def extra(p: Any) -> None:
        p.add_argument("--events", type=int)
        p.add_argument("--minutes", type=float)
        p.add_argument("--token-ttl", type=int, dest="token_ttl")
        p.add_argument("--containers", type=str)

    return c.cli(NAME, run, render, argv, extra)


if __name__ == "__main__":
    main()
