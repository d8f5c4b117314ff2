"""Fixtures for the rendered-file tests: the example stack, its render inputs, and config variants."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from infra import naming
from infra.config import StackConfig, parse_config
from infra.plan.mocks import STAND_IN_SERVER_CA
from infra.render import RenderInputs, SecretRef, render_stack

REPO = Path(__file__).resolve().parents[2]
SQL_IP = "10.20.0.3"


def example_raw() -> dict:
    return yaml.safe_load((REPO / "Pulumi.example.yaml").read_text())["config"]


def config_from(raw: dict) -> StackConfig:
    return parse_config(raw)


def config_with(**app_overrides) -> StackConfig:
    """The example stack with some `inngest-kit:app` settings replaced."""
    raw = copy.deepcopy(example_raw())
    raw["inngest-kit:app"].update(app_overrides)
    return parse_config(raw)


def inputs_for(config: StackConfig, initial_version: str = "1") -> RenderInputs:
    names = naming.names_for(config)
    secrets = {logical: SecretRef(names.secret_id(logical), initial_version) for logical in naming.logical_secrets(config)}
    return RenderInputs(project=config.project, sql_private_ip=SQL_IP, secrets=secrets, server_ca_pem=STAND_IN_SERVER_CA)


@pytest.fixture
def config() -> StackConfig:
    return config_from(example_raw())


@pytest.fixture
def inputs(config) -> RenderInputs:
    return inputs_for(config)


@pytest.fixture
def files(config, inputs) -> dict[str, str]:
    return render_stack(config, inputs)


@pytest.fixture
def release_dir(tmp_path, files) -> Path:
    """The rendered files written out as a release directory, executables marked as the deploy would."""
    from infra.render import EXECUTABLE_FILES

    directory = tmp_path / "release"
    for path, content in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(0o755 if path in EXECUTABLE_FILES else 0o644)
    return directory
