"""Smoke-sized run of every benchmark: the JSON shape and the relations that must hold, never timings.

Results go to a temporary directory, so bench/results/ keeps the last full run.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.xdist_group("e2e")  # the pipeline benchmarks run a LocalPipeline (one per process)


@pytest.fixture(autouse=True)
def _session_assembly(synthesized, monkeypatch):
    # The session's assembly, not .local-run/cdk.out: a `gcpipe local run` on the other xdist worker (the e2e
    # "local-run" group) may be synthesizing that one.
    monkeypatch.setenv("GCPIPE_BENCH_CDK_OUT", str(synthesized))


def _check_envelope(result: dict, name: str, out_dir) -> None:
    assert result["benchmark"] == name
    assert result["smoke"] is True
    assert {"command", "date", "machine", "params", "results", "notes", "wall_seconds"} <= set(result)
    assert {"nproc", "cpu_model", "python"} <= set(result["machine"])
    on_disk = json.loads((out_dir / f"{name}.json").read_text())
    assert on_disk["results"] == json.loads(json.dumps(result["results"], default=str))


def test_cost(tmp_path):
    from bench import cost

    result = cost.main(["--smoke", "--out", str(tmp_path)])
    _check_envelope(result, "cost", tmp_path)
    r = result["results"]
    t = r["measured"]["transitions"]
    for design in ("shipped", "seeds"):
        assert t[design]["happy"]["status"] == "SUCCEEDED"
        assert t[design]["one_retry"]["transitions"] == t[design]["happy"]["transitions"] + 1
    assert t["shipped"]["failed"]["status"] == "FAILED"
    # the shipped machine fails at Process (redrivable); the seeds' add HandleError -> Fail (and retry everything)
    assert t["seeds"]["failed"]["transitions"] >= t["shipped"]["failed"]["transitions"] + 2
    d = r["per_million_events"]
    for design in ("shipped", "seeds"):
        comps = d[design]["components"]
        assert set(comps) == {
            "eventbridge",
            "sqs",
            "stepfunctions",
            "lambda_requests",
            "lambda_duration",
            "dynamodb",
            "cloudwatch_logs",
            "budget_dynamodb",
            "budget_sqs_resends",
            "budget_dispatcher_reinvocations",
            "budget_deferral_logs",
        }
        assert d[design]["total_usd_per_million_events"] == pytest.approx(
            sum(v["usd"] for v in comps.values()), abs=1e-3
        )
    # duplicates cost the seeds full executions; the shipped design pays DynamoDB instead
    assert d["seeds"]["executions"] > d["shipped"]["executions"]
    assert d["seeds"]["components"]["stepfunctions"]["units"] > d["shipped"]["components"]["stepfunctions"]["units"]
    assert d["shipped"]["components"]["dynamodb"]["units"] > 0 == d["seeds"]["components"]["dynamodb"]["units"]
    assert r["prices"]["as_of"]
    # the request budget's own cost: the shipped design's only, measured when the stack has a budget
    budget = r["measured"]["budget"]
    assert all(d["seeds"]["components"][k]["usd"] == 0 for k in d["seeds"]["components"] if k.startswith("budget_"))
    if budget["enabled"]:
        assert any(k.startswith("budget_table.") for k in budget["steady"])
        assert d["shipped"]["components"]["budget_dynamodb"]["units"] > 0
        assert budget["burst"]["main_queue.send_message.entries"] == 1  # EventBridge's delivery of each event
    else:
        assert d["shipped"]["components"]["budget_dynamodb"]["usd"] == 0


def test_coldstart(tmp_path):
    from bench import coldstart

    result = coldstart.main(["--smoke", "--out", str(tmp_path), "--runs", "1"])
    _check_envelope(result, "coldstart", tmp_path)
    imports = result["results"]["imports"]
    assert set(imports) == {"boto3", "dispatcher.handler", "processor.handler", "error_logger.handler"}
    assert imports["boto3"]["ratio_to_boto3"] == 1.0
    assert all(v["median_ms"] > 0 and v["cpu_median_ms"] > 0 for v in imports.values())
    assert imports["boto3"]["cpu_ratio_to_boto3"] == 1.0
    first = result["results"]["first_invocation"]
    assert set(first) == set(imports) - {"boto3"}
    assert all(v["median_ms"] > 0 and v["deferred"] for v in first.values())
    asset = result["results"]["asset"]
    assert 0 < asset["zipped_bytes"] < asset["unzipped_bytes"] < asset["lambda_limit_unzipped_bytes"]
    assert asset["has_aws_xray_sdk"] is False and "aws_lambda_powertools" in asset["top_level"]


def test_tokens(tmp_path):
    from bench import tokens

    result = tokens.main(["--smoke", "--out", str(tmp_path), "--events", "120", "--containers", "1,4"])
    _check_envelope(result, "tokens", tmp_path)
    rows = result["results"]["rows"]
    by = {(r["containers"], r["design"].startswith("cached")): r for r in rows}
    for n in (1, 4):
        cached, baseline = by[(n, True)], by[(n, False)]
        assert baseline["token_fetches"] == baseline["events"]  # one fetch per invocation
        assert n <= cached["token_fetches"] < baseline["token_fetches"]
        assert cached["peak_fetches_per_minute"] <= baseline["peak_fetches_per_minute"]
    assert by[(1, True)]["token_fetches"] <= by[(4, True)]["token_fetches"]


def test_dispatcher(tmp_path):
    from bench import dispatcher

    result = dispatcher.main(["--smoke", "--out", str(tmp_path), "--reps", "2", "--latency-ms", "20"])
    _check_envelope(result, "dispatcher", tmp_path)
    r = result["results"]
    assert r["concurrent"]["concurrency"] >= 1 and r["sequential"]["concurrency"] == 1
    # every record was started exactly once per batch (warm-up + reps), in both modes
    assert all(v == 10 * 3 for v in r["start_execution_calls"].values())
    assert r["sequential"]["median_ms"] >= r["ideal_sequential_ms"]


THROUGHPUT_KEYS = {
    "applied",
    "lost",
    "duplicate_writes",
    "fraction_of_limit",
    "genesys_requests",
    "http_429",
    "share_429",
    "lag_p50_s",
    "lag_p99_s",
    "executions_failed",
    "dead_lettered",
    "token_fetches",
}


def test_throughput(tmp_path):
    from bench import throughput

    result = throughput.main(["--smoke", "--out", str(tmp_path)])
    _check_envelope(result, "throughput", tmp_path)
    on_disk = json.loads((tmp_path / "throughput.json").read_text())
    assert on_disk["designs"] == json.loads(json.dumps(result["designs"], default=str))
    assert {"params", "machine", "date"} <= set(on_disk)
    designs = result["designs"]
    # the baseline always runs; the budgeted design runs once the product knows genesysRateLimit
    assert "baseline" in designs
    assert set(designs) | set(result["results"]["unavailable"]) == {"baseline", "budgeted"}
    for name, workloads in designs.items():
        assert set(workloads) == {"burst", "sustained"}
        for workload, r in workloads.items():
            assert set(r) >= THROUGHPUT_KEYS, (name, workload)
            # every event is accounted for, nothing written twice
            assert (
                r["applied"] + r["executions_failed"] + r["dead_lettered"] + r["unfinished"] + r["lost"] == r["events"]
            )
            assert r["lost"] == 0 and r["duplicate_writes"] == 0, (name, workload)
            assert 0 <= r["http_429"] <= r["genesys_requests"]
            assert r["share_429"] == (round(r["http_429"] / r["genesys_requests"], 4) if r["genesys_requests"] else 0.0)
            assert sum(n for _, n, _ in r["genesys_per_second"]) == r["genesys_requests"]
            assert sum(n for _, _, n in r["genesys_per_second"]) == r["http_429"]
            if r["applied"]:
                assert r["fraction_of_limit"] > 0 and r["lag_p50_s"] <= r["lag_p99_s"]
                assert r["token_fetches"] >= 1
    p = result["params"]
    assert p["sustained_events"] == round(p["sustained_arrival_per_second"] * p["sustained_seconds"])
