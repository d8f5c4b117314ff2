"""Restarts on the engine: inngest, redis, and a power loss. Queued state must survive (redis AOF), and
after a power loss the stack's secrets must exist before dockerd starts its containers."""

from __future__ import annotations

import time

from infra import layout
from infra.startup import render_secrets_unit, render_unit
from tests.support.engine_boot import boot
from tests.support.engine_checks import starts


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


POLICIES = ("no", "on-failure", "always", "unless-stopped")


def power_cycle(bed) -> dict[str, list[str]]:
    """Power loss, then a boot with the units the startup script installs, in systemd's order."""
    bed.engine.power_loss()
    return boot(bed.engine, {layout.SECRETS_UNIT: render_secrets_unit(), layout.SYSTEMD_UNIT: render_unit()}, bed.vm.tools.sudo)


def test_after_a_power_loss_dockerd_starts_every_container_whose_policy_restarts(bed):
    """What the boot order must account for, measured: on this engine only `restart: no` waits for a unit."""
    names = {policy: f"policy-{policy}" for policy in POLICIES}
    for policy, name in names.items():
        bed.engine.docker("rm", "-f", name, check=False)
        bed.engine.docker("run", "-d", "--name", name, "--restart", policy, "kit-test-base:bookworm", "sleep", "infinity")
    running = {}
    try:
        bed.engine.power_loss()
        bed.engine.boot()  # dockerd alone, no unit: what dockerd does by itself
        time.sleep(2)
        for policy, name in names.items():
            running[policy] = bed.engine.docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"
    finally:
        bed.engine.docker("rm", "-f", *names.values(), check=False)
        power_cycle(bed)
        bed.wait_healthy(timeout=120)
    assert running == {"no": False, "on-failure": True, "always": True, "unless-stopped": True}


def test_after_a_power_loss_the_secrets_exist_before_dockerd_starts_the_containers(bed):
    """dockerd restarts unless-stopped containers as soon as it starts. Before the fix the only unit ran after
    docker.service, so app and inngest started on an empty secrets tmpfs and crash-looped until it ran."""
    bed.start_pump(100)
    time.sleep(2)
    stored = bed.standin()["events"]
    time.sleep(1.5)
    before = bed.engine.containers()
    assert {c["policy"] for c in before.values()} == {"unless-stopped"}
    booted = time.time()
    ran = power_cycle(bed)
    assert ran[layout.SYSTEMD_UNIT], ran
    bed.wait_healthy(timeout=120)
    started = starts(bed.engine, booted)
    assert started == {"app": 1, "caddy": 1, "inngest": 1, "redis": 1}, f"started more than once since the boot (before their secrets?): {started}"
    after = bed.engine.containers()
    assert all(c["restarts"] == 0 for c in after.values()), after
    assert bed.standin()["events"] >= stored  # the queue and events survived in redis' append-only file
