"""writeBack.plugin in cdk.json: checked at synth from the source of lambdas/extensions/, passed as WRITE_BACK_PLUGIN."""

from __future__ import annotations

import pytest

from infra.config import ConfigError

from .conftest import context_with, synth
from .test_config import parse_with

P = "cdk.json context environments.prod.writeBack"


def test_the_shipped_example_plugin_is_accepted():
    config = parse_with(lambda raw: raw.update(writeBack={"plugin": "acd_summary:write_back"}))
    assert config.write_back_plugin == "acd_summary:write_back"


def test_no_write_back_key_means_templates_only():
    assert parse_with(lambda raw: None).write_back_plugin is None


@pytest.mark.parametrize(
    "value, message",
    [
        (
            {"plugin": "no_such_module:write_back"},
            f"{P}.plugin: 'no_such_module:write_back': no module lambdas/extensions/no_such_module.py in the Lambda asset; "
            "add it, or name a module of lambdas/extensions/",
        ),
        (
            {"plugin": "acd_summary:no_such_function"},
            f"{P}.plugin: 'acd_summary:no_such_function': lambdas/extensions/acd_summary.py defines no top-level function "
            "'no_such_function' (it has: write_back); define it or fix the name",
        ),
        ({"plugin": "acd_summary"}, f"{P}.plugin: 'acd_summary' is not 'module:function'"),
        ({"plugin": "acd-summary:write_back"}, f"{P}.plugin: 'acd-summary:write_back' is not 'module:function'"),
        ({"plugins": "acd_summary:write_back"}, f"{P}.plugin: missing; expected 'module:function'"),
        ({"plugin": "acd_summary:write_back", "mode": "x"}, f"{P}.mode: unknown key; allowed keys: plugin"),
        ("acd_summary:write_back", f"{P}: expected an object, got 'acd_summary:write_back'"),
    ],
)
def test_a_bad_plugin_fails_synth_with_one_line_naming_the_key_and_the_fix(value, message):
    with pytest.raises(ConfigError) as caught:
        parse_with(lambda raw: raw.update(writeBack=value))
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_wrapup_code_is_a_placeholder_for_acw_topics():
    acw = "v2.detail.events.conversation.{id}.acw"
    config = parse_with(lambda raw: raw.update(topics=[acw], queueIds=[], attributeMap={"wrapup": "{wrapupCode}"}))
    assert config.attribute_map == {"wrapup": "{wrapupCode}"}
    with pytest.raises(ConfigError, match=r"attributeMap.wrapup: \{wrapupCode\} is carried only by acw events"):
        parse_with(lambda raw: raw.update(attributeMap={"wrapup": "{wrapupCode}"}))


def test_the_plugin_reaches_the_processor_as_write_back_plugin():
    _, template = synth("dev", context_with("dev", writeBack={"plugin": "acd_summary:write_back"}))
    functions = template.to_json()["Resources"].values()
    processor = [
        r
        for r in functions
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == "processor.handler.lambda_handler"
    ]
    assert processor[0]["Properties"]["Environment"]["Variables"]["WRITE_BACK_PLUGIN"] == "acd_summary:write_back"


def test_the_operator_secret_must_not_be_the_runtime_secret():
    with pytest.raises(ConfigError) as caught:
        parse_with(lambda raw: raw.update(operatorSecretName=raw["secretName"]))
    assert str(caught.value).startswith(
        "cdk.json context environments.prod.operatorSecretName: 'genesys/prod/oauth-client' is secretName, the Lambdas' "
        "client; expected the secret of a separate operator OAuth client"
    )


def test_without_an_operator_secret_there_is_no_operator_output():
    context = context_with("dev")
    del context["environments"]["dev"]["operatorSecretName"]
    _, template = synth("dev", context)
    assert "GenesysOperatorSecretName" not in template.to_json()["Outputs"]
