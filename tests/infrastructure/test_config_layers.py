"""Config that scales: code defaults, `extends`, a new environment in a few lines (the README's own example)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import pytest

from infra import constants as C
from infra.config import ConfigError, load

from .conftest import CDK_CONTEXT, ROOT, synth

ORG = "2b7c4d1e-8f9a-4b3c-9d2e-1f0a9b8c7d6e"
MINIMAL = {
    "genesysOrgId": ORG,
    "genesysRegion": "eu-west-1",
    "eventBus": {"name": f"aws.partner/genesys.com/cloud/{ORG}/contact-center-events"},
    "topics": ["v2.detail.events.conversation.{id}.acd.end"],
}


def context_with_environments(**environments) -> dict:
    context = copy.deepcopy(CDK_CONTEXT)
    context[C.CONTEXT_ENVIRONMENTS].update(environments)
    return context


def readme_new_environment() -> tuple[str, dict]:
    """The environment the README shows under 'A new environment', as JSON."""
    text = (ROOT / "README.md").read_text()
    section = text.split("#### A new environment in a few lines", 1)[1]
    block = re.search(r"\n\n((?:    .*\n)+)", section).group(1)
    lines = [line[4:] for line in block.splitlines()]
    assert len(lines) <= 10, f"the README's new environment takes {len(lines)} lines"
    parsed = json.loads("{" + "\n".join(lines) + "}")
    [(name, body)] = parsed.items()
    return name, body


def test_only_the_required_keys_make_an_environment_and_defaults_fill_the_rest():
    config = load(context_with_environments(minimal=MINIMAL).get, "minimal")
    assert config.secret_name == "genesys/minimal/oauth-client"
    assert config.tags == {"Environment": "minimal"}
    assert config.queue_ids == ()
    assert config.event_bus_mode == "create"
    assert config.genesys_domain == "mypurecloud.ie" and config.region is None
    assert config.max_event_age_seconds == 5 * 24 * 3600  # Genesys retries for 4 days
    assert (config.retain_data, config.point_in_time_recovery) == (True, True)
    assert config.silence_alarm is not None and config.silence_alarm.minutes == 30
    assert config.dispatcher.batch_size == 10 and config.retries.max_receive_count == 5


def test_extends_inherits_merges_objects_and_replaces_lists():
    staging = {
        "extends": "prod",
        "account": "444455556666",
        "queueIds": [],
        "dispatcher": {"batchSize": 20},
        "unset": ["alarmEmail"],
    }
    config = load(context_with_environments(staging=staging).get, "staging")
    prod = load(CDK_CONTEXT.get, "prod")
    assert config.account == "444455556666" and config.region == prod.region
    assert config.queue_ids == ()
    assert config.dispatcher.batch_size == 20
    assert config.dispatcher.max_concurrency == prod.dispatcher.max_concurrency  # merged, not replaced
    assert config.retries == prod.retries and config.external_tag == prod.external_tag
    assert config.alarm_email is None  # unset drops an inherited optional key
    # Name-derived defaults follow the new environment, not the one it extends.
    assert config.secret_name == "genesys/staging/oauth-client" and config.tags == {"Environment": "staging"}


def test_extends_chains_through_several_environments():
    context = context_with_environments(a={"extends": "prod", "logLevel": "DEBUG"}, b={"extends": "a"})
    config = load(context.get, "b")
    assert config.log_level == "DEBUG" and config.queue_ids == load(CDK_CONTEXT.get, "prod").queue_ids


def test_attribute_map_is_replaced_whole_not_merged():
    staging = {"extends": "dev", "attributeMap": {"aws_seen": "true"}}
    config = load(context_with_environments(staging=staging).get, "staging")
    assert config.attribute_map == {"aws_seen": "true"}


@pytest.mark.parametrize(
    "environments,env,message",
    [
        (
            {"a": {"extends": "b"}, "b": {"extends": "a"}},
            "a",
            "cdk.json context environments.b.extends: a -> b -> a is a cycle; expected a chain that ends at an "
            "environment without extends",
        ),
        ({"a": {"extends": "a"}}, "a", "cdk.json context environments.a.extends: a -> a is a cycle"),
        (
            {"a": {"extends": "stagin"}},
            "a",
            "cdk.json context environments.a.extends: 'stagin' is not an environment; expected one of dev, prod",
        ),
        ({"a": {"extends": ["prod"]}}, "a", 'cdk.json context environments.a.extends: ["prod"] is not an environment'),
    ],
)
def test_bad_extends_fails_with_one_line(environments, env, message):
    with pytest.raises(ConfigError) as caught:
        load(context_with_environments(**environments).get, env)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_bad_extends_fails_cdk_synth_with_that_one_line(tmp_path):
    context = {**context_with_environments(a={"extends": "b"}, b={"extends": "a"}), "env": "a"}
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_OUTDIR": str(tmp_path),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
    )
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        "error: cdk.json context environments.b.extends: a -> b -> a is a cycle; expected a chain that ends at "
        "an environment without extends"
    ]
    assert "Traceback" not in done.stderr


def test_the_readme_new_environment_fits_in_ten_lines_and_synthesizes():
    name, body = readme_new_environment()
    context = context_with_environments(**{name: body})
    config = load(context.get, name)
    assert config.name == name and config.stack_name == f"GenesysEvents-{name}"
    stack, template = synth(name, context)  # through CDK's context, as `cdk synth` hands it over
    template.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    assert stack.config.alarm_email is None and stack.config.account == body["account"]
    template.resource_count_is("AWS::SNS::Topic", 0)


def test_unset_drops_a_code_default_too():
    config = load(context_with_environments(quiet={**MINIMAL, "unset": ["silenceAlarm"]}).get, "quiet")
    assert config.silence_alarm is None


def test_unset_of_a_required_key_names_it():
    with pytest.raises(ConfigError, match=r"^cdk.json context environments.x.topics: missing; expected"):
        load(context_with_environments(x={"extends": "dev", "unset": ["topics"]}).get, "x")


def test_unset_must_be_a_list_of_names():
    with pytest.raises(ConfigError, match=r"^cdk.json context environments.x.unset: 'alarmEmail' is not a list"):
        load(context_with_environments(x={"extends": "dev", "unset": "alarmEmail"}).get, "x")


def test_a_genesys_region_unlike_the_aws_region_synthesizes():
    """The issue's pair: mypurecloud.com (us-east-1's Genesys region) into an AWS stack in us-east-2."""
    body = {**MINIMAL, "genesysRegion": "us-east-1", "region": "us-east-2"}
    stack, template = synth("pair", context_with_environments(pair=body))
    [fn] = [
        r
        for k, r in template.to_json()["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and "ProcessorFunction" in k
    ]
    assert fn["Properties"]["Environment"]["Variables"]["GENESYS_DOMAIN"] == "mypurecloud.com"
    assert stack.region == "us-east-2"
