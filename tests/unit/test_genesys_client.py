"""GenesysClient, TokenProvider and the client-credentials secret (simulator on loopback, moto Secrets Manager)."""

from __future__ import annotations

import json
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from gcpipe.simulator import GenesysSimulator
from genesys_pipeline.errors import GenesysBadCredentials, GenesysRateLimited, GenesysRejected, GenesysUnavailable
from genesys_pipeline.genesys import ClientCredentials, GenesysClient, clear_token_cache, load_client_credentials
from genesys_pipeline.genesys.oauth import parse_retry_after, refresh_margin
from genesys_pipeline.settings import GenesysSettings

CREDS = ClientCredentials("unit-client", "unit-secret-9f")
CONV, PART = "c-1", "p-1"
INTEGRATION = "4a3b2c1d-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def fresh_caches():
    clear_token_cache()
    parameters.clear_caches()
    yield
    clear_token_cache()
    parameters.clear_caches()


@pytest.fixture
def sim():
    with GenesysSimulator(client_id=CREDS.client_id, client_secret=CREDS.client_secret) as s:
        yield s


def settings_for(sim, **overrides) -> GenesysSettings:
    return GenesysSettings(
        **{
            "domain": "mypurecloud.com",
            "secret_name": "unused",
            "api_base_url": sim.base_url,
            "login_base_url": sim.base_url,
            "read_timeout_seconds": 2.0,
            **overrides,
        }
    )


def test_refresh_margin_fits_short_and_long_token_lifetimes():
    assert refresh_margin(86399, 300) == 300
    assert refresh_margin(300, 300) == 30  # a 5-minute token is not refreshed on every call
    assert refresh_margin(3600, 0) == 0


@pytest.mark.parametrize("header, seconds", [(None, 3.0), ("7", 7.0), ("0", 0.0), ("garbage", 3.0), ("1.5", 1.5)])
def test_retry_after_parsing(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_as_http_date():
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    assert 15 < parse_retry_after(when) <= 20


def test_credentials_never_show_the_secret_in_their_repr():
    assert "unit-secret-9f" not in repr(CREDS)


def test_clear_token_cache_forces_a_new_fetch(sim):
    client = GenesysClient(settings_for(sim), CREDS)
    client.patch_participant_attributes(CONV, PART, {"a": "1"})
    client.patch_participant_attributes(CONV, PART, {"a": "2"})
    assert sim.token_fetches == 1
    clear_token_cache()
    client.patch_participant_attributes(CONV, PART, {"a": "3"})
    assert sim.token_fetches == 2


def test_different_clients_of_the_same_oauth_client_share_the_token(sim):
    GenesysClient(settings_for(sim), CREDS).patch_participant_attributes(CONV, PART, {"a": "1"})
    GenesysClient(settings_for(sim), CREDS).put_external_tag(CONV, "t")
    assert sim.token_fetches == 1


def test_a_rotated_secret_gets_its_own_token(sim):
    GenesysClient(settings_for(sim), CREDS).patch_participant_attributes(CONV, PART, {"a": "1"})
    with pytest.raises(GenesysBadCredentials, match="unauthorized_client"):
        GenesysClient(settings_for(sim), ClientCredentials(CREDS.client_id, "other")).patch_participant_attributes(
            CONV, PART, {"a": "1"}
        )


def test_path_ids_are_quoted(sim):
    client = GenesysClient(settings_for(sim), CREDS)
    client.patch_participant_attributes("a/b", PART, {"k": "v"})
    assert sim.writes[0].path == "/api/v2/conversations/a%2Fb/participants/p-1/attributes"


def test_integration_config_round_trip_and_stale_version(sim):
    sim.add_integration(INTEGRATION, {"name": "events", "version": 2, "properties": {"eventFilter": []}})
    client = GenesysClient(settings_for(sim), CREDS)
    config = client.get_integration_config(INTEGRATION)
    assert client.put_integration_config(INTEGRATION, config)["version"] == 3
    with pytest.raises(GenesysRejected, match="HTTP 409"):
        client.put_integration_config(INTEGRATION, config)
    with pytest.raises(GenesysRejected, match="HTTP 404"):
        client.get_integration_config("nope")


def test_token_endpoint_outage_is_unavailable(sim):
    sim.fail_token_next(1, status=503)
    with pytest.raises(GenesysUnavailable, match="token endpoint"):
        GenesysClient(settings_for(sim), CREDS).patch_participant_attributes(CONV, PART, {"a": "1"})


def test_token_endpoint_rate_limit_is_rate_limited(sim):
    sim.fail_token_next(1, status=429)
    with pytest.raises(GenesysRateLimited) as raised:
        GenesysClient(settings_for(sim), CREDS).patch_participant_attributes(CONV, PART, {"a": "1"})
    assert raised.value.retry_after == 3.0


def test_zero_inline_budget_raises_every_429(sim):
    sleeps = []
    client = GenesysClient(settings_for(sim, max_inline_retry_after_seconds=0.5), CREDS, sleep=sleeps.append)
    sim.fail_next(1, status=429, retry_after=1)
    with pytest.raises(GenesysRateLimited):
        client.patch_participant_attributes(CONV, PART, {"a": "1"})
    assert sleeps == []


# ----------------------------------------------------------------------------- Secrets Manager via Powertools


@pytest.fixture
def secretsmanager():
    with mock_aws():
        yield boto3.client("secretsmanager")


def test_credentials_come_from_the_secret(secretsmanager, sim):
    secretsmanager.create_secret(
        Name="genesys", SecretString=json.dumps({"client_id": CREDS.client_id, "client_secret": CREDS.client_secret})
    )
    assert load_client_credentials("genesys", max_age=60) == CREDS
    client = GenesysClient(settings_for(sim, secret_name="genesys"))  # default: read the secret
    client.patch_participant_attributes(CONV, PART, {"a": "1"})
    assert sim.token_fetches == 1


@pytest.mark.parametrize(
    "secret, missing",
    [
        ({"client_id": "x"}, "client_secret"),
        ({"client_secret": "x"}, "client_id"),
        ({"client_id": "", "client_secret": "x"}, "client_id"),
    ],
)
def test_a_missing_key_is_named(secretsmanager, secret, missing):
    secretsmanager.create_secret(Name="genesys", SecretString=json.dumps(secret))
    with pytest.raises(GenesysBadCredentials, match=f"secret genesys has no {missing}"):
        load_client_credentials("genesys", max_age=60)


def test_a_secret_that_is_not_json(secretsmanager):
    secretsmanager.create_secret(Name="genesys", SecretString="client_id=x")
    with pytest.raises(GenesysBadCredentials, match="not JSON"):
        load_client_credentials("genesys", max_age=60)


def test_a_missing_secret(secretsmanager):
    with pytest.raises(GenesysBadCredentials, match="does not exist"):
        load_client_credentials("nope", max_age=60)


def test_the_token_fetch_and_the_writes_share_one_pooled_connection(sim):
    from genesys_pipeline.genesys.transport import http_pool

    pool = http_pool()
    client = GenesysClient(settings_for(sim), CREDS, http=pool)
    for i in range(3):
        client.patch_participant_attributes(CONV, PART, {"a": str(i)})
    assert sim.token_fetches == 1 and len(sim.writes) == 3
    assert pool.connection_from_url(sim.base_url).num_connections == 1  # keep-alive: one TCP connection for 4 requests
    client.close()


def test_a_redirect_is_not_followed(sim):
    # A 3xx is an answer, not a hop: a write (and its bearer token) is never replayed elsewhere.
    client = GenesysClient(settings_for(sim), CREDS)
    sim.fail_next(1, status=307)
    with pytest.raises(GenesysRejected, match="HTTP 307"):
        client.patch_participant_attributes(CONV, PART, {"a": "1"})
