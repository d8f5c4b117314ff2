"""Restarts on the engine: inngest, redis, and a power loss. Queued state must survive (redis AOF), and
after a power loss the stack's secrets must exist before dockerd starts its containers."""

from __future__ import annotations

import time

from infra import layout
from infra.startup import render_secrets_unit, render_unit
from tests.support.engine_boot import boot
from tests.support.engine_checks import deaths


def compose(bed, *args: str) -> None:
    bed.engine.in_vm([*bed.vm.tools.docker, "compose", "-p", "kit", "-f", f"{bed.vm.paths.current}/docker-compose.yml", "--project-directory", bed.vm.paths.current, *args])


def test_restarting_redis_and_then_inngest_keeps_every_stored_event(bed):
    bed.start_pump(100)
    time.sleep(2)
    for service in ("redis", "inngest"):
        stored = bed.standin()["events"]
        time.sleep(1.5)  # appendfsync everysec: what was written a second ago is on disk
        stored = bed.standin()["events"]
        compose(bed, "restart", service)
        bed.wait_healthy(timeout=90)
        assert bed.standin()["events"] >= stored, service


def test_after_a_power_loss_the_secrets_exist_before_dockerd_starts_the_containers(bed):
    """dockerd restarts unless-stopped containers as soon as it starts. Before the fix the only unit ran after
    docker.service, so app and inngest started on an empty secrets tmpfs and crash-looped until it ran."""
    bed.start_pump(100)
    time.sleep(2)
    stored = bed.standin()["events"]
    time.sleep(1.5)
    before = bed.engine.containers()
    assert {c["policy"] for c in before.values()} == {"unless-stopped"}
    bed.engine.power_loss()
    booted = time.time()
    ran = boot(bed.engine, {layout.SECRETS_UNIT: render_secrets_unit(), layout.SYSTEMD_UNIT: render_unit()}, bed.vm.tools.sudo)
    assert ran[layout.SYSTEMD_UNIT], ran
    bed.wait_healthy(timeout=120)
    died = deaths(bed.engine, booted)
    assert died == {}, f"containers died after the boot (started before their secrets?): {died}"
    after = bed.engine.containers()
    assert all(c["restarts"] == 0 for c in after.values()), after
    assert bed.standin()["events"] >= stored  # the queue and events survived in redis' append-only file
