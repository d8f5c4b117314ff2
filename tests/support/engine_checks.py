"""What the engine tests and the benchmark read off the bed: container creations, the stand-in's
counters, lost events. Shared so that `make bench` reports exactly what the tests assert."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tests.support.engine import Engine


def _service_events(engine: Engine, event: str, since: float, until: float | None) -> dict[str, int]:
    """How many `event` events each compose service's containers had between two moments."""
    until = until if until is not None else time.time()
    out = engine.docker(
        "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", "type=container", "--filter", f"event={event}",
        "--filter", "label=com.docker.compose.project=kit", "--format", '{{ index .Actor.Attributes "com.docker.compose.service" }}',
    ).stdout.split()
    counts: dict[str, int] = {}
    for service in out:
        counts[service] = counts.get(service, 0) + 1
    return counts


def creations(engine: Engine, since: float, until: float | None = None) -> dict[str, int]:
    """How many containers of each compose service the engine created between two moments."""
    return _service_events(engine, "create", since, until)


def starts(engine: Engine, since: float, until: float | None = None) -> dict[str, int]:
    """How many times each service's container was started (by dockerd's restart policy or by compose) between two moments."""
    return _service_events(engine, "start", since, until)


@dataclass(frozen=True)
class Traffic:
    """The stand-in's view of both streams: events the app sent, calls it made to the app."""

    events_accepted: int
    events_rejected: int
    events_lost: int  # gaps in the app's per-boot numbering: events sent that never arrived
    calls_ok: int
    calls_failed: int  # any HTTP answer but 2xx from the app (e.g. a signature it refused)
    calls_retried: int  # the app could not be reached (restarting); the call stayed queued

    @classmethod
    def read(cls, state: dict) -> Traffic:
        counters = state["counters"]
        lost = sum(entry["max"] - entry["count"] for entry in state.get("eventSeqs", {}).values())
        return cls(counters.get("events_accepted", 0), counters.get("events_rejected", 0), lost, counters.get("calls_ok", 0), counters.get("calls_failed", 0), counters.get("calls_retried", 0))

    def since(self, before: Traffic) -> Traffic:
        return Traffic(*(getattr(self, name) - getattr(before, name) for name in self.__dataclass_fields__))

    def describe(self) -> str:
        return (
            f"events: {self.events_rejected + self.events_lost} failed / {self.events_accepted + self.events_rejected + self.events_lost} "
            f"(rejected {self.events_rejected}, lost {self.events_lost}); "
            f"signed calls: {self.calls_failed} failed / {self.calls_ok + self.calls_failed} (retried while unreachable: {self.calls_retried})"
        )


def wait_for_queue_drained(bed, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    state = bed.standin()
    while state["queued"] and time.monotonic() < deadline:
        time.sleep(0.2)
        state = bed.standin()
    return state
