"""Facts about this engine that the bed and the kit rely on, measured rather than assumed."""

from __future__ import annotations

from infra.render_compose import compose_model
from tests.support.engine_bed import START_INTERVAL_API, bed_config


def test_the_healthcheck_start_interval_needs_docker_25(engine, tmp_path):
    """The kit renders start_interval (the VM pins Docker 28). Compose refuses it on an older engine, which
    is why the bed turns it into the interval there (tests/support/engine_bed.py)."""
    healthcheck = compose_model(bed_config())["services"]["redis"]["healthcheck"]
    assert healthcheck["start_interval"] == "1s"
    probe = engine.disk / "start-interval-probe.yml"
    probe.write_text("services:\n  probe:\n    image: kit-test-base:bookworm\n    command: [sleep, '30']\n    healthcheck: {test: [CMD, 'true'], start_interval: 1s, start_period: 5s}\n")
    created = engine.docker("compose", "-p", "probe", "-f", str(probe), "create", check=False)
    try:
        if engine.api_version() < START_INTERVAL_API:
            assert created.returncode != 0 and "start_interval" in created.stderr, created.stderr
        else:
            assert created.returncode == 0, created.stderr
    finally:
        engine.docker("compose", "-p", "probe", "-f", str(probe), "down", check=False)
