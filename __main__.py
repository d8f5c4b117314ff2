"""`pulumi up` entry point: read and validate the config, build the components, export outputs."""

import sys

import pulumi

from infra.config import ConfigError, parse_config
from infra.program import build
from infra.pulumi_config import read_app_secret_values, read_encrypted_keys, read_raw_config, read_registry_token

try:
    # The same validation as `make plan`, on every key of the namespace the engine holds.
    config = parse_config(read_raw_config(), read_encrypted_keys())
except ConfigError as error:
    # Every problem at once, before any resource is registered.
    print("The stack configuration has problems:\n" + "\n".join(f"  - {p}" for p in error.problems), file=sys.stderr)
    sys.exit(2)

for warning in config.warnings:
    pulumi.log.warn(warning)

try:
    stack = build(config, read_app_secret_values(), read_registry_token())
except ConfigError as error:
    # What the program found reading an adopted Cloud SQL instance, before any registration.
    print("The stack cannot be built:\n" + "\n".join(f"  - {p}" for p in error.problems), file=sys.stderr)
    sys.exit(2)
for name, value in stack.outputs.items():
    pulumi.export(name, value)
