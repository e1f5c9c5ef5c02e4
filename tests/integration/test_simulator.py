"""The Genesys simulator speaks the real shapes, and its faults do what they say (plain requests on loopback)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from gcpipe.simulator import GenesysSimulator

CONV = "2f7bf00a-5a9e-4d1b-9f3c-7e2a1b0c9d8e"
PART = "9fb2c1d4-0e6b-4a57-8c3d-2b1a0f9e8d7c"
INTEGRATION = "4a3b2c1d-0000-4000-8000-000000000001"


@pytest.fixture
def sim():
    with GenesysSimulator(client_id="cid", client_secret="csecret") as s:
        yield s


def token(sim, secret="csecret"):
    return requests.post(
        f"{sim.base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("cid", secret), timeout=5
    )


def bearer(sim):
    return {"Authorization": f"Bearer {token(sim).json()['access_token']}"}


def patch(sim, headers, attributes, conv=CONV, part=PART, timeout=5):
    return requests.patch(
        f"{sim.base_url}/api/v2/conversations/{conv}/participants/{part}/attributes",
        json={"attributes": attributes},
        headers=headers,
        timeout=timeout,
    )


def test_token_endpoint_issues_bearer_tokens_and_counts_them(sim):
    response = token(sim)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 86400 and body["access_token"]
    assert sim.token_fetches == 1
    uuid.UUID(response.headers["inin-correlation-id"])


def test_token_endpoint_refuses_a_bad_client(sim):
    response = token(sim, secret="wrong")
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    assert sim.token_fetches == 0


def test_token_endpoint_needs_the_client_credentials_grant(sim):
    response = requests.post(
        f"{sim.base_url}/oauth/token", data={"grant_type": "password"}, auth=("cid", "csecret"), timeout=5
    )
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_patch_merges_attributes_and_answers_empty_2xx(sim):
    headers = bearer(sim)
    first = patch(sim, headers, {"a": "1", "b": "2"})
    second = patch(sim, headers, {"b": "3", "c": "4"})
    assert first.status_code == second.status_code == 202 and first.content == b""
    assert sim.attributes_of(CONV, PART) == {"a": "1", "b": "3", "c": "4"}
    writes = sim.writes_for(CONV)
    assert [w.method for w in writes] == ["PATCH", "PATCH"] and writes[0].participant_id == PART
    assert writes[1].body == {"attributes": {"b": "3", "c": "4"}}
    assert sim.writes_for("other") == []


def test_patch_with_a_bad_body_gets_400_error_body(sim):
    response = requests.patch(
        f"{sim.base_url}/api/v2/conversations/{CONV}/participants/{PART}/attributes",
        json={"attributes": {"n": 1}},
        headers=bearer(sim),
        timeout=5,
    )
    body = response.json()
    assert response.status_code == 400
    assert (
        body["status"] == 400
        and body["code"] == "bad.request"
        and set(body) >= {"message", "contextId", "details", "errors"}
    )
    assert sim.writes == []


def test_patch_without_json_content_type_gets_415(sim):
    response = requests.patch(
        f"{sim.base_url}/api/v2/conversations/{CONV}/participants/{PART}/attributes",
        data="attributes=x",
        headers=bearer(sim),
        timeout=5,
    )
    assert response.status_code == 415


def test_api_needs_a_valid_token(sim):
    assert patch(sim, {}, {"a": "1"}).json()["code"] == "authentication.required"
    assert patch(sim, {"Authorization": "Bearer nope"}, {"a": "1"}).status_code == 401


def test_expired_token_gets_401():
    with GenesysSimulator(client_id="cid", client_secret="csecret", token_ttl_seconds=1) as sim:
        headers = bearer(sim)
        assert patch(sim, headers, {"a": "1"}).status_code == 202
        time.sleep(1.1)
        assert patch(sim, headers, {"a": "1"}).status_code == 401


def test_revoked_tokens_get_401_and_a_new_token_works(sim):
    headers = bearer(sim)
    sim.revoke_tokens()
    assert patch(sim, headers, {"a": "1"}).status_code == 401
    assert patch(sim, bearer(sim), {"a": "1"}).status_code == 202


def test_external_tag(sim):
    response = requests.put(
        f"{sim.base_url}/api/v2/conversations/{CONV}/tags",
        json={"externalTag": "crm-123"},
        headers=bearer(sim),
        timeout=5,
    )
    assert response.status_code == 202
    assert sim.external_tag_of(CONV) == "crm-123"
    assert sim.writes_for(CONV)[0].method == "PUT"


def test_known_conversations_only_gives_404_for_unknown_participants():
    with GenesysSimulator(client_id="cid", client_secret="csecret", known_conversations_only=True) as sim:
        sim.add_conversation(CONV, [PART])
        headers = bearer(sim)
        assert patch(sim, headers, {"a": "1"}).status_code == 202
        missing = patch(sim, headers, {"a": "1"}, part="nobody")
        assert missing.status_code == 404 and missing.json()["code"] == "not.found"


def test_integration_config_get_put_and_stale_version_conflict(sim):
    sim.add_integration(
        INTEGRATION,
        {
            "name": "events",
            "version": 3,
            "properties": {"eventFilter": ["a"]},
            "advanced": {},
            "notes": "",
            "credentials": {},
        },
    )
    url = f"{sim.base_url}/api/v2/integrations/{INTEGRATION}/config/current"
    headers = bearer(sim)
    config = requests.get(url, headers=headers, timeout=5).json()
    assert config["version"] == 3
    config["properties"]["eventFilter"] = ["a", "b"]
    put = requests.put(url, json=config, headers=headers, timeout=5)
    assert put.status_code == 200 and put.json()["version"] == 4
    stale = requests.put(url, json=config, headers=headers, timeout=5)
    assert stale.status_code == 409 and stale.json()["status"] == 409 and stale.json()["code"] == "conflict"
    assert sim.integration(INTEGRATION)["properties"]["eventFilter"] == ["a", "b"]
    assert (
        requests.get(f"{sim.base_url}/api/v2/integrations/nope/config/current", headers=headers, timeout=5).status_code
        == 404
    )


def test_rate_limit_answers_the_real_429(sim):
    headers = bearer(sim)
    sim.set_rate_limit(2, retry_after=7)
    statuses = [patch(sim, headers, {"a": "1"}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [202, 202, 429]
    limited = statuses[2]
    assert limited.headers["Retry-After"] == "7"
    body = limited.json()
    assert body["message"] == "Rate limit exceeded the maximum. Retry the request in [7] seconds"
    assert body["code"] == "too.many.requests.retry.after" and body["status"] == 429
    assert body["details"] == [] and body["errors"] == [] and body["contextId"]
    assert set(body["limit"]) == {"key", "namespace", "value"}
    assert len(sim.writes) == 2


def test_rate_limit_window_refills(sim):
    headers = bearer(sim)
    sim.set_rate_limit(1)
    assert patch(sim, headers, {"a": "1"}).status_code == 202
    limited = patch(sim, headers, {"a": "1"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    time.sleep(1.05)
    assert patch(sim, headers, {"a": "1"}).status_code == 202


def test_429_without_retry_after_header(sim):
    headers = bearer(sim)
    sim.fail_next(1, status=429, retry_after=4, retry_after_header=False)
    response = patch(sim, headers, {"a": "1"})
    assert response.status_code == 429 and "Retry-After" not in response.headers
    assert "[4]" in response.json()["message"]


def test_5xx_burst_then_recovery(sim):
    headers = bearer(sim)
    sim.fail_next(2, status=503)
    sim.fail_next(1, status=504)
    statuses = [patch(sim, headers, {"a": "1"}).status_code for _ in range(4)]
    assert statuses == [503, 503, 504, 202]
    assert len(sim.writes) == 1
    assert sim.request_count("/api/v2/conversations", status=503) == 2


def test_faults_do_not_touch_the_token_endpoint(sim):
    sim.fail_next(1, status=500)
    assert token(sim).status_code == 200
    sim.fail_token_next(1, status=503)
    assert token(sim).status_code == 503


def test_latency(sim):
    headers = bearer(sim)
    sim.set_latency(0.3)
    started = time.monotonic()
    assert patch(sim, headers, {"a": "1"}).status_code == 202
    assert time.monotonic() - started >= 0.3


def test_hung_request_outlasts_the_client_timeout_and_stop_releases_it():
    sim = GenesysSimulator(client_id="cid", client_secret="csecret").start()
    headers = bearer(sim)
    sim.hang_next(1, seconds=60)
    with pytest.raises(requests.exceptions.ReadTimeout):
        patch(sim, headers, {"a": "1"}, timeout=(1, 0.3))
    assert sim.writes == []
    assert patch(sim, headers, {"a": "1"}).status_code == 202  # only the next one hangs
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 3


def test_a_reset_connection_gets_no_answer_and_writes_nothing(sim):
    headers = bearer(sim)
    sim.reset_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        patch(sim, headers, {"a": "1"})
    assert sim.writes == []
    assert sim.request_count(status=0) == 1  # recorded as unanswered
    assert patch(sim, headers, {"a": "1"}).status_code == 202  # only the next one is reset


def test_every_response_has_a_correlation_id(sim):
    headers = bearer(sim)
    sim.fail_next(1, status=500)
    responses = [
        token(sim),
        patch(sim, headers, {"a": "1"}),
        patch(sim, {}, {"a": "1"}),
        requests.get(f"{sim.base_url}/nowhere", timeout=5),
    ]
    ids = [r.headers["inin-correlation-id"] for r in responses]
    assert len(set(ids)) == len(ids)


def test_concurrent_writes_are_all_recorded(sim):
    headers = bearer(sim)
    errors = []

    def write(i):
        try:
            assert patch(sim, headers, {f"k{i}": str(i)}).status_code == 202
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(sim.writes) == 20 and len(sim.attributes_of(CONV, PART)) == 20


def test_reset_forgets_writes_tokens_and_faults_but_keeps_integrations(sim):
    sim.add_integration(INTEGRATION, {"name": "x", "version": 1, "properties": {}})
    headers = bearer(sim)
    patch(sim, headers, {"a": "1"})
    sim.fail_next(3)
    sim.reset()
    assert sim.writes == [] and sim.token_fetches == 0 and sim.request_count() == 0
    assert patch(sim, headers, {"a": "1"}).status_code == 401  # tokens forgotten
    assert patch(sim, bearer(sim), {"a": "1"}).status_code == 202  # faults forgotten
    assert sim.integration(INTEGRATION)["version"] == 1


def test_stop_leaves_no_thread_or_socket_behind():
    before = set(threading.enumerate())
    sim = GenesysSimulator(client_id="cid", client_secret="csecret").start()
    session = requests.Session()  # keep-alive connection held open by the client
    token = session.post(
        f"{sim.base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("cid", "csecret"), timeout=5
    ).json()["access_token"]
    assert token
    port = sim.port
    sim.stop()
    session.close()
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)


def test_standalone_entry_point_prints_its_url():
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcpipe.simulator", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        url = line.split(" on ")[1].split(" ")[0]
        assert (
            requests.post(
                f"{url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("sim-client", "sim-secret"),
                timeout=5,
            ).status_code
            == 200
        )
    finally:
        proc.terminate()
        proc.wait(timeout=5)


class FakeClock:
    """The simulator's wall clock, moved by hand: windows tested without waiting."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_per_token_limit_is_300_a_minute_by_default_and_answers_genesys_429():
    clock = FakeClock()
    with GenesysSimulator(client_id="cid", client_secret="csecret", clock=clock) as s:
        headers = bearer(s)
        statuses = [patch(s, headers, {"a": "1"}).status_code for _ in range(300)]
        assert statuses == [202] * 300
        clock.now += 20
        limited = patch(s, headers, {"a": "1"})
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "40"  # the first request leaves the 60 s window in 40 s
        body = limited.json()
        assert body["code"] == "too.many.requests.retry.after" and body["status"] == 429
        assert body["message"] == "Rate limit exceeded the maximum. Retry the request in [40] seconds"
        assert body["limit"] == {"key": "token.rate.per.minute", "namespace": "platform.api", "value": 300}
        assert set(body) >= {"contextId", "details", "errors"}
        # another token has its own 300
        assert patch(s, bearer(s), {"a": "1"}).status_code == 202
        clock.now += 40
        assert patch(s, headers, {"a": "1"}).status_code == 202
        assert len(s.writes) == 302


def test_per_token_limit_is_configurable_and_can_be_switched_off():
    clock = FakeClock()
    with GenesysSimulator(client_id="cid", client_secret="csecret", clock=clock, token_rate_per_minute=3) as s:
        headers = bearer(s)
        assert [patch(s, headers, {"a": "1"}).status_code for _ in range(4)] == [202, 202, 202, 429]
        s.set_token_rate_limit(None)
        assert patch(s, headers, {"a": "1"}).status_code == 202


def test_org_limit_binds_every_token_together_in_a_sliding_window():
    clock = FakeClock()
    with GenesysSimulator(
        client_id="cid", client_secret="csecret", clock=clock, org_rate_limit_per_second=0.5, org_rate_window_seconds=4
    ) as s:  # 2 per 4 s
        first, second = bearer(s), bearer(s)
        assert patch(s, first, {"a": "1"}).status_code == 202
        clock.now += 1.5
        assert patch(s, second, {"a": "1"}).status_code == 202
        clock.now += 1.0
        limited = patch(s, first, {"a": "1"})
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"  # ceil(4 - 2.5): when the first request leaves the window
        assert limited.json()["limit"]["key"] == "org.app.user.rate.per.minute"
        assert limited.json()["limit"]["value"] == 30
        clock.now += 1.5  # the first left the window; the rejected one spent nothing
        assert patch(s, second, {"a": "1"}).status_code == 202
        assert patch(s, first, {"a": "1"}).status_code == 429
        s.set_org_rate_limit(None)
        assert patch(s, first, {"a": "1"}).status_code == 202


def test_a_request_over_the_org_limit_spends_no_token_quota():
    clock = FakeClock()
    with GenesysSimulator(
        client_id="cid",
        client_secret="csecret",
        clock=clock,
        token_rate_per_minute=2,
        org_rate_limit_per_second=1,
        org_rate_window_seconds=1,
    ) as s:
        headers = bearer(s)
        assert patch(s, headers, {"a": "1"}).status_code == 202
        assert patch(s, headers, {"a": "1"}).status_code == 429  # org: 1 per second
        clock.now += 1
        assert patch(s, headers, {"a": "1"}).status_code == 202  # the token's 2nd of 2, not its 3rd
        clock.now += 1
        assert patch(s, headers, {"a": "1"}).json()["limit"]["key"] == "token.rate.per.minute"


def test_requests_per_second_counts_api_requests_and_429s_by_wall_clock_second():
    clock = FakeClock(1_800_000_000.2)
    with GenesysSimulator(
        client_id="cid", client_secret="csecret", clock=clock, org_rate_limit_per_second=2, org_rate_window_seconds=1
    ) as s:
        headers = bearer(s)  # token requests are not counted
        for _ in range(3):
            patch(s, headers, {"a": "1"})
        clock.now += 2
        patch(s, headers, {"a": "1"})
        per_second = s.requests_per_second()
        assert [(r.second, r.requests, r.http_429) for r in per_second] == [
            (1_800_000_000, 3, 1),
            (1_800_000_002, 1, 0),
        ]
        s.reset()
        assert s.requests_per_second() == []


def test_the_429_storm_switch_keeps_its_fixed_retry_after_beside_the_genesys_limits(sim):
    headers = bearer(sim)
    sim.set_rate_limit(1, retry_after=3)
    patch(sim, headers, {"a": "1"})
    limited = patch(sim, headers, {"a": "1"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"


def test_a_fixed_org_window_resets_on_its_boundary():
    clock = FakeClock(1_800_000_000.0)  # a multiple of 10
    with GenesysSimulator(
        client_id="cid",
        client_secret="csecret",
        clock=clock,
        org_rate_limit_per_second=0.2,
        org_rate_window_seconds=10,
        org_rate_window_kind="fixed",
    ) as s:  # 2 per aligned 10 s
        headers = bearer(s)
        clock.now += 8
        assert [patch(s, headers, {"a": "1"}).status_code for _ in range(3)] == [202, 202, 429]
        clock.now += 1.5  # 9.5 s into the window
        assert patch(s, headers, {"a": "1"}).headers["Retry-After"] == "1"
        clock.now += 0.5  # the next window: both slots again, though the last two are 2 s old
        assert [patch(s, headers, {"a": "1"}).status_code for _ in range(3)] == [202, 202, 429]
