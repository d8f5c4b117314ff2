"""Parsers of the remote tools' output, and the audit log format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from infra.ops.audit import entry, parse_audit, render_audit
from infra.ops.parse import (
    ContainerState,
    HealthCheck,
    UnexpectedOutput,
    parse_compose_ps,
    parse_enddate,
    parse_http_probe,
    parse_live_release,
)

ROWS = [
    {"Service": "redis", "Name": "kit-redis-1", "State": "running", "Health": "healthy", "Status": "Up 2 hours (healthy)"},
    {"Service": "app", "Name": "kit-app-1", "State": "exited", "Health": "", "Status": "Exited (1) 3 minutes ago"},
]
EXPECTED = [
    ContainerState("app", "kit-app-1", "exited", "", "Exited (1) 3 minutes ago"),
    ContainerState("redis", "kit-redis-1", "running", "healthy", "Up 2 hours (healthy)"),
]


def test_compose_ps_one_object_per_line():
    assert parse_compose_ps("\n".join(json.dumps(row) for row in ROWS) + "\n") == EXPECTED


def test_compose_ps_older_array_form():
    assert parse_compose_ps(json.dumps(ROWS)) == EXPECTED


def test_compose_ps_nothing_running():
    assert parse_compose_ps("") == []


def test_compose_ps_garbage_is_a_clear_error():
    with pytest.raises(UnexpectedOutput, match="not JSON"):
        parse_compose_ps("NAME   IMAGE   STATUS\n")


@pytest.mark.parametrize(
    ("state", "health", "ok"),
    [("running", "healthy", True), ("running", "", True), ("running", "unhealthy", False), ("running", "starting", False), ("exited", "", False)],
)
def test_container_ok(state, health, ok):
    assert ContainerState("s", "n", state, health, "").ok is ok


def test_http_probe():
    assert parse_http_probe(0, "200", "") == HealthCheck(True, "HTTP 200")
    assert parse_http_probe(0, "503", "") == HealthCheck(False, "HTTP 503")
    refused = parse_http_probe(7, "000", "curl: (7) Failed to connect to 127.0.0.1 port 8288\n")
    assert refused == HealthCheck(False, "not answering (curl: (7) Failed to connect to 127.0.0.1 port 8288)")


def test_live_release():
    release = parse_live_release("/srv/kit/releases/20261124-134200-ab12cd\n1795000000\n")
    assert release.release_id == "20261124-134200-ab12cd"
    assert release.path == "/srv/kit/releases/20261124-134200-ab12cd"
    assert release.deployed_at == datetime.fromtimestamp(1795000000, UTC)


def test_live_release_unexpected():
    with pytest.raises(UnexpectedOutput):
        parse_live_release("/srv/kit/releases/x\n")


def test_enddate_with_a_space_padded_day():
    assert parse_enddate("notAfter=Mar  1 12:30:00 2027 GMT\n") == datetime(2027, 3, 1, 12, 30, tzinfo=UTC)


def test_enddate_unexpected():
    with pytest.raises(UnexpectedOutput):
        parse_enddate("unable to load certificate\n")


def test_audit_round_trip_and_rendering():
    at = datetime(2026, 11, 24, 13, 42, 5, tzinfo=UTC)
    text = entry("deploy", at=at, actor="ci@example.com", release="r1", services=["app", "caddy"]) + "a note written by hand\n"
    entries = parse_audit(text)
    assert entries == [
        {"time": "2026-11-24T13:42:05Z", "action": "deploy", "actor": "ci@example.com", "release": "r1", "services": ["app", "caddy"]},
        {"line": "a note written by hand"},
    ]
    assert render_audit(entries) == '2026-11-24T13:42:05Z  deploy  ci@example.com  release=r1  services=["app", "caddy"]\na note written by hand\n'
