"""The render interface the deploy builds on: which files, which are executable, what restarts what."""

from __future__ import annotations

import dataclasses

import pytest

from infra import naming
from infra.render import (
    EXECUTABLE_FILES,
    RenderError,
    RenderInputs,
    SecretRef,
    render_app_env,
    render_stack,
    services_restarted_by,
)
from tests.render.conftest import config_with, inputs_for


def test_renders_every_release_file_sorted_by_path(files):
    assert list(files) == sorted(files)
    assert set(files) == {
        "Caddyfile",
        "app-healthcheck.sh",
        "app.env",
        "docker-compose.yml",
        "fetch-secrets.sh",
        "registry-login.sh",
        "server-ca.pem",
        "start-inngest.sh",
        "with-secrets.sh",
    }
    assert all(content.endswith("\n") for content in files.values())


def test_rendering_is_pure_the_same_inputs_give_the_same_bytes(config, inputs):
    assert render_stack(config, inputs) == render_stack(config, inputs)


def test_executable_files_are_the_shell_scripts(files):
    assert EXECUTABLE_FILES <= set(files)
    assert EXECUTABLE_FILES == {path for path, content in files.items() if content.startswith("#!/bin/sh\n")}


def test_files_compose_sees_restart_nothing_and_mounted_files_restart_their_service(files):
    restarts = {path: services_restarted_by(path) for path in files}
    assert restarts == {
        "docker-compose.yml": (),
        "app.env": (),
        "fetch-secrets.sh": (),
        "registry-login.sh": (),
        "Caddyfile": ("caddy",),
        "with-secrets.sh": ("app",),
        "app-healthcheck.sh": ("app",),
        "start-inngest.sh": ("inngest",),
        "server-ca.pem": ("app", "inngest"),
    }


def test_every_file_a_service_mounts_restarts_that_service(files):
    import yaml

    services = yaml.safe_load(files["docker-compose.yml"])["services"]
    for service, spec in services.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            name = source.rsplit("/", 1)[-1]
            if source.startswith("/srv/kit/current/"):
                assert service in services_restarted_by(name), f"{name} is mounted into {service}"


def test_unknown_path_is_an_error_naming_the_known_files():
    with pytest.raises(ValueError, match="'nope.txt' is not a file render_stack produces.*Caddyfile"):
        services_restarted_by("nope.txt")


def test_bad_inputs_are_all_reported_at_once(config, inputs):
    secrets = dict(inputs.secrets)
    del secrets[naming.EVENT_KEY]
    secrets[naming.SIGNING_KEY] = SecretRef("acme inngest", "latest")
    bad = RenderInputs(project="Acme Web", sql_private_ip="<unknown>", secrets=secrets)
    with pytest.raises(RenderError) as caught:
        render_stack(config, bad)
    text = str(caught.value)
    assert len(caught.value.problems) == 6, text
    assert "inputs.server_ca_pem: is not a PEM certificate" in text
    assert "inputs.project: 'Acme Web' is not a project id" in text
    assert "inputs.sql_private_ip: '<unknown>' is not an IP address" in text
    assert "inputs.secrets['inngest-event-key']: is missing" in text
    assert "inputs.secrets['inngest-signing-key'].secret_id: 'acme inngest'" in text
    assert "inputs.secrets['inngest-signing-key'].initial_version: 'latest' is not a version number" in text


def test_every_app_secret_needs_a_ref(config, inputs):
    secrets = {k: v for k, v in inputs.secrets.items() if k != naming.app_secret_logical("STRIPE_API_KEY")}
    with pytest.raises(RenderError, match=r"inputs.secrets\['app-stripe-api-key'\]: is missing"):
        render_stack(config, dataclasses.replace(inputs, secrets=secrets))


def test_health_path_that_a_shell_or_caddy_cannot_carry_is_refused():
    # The config refuses it first; the renderer's own guard is checked on a config built past it.
    config = _bypassing_config(health_path='/health"$(reboot)')
    with pytest.raises(RenderError, match="inngest-kit:app.healthPath"):
        render_stack(config, inputs_for(config))


def test_app_env_holds_the_kit_wiring_then_the_users_plain_env(config):
    lines = [line for line in render_app_env(config).splitlines() if line and not line.startswith("#")]
    assert lines == [
        "INNGEST_BASE_URL='http://inngest:8288'",
        "INNGEST_DEV='0'",
        "INNGEST_SERVE_ORIGIN='http://app:3000'",
        "PORT='3000'",
        "LOG_LEVEL='info'",
        "NODE_ENV='production'",
    ]


def test_env_values_are_single_quoted_so_compose_takes_dollars_and_hashes_literally():
    config = config_with(env={"GREETING": "it's $HOME # not a comment", "MULTI": "a\nb"})
    env = render_app_env(config)
    assert "GREETING='it\\'s $HOME # not a comment'\n" in env
    assert "MULTI='a\nb'\n" in env


def test_env_values_compose_cannot_quote_are_refused():
    config = _bypassing_config(env={"WINDOWS_PATH": "C:\\"})
    with pytest.raises(RenderError, match="inngest-kit:app.env.WINDOWS_PATH: a backslash"):
        render_stack(config, inputs_for(config))


def _bypassing_config(**app_changes):
    config = config_with()
    return config.model_copy(update={"app": config.app.model_copy(update=app_changes)})
