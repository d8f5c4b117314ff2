"""Reads the stack's configuration from the Pulumi engine into the flat map parse_config takes.

On `pulumi up` the language host hands the program every configured key, decrypted, plus the list of
keys stored encrypted: pulumi-language-python-exec calls `pulumi.runtime.set_all_config(
get_config_env(), get_config_secret_keys_env())` from PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS
(pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec; pulumi/runtime/config.py). So a value set
with `--secret`, such as acmeEmail, arrives here as plain text and is checked like any other.

Every key of this namespace is read, not a fixed list, so a misspelled key reaches the same
validation as in `make plan`, and is refused there.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, get_config_secret_keys_env, is_config_secret

from infra.config import ENCRYPTED, GCP_KEYS, NAMESPACE

APP_SECRETS = "appSecrets"
APP_SECRETS_KEY = f"{NAMESPACE}:{APP_SECRETS}"
REGISTRY_TOKEN = "registryToken"
REGISTRY_TOKEN_KEY = f"{NAMESPACE}:{REGISTRY_TOKEN}"


def _value(text: Any) -> Any:
    """Top-level values arrive as strings; objects and lists as their JSON."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def configured_keys() -> list[str]:
    """Every key the engine set, of this namespace and the gcp settings the kit reads."""
    keys = set(CONFIG.get()) | set(get_config_env())
    return sorted(key for key in keys if isinstance(key, str) and (key in GCP_KEYS or key.startswith(NAMESPACE + ":")))


def read_encrypted_keys() -> set[str]:
    """The configured keys stored encrypted (set with `--secret`), as the engine lists them."""
    listed = set(get_config_secret_keys_env())
    return {key for key in configured_keys() if is_config_secret(key) or key in listed}


def _config_value(key: str) -> Any:
    if key in CONFIG.get():
        return CONFIG.get()[key]
    return get_config_env().get(key)


def read_raw_config() -> dict[str, Any]:
    """The flat `namespace:key` map parse_config takes; app secrets appear by name only.

    Each app secret's value is replaced by the marker of an encrypted value when the engine says
    appSecrets is stored encrypted, so only the names and that fact reach validation.
    """
    raw: dict[str, Any] = {}
    encrypted_keys = read_encrypted_keys()
    for key in configured_keys():
        value = _config_value(key)
        raw[key] = value if key in GCP_KEYS else _value(value)
    secrets = raw.get(APP_SECRETS_KEY)
    if isinstance(secrets, dict):
        encrypted = APP_SECRETS_KEY in encrypted_keys
        raw[APP_SECRETS_KEY] = {name: ENCRYPTED if encrypted else _plain_marker(value) for name, value in secrets.items()}
    if raw.get(REGISTRY_TOKEN_KEY) not in (None, ""):
        # Validation needs only whether it is set, and whether it is stored encrypted.
        raw[REGISTRY_TOKEN_KEY] = ENCRYPTED if REGISTRY_TOKEN_KEY in encrypted_keys else _plain_marker(raw[REGISTRY_TOKEN_KEY])
    return raw


def _plain_marker(value: Any) -> Any:
    # Keep the type, never the text: validation only needs to know the value is a plain scalar.
    return "[plain text]" if isinstance(value, (str, int, float, bool)) else value


def _app_secret_names() -> list[str]:
    values = _value(_config_value(APP_SECRETS_KEY))
    return sorted(values) if isinstance(values, dict) else []


def read_registry_token() -> pulumi.Output[str] | None:
    """The private registry's read token (`pulumi config set --secret registryToken`), as a secret output."""
    return pulumi.Config(NAMESPACE).get_secret(REGISTRY_TOKEN)


def read_app_secret_values() -> dict[str, pulumi.Output[str]]:
    """Each app secret's value, as a Pulumi secret output."""
    names = _app_secret_names()
    if not names:
        return {}
    values = pulumi.Config(NAMESPACE).require_secret_object(APP_SECRETS)
    return {name: values.apply(lambda v, n=name: str(v[n])) for name in names}
