"""The published JSON Schema (schema/stack-config.schema.json) is what the models generate today, it
accepts the example stack and flags what the models refuse by type or name; Pulumi.yaml declares the
simple settings with the types and defaults of the models."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from infra.config import ConfigError, StackConfig, config_json_schema, parse_config
from infra.config_schema import SCHEMA_FILE, schema_text
from infra.plan.evaluate import PROJECT_ROOT

# The types Pulumi's project config accepts (pulumi/pulumi sdk/go/common/workspace/project.json,
# $defs.simpleConfigType).
PULUMI_CONFIG_TYPES = {"string", "integer", "boolean", "array"}


def stack_document() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.example.yaml").read_text())


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_what_the_models_generate():
    assert SCHEMA_FILE.read_text() == schema_text(), "run `python -m infra.config_schema` and commit the result"


def test_the_schema_accepts_the_example_stack_file():
    assert list(validator().iter_errors(stack_document())) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("inngest-kit:colour", "blue"),
        ("inngest-kit:vm", {"machineTyp": "e2-small"}),
        ("inngest-kit:vm", {"bootDiskGb": 5}),
        ("inngest-kit:app", {"command": ["node"]}),
        ("inngest-kit:inngest", {"postgresMaxOpenConns": 1}),
        ("inngest-kit:sshVia", "telnet"),
        ("inngest-kit:appSecrets", {"lower-case": {"secure": "v1:x"}}),
    ],
)
def test_the_schema_flags_what_the_models_refuse(key, value):
    document = stack_document()
    document["config"][key] = value
    assert list(validator().iter_errors(document)), f"{key}={value!r} passed the schema"
    with pytest.raises(ConfigError):  # and the models refuse it too
        parse_config(document["config"])


def test_other_namespaces_pass_the_schema():
    document = stack_document()
    document["config"]["gcp:credentials"] = "path/to/key.json"
    assert list(validator().iter_errors(document)) == []


def test_every_setting_of_the_model_is_in_the_schema():
    properties = config_json_schema()["properties"]["config"]["properties"]
    assert set(properties) == {field.alias for field in StackConfig.model_fields.values()}


def pulumi_project_config() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())["config"]


def test_pulumi_yaml_declares_simple_settings_with_types_pulumi_allows_and_the_models_agree():
    declared = pulumi_project_config()
    properties = config_json_schema()["properties"]["config"]["properties"]
    required = set(config_json_schema()["properties"]["config"]["required"])
    assert declared
    for key, declaration in declared.items():
        assert set(declaration) <= {"type", "items", "description", "secret", "default"}
        assert declaration["type"] in PULUMI_CONFIG_TYPES
        if declaration["type"] == "array":
            assert declaration["items"]["type"] in PULUMI_CONFIG_TYPES
        ours = properties[f"inngest-kit:{key}"]
        kinds = {ours.get("type")} | {option.get("type") for option in ours.get("anyOf", [])}
        if "enum" in ours:
            kinds.add("string")
        assert declaration["type"] in kinds, (key, ours)
        # Pulumi treats a declared key without a default as required; so must the models.
        assert ("default" not in declaration) == (f"inngest-kit:{key}" in required), key
        if "default" in declaration:
            assert declaration["default"] == ours["default"], key
