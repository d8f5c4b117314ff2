"""Reading compose's ps output and deciding readiness."""

from __future__ import annotations

import json

import pytest

from infra.deploy.health import ServiceStatus, compose_services, not_ready, parse_ps


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
