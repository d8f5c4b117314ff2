"""Benchmark: the kit's stack on a real Docker engine (tests/support/engine.py), as the kit deploys it.

Prints, with steady clients running and counting every failure:
- the first deploy on a ready machine (images present): wall time;
- a one-file change (the Caddyfile): wall time and the containers created;
- an app image change: wall time, and failed/total requests of a steady HTTPS client through Caddy;
- signing-key and event-key rotation (the keys CLI): failed/total signed calls from the Inngest
  stand-in to the app, and failed/total events from the app to the stand-in;
- a restart of inngest, of redis, and a power loss: stored events kept (redis AOF), time until healthy.
Figures only, no thresholds. Needs the bed (`sudo make test-deps`); says so and stops otherwise.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra import layout  # noqa: E402
from infra.startup import render_secrets_unit, render_unit  # noqa: E402
from tests.support.engine import (  # noqa: E402
    APP_IMAGE_NEXT,
    BASE_TARBALL,
    SKIP_REASON,
    Engine,
    EngineUnavailable,
    exclusive,
    images_ready,
    missing_prerequisites,
    prepare_images,
)
from tests.support.engine_bed import SteadyClient, app_probe, bed_config, build_bed, local_caddyfile  # noqa: E402
from tests.support.engine_boot import boot  # noqa: E402
from tests.support.engine_checks import Traffic, creations, wait_for_queue_drained  # noqa: E402

ROWS: list[tuple[str, str]] = []


def row(operation: str, figures: str) -> None:
    ROWS.append((operation, figures))
    print(f"  {operation:<34} {figures}", flush=True)


def timed(action):
    started = time.monotonic()
    result = action()
    return time.monotonic() - started, result


def compose(bed, *args: str) -> None:
    bed.engine.in_vm([*bed.vm.tools.docker, "compose", "-p", "kit", "-f", f"{bed.vm.paths.current}/docker-compose.yml", "--project-directory", bed.vm.paths.current, *args])


def rotation(bed, label: str, *argv: str) -> None:
    time.sleep(1)
    before = Traffic.read(bed.standin())
    seconds, code = timed(lambda: bed.keys(*argv))
    time.sleep(2)
    moved = Traffic.read(wait_for_queue_drained(bed)).since(before)
    row(label, f"{moved.describe()}; exit {code}; {seconds:.1f} s")


def restart(bed, service: str) -> None:
    time.sleep(1.5)
    stored = bed.standin()["events"]
    started = time.monotonic()
    compose(bed, "restart", service)
    bed.wait_healthy(timeout=120)
    row(f"restart {service}", f"healthy after {time.monotonic() - started:.1f} s; stored events {stored} -> {bed.standin()['events']}")


def run(engine: Engine, work: Path) -> None:
    bed = build_bed(engine, work)
    try:
        seconds, _ = timed(lambda: bed.deploy(bed.files()))
        row("first deploy", f"{seconds:.1f} s (engine API {'.'.join(map(str, engine.api_version()))})")

        since = time.time()
        seconds, result = timed(lambda: bed.deploy(bed.files(caddyfile=local_caddyfile(bed_config(), marker="bench"))))
        row("Caddyfile change", f"{seconds:.1f} s; created {creations(engine, since) or 'nothing'}; uploaded {list(result.uploaded)}")

        with SteadyClient(app_probe(bed), interval=0.05) as client:
            time.sleep(1)
            since = time.time()
            seconds, _ = timed(lambda: bed.deploy(bed.files(bed_config(image=APP_IMAGE_NEXT), caddyfile=local_caddyfile(bed_config(), marker="bench"))))
            time.sleep(1)
        row("app image change", f"{seconds:.1f} s; created {creations(engine, since)}; HTTPS via Caddy: {client.summary()}")

        rotation(bed, "signing-key rotation", "rotate", "signing", "--stack", "dev", "--yes", "--grace", "5s", "--reason", "bench")
        rotation(bed, "event-key rotation", "rotate", "event", "--stack", "dev", "--yes", "--reason", "bench")

        restart(bed, "inngest")
        restart(bed, "redis")

        time.sleep(1.5)
        stored = bed.standin()["events"]
        engine.power_loss()
        started = time.monotonic()
        boot(engine, {layout.SECRETS_UNIT: render_secrets_unit(), layout.SYSTEMD_UNIT: render_unit()}, bed.vm.tools.sudo)
        bed.wait_healthy(timeout=180)
        row("power loss", f"healthy {time.monotonic() - started:.1f} s after power-on; stored events {stored} -> {bed.standin()['events']}; "
            f"restarts since boot {sum(c['restarts'] for c in engine.containers().values())}")
    finally:
        bed.stop()


def main() -> int:
    problems = missing_prerequisites()
    if problems:
        print(f"engine bench skipped: {SKIP_REASON}; here: {'; '.join(problems)}")
        return 0
    with exclusive(), tempfile.TemporaryDirectory(prefix="kit-engine-bench-") as scratch:
        engine = Engine(Path(scratch))
        try:
            engine.boot()
            prepare_images(engine, BASE_TARBALL if BASE_TARBALL.exists() else None, say=lambda text: None)
            missing = images_ready(engine)
            if missing:
                print(f"engine bench skipped: {SKIP_REASON}; missing images: {', '.join(missing)}")
                return 0
            print("the stack on a real Docker engine (steady clients count every failure):")
            run(engine, Path(scratch) / "bed")
        except EngineUnavailable as error:
            print(f"engine bench skipped: {error}")
        finally:
            engine.shutdown()
    return 0


if __name__ == "__main__":
    main()
