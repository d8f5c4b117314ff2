"""Reading compose's ps output and deciding readiness."""

from __future__ import annotations

import json

import pytest

from infra.deploy.health import ServiceStatus, compose_services, healthchecked_services, not_ready, parse_ps


def row(service, state="running", health=""):
    return {"Name": f"kit-{service}-1", "Service": service, "State": state, "Health": health, "ExitCode": 0}


def test_parses_one_object_per_line_and_the_older_array_shape():
    lines = "\n".join(json.dumps(r) for r in (row("app", health="healthy"), row("caddy")))
    expected = (ServiceStatus("app", "running", "healthy"), ServiceStatus("caddy", "running", ""))
    assert parse_ps(lines) == expected
    assert parse_ps(json.dumps([row("app", health="healthy"), row("caddy")])) == expected
    assert parse_ps("\n") == ()


def test_not_ready_names_each_problem():
    statuses = parse_ps("\n".join(json.dumps(r) for r in (row("app", health="unhealthy"), row("redis", state="exited"), row("caddy"))))
    assert not_ready(("app", "caddy", "inngest", "redis"), statuses) == ("app is running (unhealthy)", "inngest has no container", "redis is exited")
    assert not_ready(("caddy",), statuses) == ()


def test_starting_is_not_ready():
    assert not ServiceStatus("app", "running", "starting").ready


def test_compose_services():
    assert compose_services("services:\n  redis: {}\n  app: {}\n") == ("app", "redis")
    with pytest.raises(ValueError, match="no services"):
        compose_services("volumes: {}\n")


COMPOSE_WITH_CHECKS = """\
services:
  caddy:
    healthcheck: {test: ["CMD", "wget", "-q", "http://127.0.0.1:2019/config/"]}
  app:
    healthcheck: {test: ["CMD", "true"], disable: true}
  worker:
    healthcheck: {test: ["NONE"]}
  redis: {}
"""


def test_healthchecked_services_are_those_whose_definition_declares_a_live_check():
    assert healthchecked_services(COMPOSE_WITH_CHECKS) == frozenset({"caddy"})


def test_an_empty_health_is_not_ready_for_a_service_that_declares_a_healthcheck():
    """A crash-looping container shows `running` with an empty health between restarts: not "no healthcheck"."""
    statuses = (ServiceStatus("caddy", "running", ""), ServiceStatus("redis", "running", ""))
    assert not_ready(("caddy", "redis"), statuses) == ()  # the old reading
    assert not_ready(("caddy", "redis"), statuses, frozenset({"caddy"})) == ("caddy is running (not yet healthy)",)
    assert not_ready(("caddy",), (ServiceStatus("caddy", "running", "healthy"),), frozenset({"caddy"})) == ()


def test_a_restarting_service_shows_its_last_exit_code():
    rows = [{"Service": "caddy", "State": "restarting", "Health": "", "ExitCode": 1}]
    assert not_ready(("caddy",), parse_ps(json.dumps(rows)), frozenset({"caddy"})) == ("caddy is restarting (last exit code 1) (not yet healthy)",)
