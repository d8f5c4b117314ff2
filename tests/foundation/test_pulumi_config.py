"""One validation on both paths: `pulumi up` (__main__.py via infra/pulumi_config.py) hands parse_config
the same full key set of the namespace as `make plan`, so a misspelled key is refused on both.

The engine config is set as the language host sets it: pulumi-language-python-exec calls
`pulumi.runtime.set_all_config(<PULUMI_CONFIG>, <PULUMI_CONFIG_SECRET_KEYS>)`, with every value
decrypted (pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec).
"""

from __future__ import annotations

import json

import pulumi
import pytest

from infra.config import ConfigError, parse_config
from infra.plan.evaluate import PlanInputError, _mask_config, evaluate
from infra.plan.mocks import PlanMocks, RecordingMonitor
from infra.pulumi_config import read_encrypted_keys, read_raw_config
from tests.foundation.plan_helpers import example_raw
from tests.foundation.test_entrypoint import run_entrypoint


def engine(raw: dict, secret_keys: list[str]) -> None:
    """What `pulumi up` gives the program: strings at the top level, objects as JSON, secrets decrypted."""
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}, secret_keys)


def decrypted_example() -> dict:
    raw = example_raw()
    raw["inngest-kit:appSecrets"] = {"STRIPE_API_KEY": "sk_live_decrypted_by_the_engine"}
    return raw


def test_both_paths_hand_the_same_key_set_to_the_same_validation():
    raw = decrypted_example()
    raw["gcp:credentials"] = "{}"  # another namespace's key: neither path validates it
    engine(raw, ["inngest-kit:appSecrets"])
    from_engine = read_raw_config()
    from_file, _ = _mask_config(raw)
    ours = {k for k in from_file if k.startswith("inngest-kit:") or k in ("gcp:project", "gcp:region", "gcp:zone")}
    assert set(from_engine) == ours
    assert parse_config(from_engine) == parse_config({k: from_file[k] for k in ours} | {"inngest-kit:appSecrets": {"STRIPE_API_KEY": "[secret]"}})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("inngest-kit:colour", "blue", "inngest-kit:colour: is not a known setting"),
        ("inngest-kit:acmeEmial", "ops@example.com", "inngest-kit:acmeEmial: is not a known setting"),
        ("inngest-kit:vm", {"machineTyp": "e2-medium"}, "inngest-kit:vm.machineTyp: is not a known setting"),
    ],
)
def test_a_misspelled_key_is_refused_on_pulumi_up_as_in_the_plan(key, value, expected):
    raw = decrypted_example()
    raw[key] = value
    engine(raw, ["inngest-kit:appSecrets"])
    with pytest.raises(ConfigError) as on_up:
        parse_config(read_raw_config())
    assert any(p.startswith(expected) for p in on_up.value.problems), on_up.value.problems
    masked, _ = _mask_config(raw)
    with pytest.raises(ConfigError) as on_plan:
        parse_config(masked)
    assert any(p.startswith(expected) for p in on_plan.value.problems)


def test_a_misspelled_key_stops_pulumi_up_before_any_resource(capsys):
    raw = decrypted_example()
    raw["inngest-kit:domian"] = "app.example.com"
    monitor = RecordingMonitor(PlanMocks("acme-web-prod", "us-central1"))
    with pytest.raises(SystemExit) as stopped:
        run_entrypoint(raw, monitor)
    assert stopped.value.code == 2 and monitor.registrations == []
    assert "inngest-kit:domian: is not a known setting" in capsys.readouterr().err


def test_an_acme_email_set_with_secret_is_accepted_on_both_paths():
    # pulumi up: the engine hands the decrypted value and lists the key as secret.
    raw = decrypted_example()
    raw["inngest-kit:acmeEmail"] = "ops@acme-example.com"
    engine(raw, ["inngest-kit:appSecrets", "inngest-kit:acmeEmail"])
    assert parse_config(read_raw_config()).acme_email == "ops@acme-example.com"
    # make plan: the stack file holds ciphertext, which the plan never decrypts.
    file_raw = example_raw()
    file_raw["inngest-kit:acmeEmail"] = {"secure": "v1:ciphertext-of-the-address"}
    result = evaluate("example", raw=file_raw)
    assert result.config.acme_email == "[secret]"
    assert "email [secret]" in result.document["files"]["Caddyfile"]


def test_a_bad_acme_email_set_with_secret_is_still_refused_on_pulumi_up():
    raw = decrypted_example()
    raw["inngest-kit:acmeEmail"] = "{$ACME_EMAIL}"
    engine(raw, ["inngest-kit:appSecrets", "inngest-kit:acmeEmail"])
    with pytest.raises(ConfigError) as caught:
        parse_config(read_raw_config())
    assert any(p.startswith("inngest-kit:acmeEmail: '{$ACME_EMAIL}' is not an email address") for p in caught.value.problems)


def test_app_secrets_stored_in_plain_text_are_warned_about_on_pulumi_up():
    raw = decrypted_example()
    engine(raw, [])  # appSecrets not among the secret keys: stored in plain text
    config = parse_config(read_raw_config())
    assert [w.split(":")[1] for w in config.warnings] == ["appSecrets.STRIPE_API_KEY"]
    assert "sk_live_decrypted_by_the_engine" not in json.dumps(read_raw_config())
    engine(raw, ["inngest-kit:appSecrets"])
    assert parse_config(read_raw_config()).warnings == ()


def test_pulumi_up_logs_each_warning(monkeypatch):
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warned.append(message))
    raw = decrypted_example()
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], "env": {"NODE_ENV": "production", "GITHUB_TOKEN": "ghp_x"}}
    run_entrypoint(raw)
    assert [w.split(":")[1] for w in warned] == ["app.env.GITHUB_TOKEN"]


@pytest.mark.parametrize(
    ("key", "encrypted_in_file", "decrypted"),
    [
        ("inngest-kit:domain", {"secure": "v1:x"}, "app.acme-example.com"),
        ("inngest-kit:app", None, None),  # app.env.LOG_LEVEL set with --secret --path
    ],
)
def test_a_setting_set_with_secret_that_the_kit_writes_in_plain_text_is_refused_on_both_paths(key, encrypted_in_file, decrypted):
    expected = f"{key}: holds a value set with --secret, but the kit writes this setting in plain text to the VM and the plan."
    file_raw = example_raw()
    if key == "inngest-kit:app":
        file_raw[key]["env"]["LOG_LEVEL"] = {"secure": "v1:x"}
    else:
        file_raw[key] = encrypted_in_file
    with pytest.raises(PlanInputError) as on_plan:
        evaluate("example", raw=file_raw)
    assert any(p.startswith(expected) for p in on_plan.value.problems), on_plan.value.problems
    engine_raw = decrypted_example()
    if decrypted is not None:
        engine_raw[key] = decrypted
    engine(engine_raw, ["inngest-kit:appSecrets", key])
    with pytest.raises(ConfigError) as on_up:
        parse_config(read_raw_config(), read_encrypted_keys())
    assert any(p.startswith(expected) for p in on_up.value.problems), on_up.value.problems


def test_a_registry_token_set_with_secret_is_accepted_on_pulumi_up_and_never_handed_to_validation():
    raw = decrypted_example()
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], "registry": {"username": "deploy"}}
    raw["inngest-kit:registryToken"] = "ghp_decrypted_registry_token"
    engine(raw, ["inngest-kit:appSecrets", "inngest-kit:registryToken"])
    assert "ghp_decrypted_registry_token" not in json.dumps(read_raw_config())
    config = parse_config(read_raw_config(), read_encrypted_keys())
    assert config.app.registry_username == "deploy" and config.warnings == ()
    engine(raw, ["inngest-kit:appSecrets"])  # the token in plain text: a warning that never shows it
    warnings = parse_config(read_raw_config(), read_encrypted_keys()).warnings
    assert [w.split(":")[1] for w in warnings] == ["registryToken"]
    assert "ghp_decrypted_registry_token" not in "".join(warnings)
