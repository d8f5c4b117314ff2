"""Rendering a status report, as text and as JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.ops.parse import ContainerState, HealthCheck, Release
from infra.ops.status import Certificate, KeyAge, StatusReport, render_text, to_json

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HEALTHY = StatusReport(
    vm_name="acme-vm",
    vm_state="RUNNING",
    containers=[ContainerState("app", "kit-app-1", "running", "healthy", ""), ContainerState("inngest", "kit-inngest-1", "running", "", "")],
    containers_problem="",
    inngest=HealthCheck(True, "HTTP 200"),
    release=Release("r7", "/srv/kit/releases/r7", NOW - timedelta(hours=3)),
    release_problem="",
    certificate=Certificate("app.acme.com", NOW + timedelta(days=60)),
    keys=None,
)


def test_text_report():
    assert render_text(HEALTHY, NOW) == (
        "VM          acme-vm: RUNNING\n"
        "containers  app      running  healthy\n"
        "            inngest  running\n"
        "inngest     /health HTTP 200\n"
        "release     r7 (live since 2026-11-24 09:00 UTC, 3h ago)\n"
        "TLS         app.acme.com expires 2027-01-23 12:00 UTC (in 60 days)\n"
        "keys        not available\n"
    )


def test_json_report():
    data = to_json(HEALTHY, NOW)
    assert data["ok"] is True
    assert data["release"] == {"id": "r7", "path": "/srv/kit/releases/r7", "deployed_at": "2026-11-24T09:00:00+00:00", "age_seconds": 10800}
    assert data["certificate"]["days_left"] == 60
    assert [c["service"] for c in data["containers"]] == ["app", "inngest"]
    assert data["keys"] is None


def test_problems_are_shown_and_make_the_report_not_ok():
    from dataclasses import replace

    broken = replace(
        HEALTHY,
        vm_state="unknown (the Compute API could not be asked: DefaultCredentialsError)",
        containers=None,
        containers_problem="docker compose ps failed: permission denied",
        inngest=HealthCheck(False, "not answering (curl: (7) refused)"),
        release=None,
        release_problem="no release deployed yet",
        certificate=Certificate("app.acme.com", None, "no certificate yet"),
        keys=[KeyAge("inngest-signing-key", "4", NOW - timedelta(days=2))],
    )
    text = render_text(broken, NOW)
    assert "containers  docker compose ps failed: permission denied" in text
    assert "release     no release deployed yet" in text
    assert "TLS         app.acme.com: no certificate yet" in text
    assert "keys        inngest-signing-key version 4, created 2d ago" in text
    assert to_json(broken, NOW)["ok"] is False
