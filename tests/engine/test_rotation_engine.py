"""Key rotations by the keys CLI on the engine, with both streams running: not one call or event may fail."""

from __future__ import annotations

import time

from tests.support.engine_checks import Traffic, wait_for_queue_drained


def rotate_under_traffic(bed, *argv: str) -> Traffic:
    time.sleep(1)
    before = Traffic.read(bed.standin())
    assert bed.keys(*argv) == 0, bed.stdout.getvalue()[-3000:]
    time.sleep(2)  # the pump restarts with the app (PUMP_MS): its events keep flowing throughout
    return Traffic.read(wait_for_queue_drained(bed)).since(before)


def test_signing_key_rotation_fails_no_signed_call(bed):
    moved = rotate_under_traffic(bed, "rotate", "signing", "--stack", "dev", "--yes", "--grace", "5s", "--reason", "engine test")
    assert moved.calls_ok > 0 and moved.calls_failed == 0, moved
    # No event is refused for its key. (Events sent while the server restarts, beyond the SDK's own
    # retries, are lost whatever the keys: `make bench` counts them.)
    assert moved.events_rejected == 0, moved
    argv = bed.standin()["argv"]
    assert argv.count("--signing-key") == 1


def test_event_key_rotation_rejects_no_event(bed):
    """Every event reaching the server carries a key it accepts, throughout. (Events sent while the server
    restarts, beyond the SDK's own retries, are lost whatever the keys: `make bench` counts them.)"""
    moved = rotate_under_traffic(bed, "rotate", "event", "--stack", "dev", "--yes", "--reason", "engine test")
    assert moved.events_accepted > 0 and moved.events_rejected == 0, moved
    assert moved.calls_failed == 0, moved
    assert bed.standin()["argv"].count("--event-key") == 1  # the old key is gone from the server
