"""Reads the stack's configuration from the Pulumi engine into the flat map parse_config takes."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime.config import get_config

from infra.config import NAMESPACE

GCP_KEYS = ("project", "region", "zone")
KIT_KEYS = ("name", "domain", "acmeEmail", "vm", "database", "inngest", "app", "sshSourceRanges", "sshVia", "sshUser")
APP_SECRETS = "appSecrets"
REGISTRY_TOKEN = "registryToken"


def _value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _app_secret_names() -> list[str]:
    # Read raw: only the names are used here, and the names are not secret.
    values = _value(get_config(f"{NAMESPACE}:{APP_SECRETS}"))
    return sorted(values) if isinstance(values, dict) else []


def read_raw_config() -> dict[str, Any]:
    """The flat `namespace:key` map parse_config takes; app secrets appear by name only."""
    raw: dict[str, Any] = {}
    for key in GCP_KEYS:
        value = get_config(f"gcp:{key}")
        if value is not None:
            raw[f"gcp:{key}"] = value
    for key in KIT_KEYS:
        value = _value(get_config(f"{NAMESPACE}:{key}"))
        if value is not None:
            raw[f"{NAMESPACE}:{key}"] = value
    raw[f"{NAMESPACE}:{APP_SECRETS}"] = {name: "[secret]" for name in _app_secret_names()}
    if get_config(f"{NAMESPACE}:{REGISTRY_TOKEN}"):
        raw[f"{NAMESPACE}:{REGISTRY_TOKEN}"] = "[secret]"  # validation needs only whether it is set
    return raw


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
