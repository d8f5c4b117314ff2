"""`status`: gather the VM's state over ONE session, then render it (the rendering is pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from infra.ops import commands
from infra.ops.parse import (
    ContainerState,
    HealthCheck,
    Release,
    UnexpectedOutput,
    parse_compose_ps,
    parse_enddate,
    parse_http_probe,
    parse_live_release,
)
from infra.remote.ssh import Session
from infra.remote.vm import Vm


@dataclass(frozen=True)
class KeyAge:
    """One key's live Secret Manager version and its age (filled by the keys module, when present)."""

    name: str
    version: str
    created: datetime


@dataclass(frozen=True)
class Certificate:
    domain: str
    expires: datetime | None
    problem: str = ""


@dataclass(frozen=True)
class StatusReport:
    vm_name: str
    vm_state: str
    containers: list[ContainerState] | None
    containers_problem: str
    inngest: HealthCheck
    release: Release | None
    release_problem: str
    certificate: Certificate | None
    keys: list[KeyAge] | None
    keys_problem: str = "not available"

    @property
    def ok(self) -> bool:
        return (
            self.vm_state == "RUNNING"
            and bool(self.containers)
            and all(container.ok for container in self.containers)
            and self.inngest.ok
            and self.release is not None
        )


def gather_status(session: Session, vm: Vm, *, vm_name: str, vm_state: str, domain: str | None, keys: list[KeyAge] | str, inngest_url: str = commands.INNGEST_HEALTH_URL) -> StatusReport:
    """Runs the read-only status commands over one session; a failing part is reported, not raised."""
    containers, containers_problem = None, ""
    ps = session.run(commands.container_states(vm), check=False)
    if ps.exit_status == 0:
        try:
            containers = parse_compose_ps(ps.stdout)
        except UnexpectedOutput as exc:
            containers_problem = str(exc)
    else:
        containers_problem = f"docker compose ps failed: {_last_line(ps.stderr, ps.exit_status)}"

    probe = session.run(commands.inngest_health(vm, inngest_url), check=False)
    inngest = parse_http_probe(probe.exit_status, probe.stdout, probe.stderr)

    release, release_problem = None, ""
    live = session.run(commands.live_release(vm), check=False)
    if live.exit_status == commands.NO_RELEASE_STATUS:
        release_problem = "no release deployed yet"
    elif live.exit_status != 0:
        release_problem = f"cannot read the current release: {_last_line(live.stderr, live.exit_status)}"
    else:
        try:
            release = parse_live_release(live.stdout)
        except UnexpectedOutput as exc:
            release_problem = str(exc)

    certificate = _certificate(session, vm, domain) if domain else None
    key_list, keys_problem = (None, keys) if isinstance(keys, str) else (keys, "")
    return StatusReport(vm_name, vm_state, containers, containers_problem, inngest, release, release_problem, certificate, key_list, keys_problem)


def _certificate(session: Session, vm: Vm, domain: str) -> Certificate:
    found = session.run(commands.find_certificates(vm, domain), check=False)
    files = [line for line in found.stdout.splitlines() if line.strip()]
    if not files:
        return Certificate(domain, None, "no certificate yet (Caddy obtains one at the first HTTPS request)")
    expiries = []
    for certificate_file in files:
        result = session.run(commands.certificate_expiry(vm, certificate_file), check=False)
        if result.exit_status == 0:
            try:
                expiries.append(parse_enddate(result.stdout))
            except UnexpectedOutput:
                continue
    if not expiries:
        return Certificate(domain, None, "the certificate files could not be read")
    return Certificate(domain, max(expiries))


def _last_line(stderr: str, exit_status: int) -> str:
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {exit_status}"


def _utc(moment: datetime) -> datetime:
    # Secret Manager times may arrive naive; they are UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _age(now: datetime, then: datetime) -> str:
    seconds = int((now - _utc(then)).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def render_text(report: StatusReport, now: datetime) -> str:
    rows = [("VM", f"{report.vm_name}: {report.vm_state}")]
    if report.containers is None:
        rows.append(("containers", report.containers_problem))
    elif not report.containers:
        rows.append(("containers", "none (the stack is not up)"))
    else:
        width = max(len(container.service) for container in report.containers)
        for index, container in enumerate(report.containers):
            health = f"  {container.health}" if container.health else ""
            rows.append(("containers" if index == 0 else "", f"{container.service.ljust(width)}  {container.state}{health}"))
    rows.append(("inngest", f"/health {report.inngest.detail}"))
    if report.release:
        rows.append(("release", f"{report.release.release_id} (live since {_when(report.release.deployed_at)}, {_age(now, report.release.deployed_at)})"))
    else:
        rows.append(("release", report.release_problem))
    if report.certificate is None:
        rows.append(("TLS", "unknown: the stack has no url output"))
    elif report.certificate.expires is None:
        rows.append(("TLS", f"{report.certificate.domain}: {report.certificate.problem}"))
    else:
        days = (report.certificate.expires - now).days
        rows.append(("TLS", f"{report.certificate.domain} expires {_when(report.certificate.expires)} (in {days} days)"))
    if report.keys is None:
        rows.append(("keys", report.keys_problem or "not available"))
    else:
        for index, key in enumerate(report.keys):
            rows.append(("keys" if index == 0 else "", f"{key.name} version {key.version}, created {_age(now, key.created)}"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}".rstrip() for label, value in rows) + "\n"


def to_json(report: StatusReport, now: datetime) -> dict[str, Any]:
    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "ok": report.ok,
        "vm": {"name": report.vm_name, "state": report.vm_state},
        "containers": None if report.containers is None else [asdict(container) | {"ok": container.ok} for container in report.containers],
        "containers_problem": report.containers_problem or None,
        "inngest": {"ok": report.inngest.ok, "detail": report.inngest.detail},
        "release": None
        if report.release is None
        else {"id": report.release.release_id, "path": report.release.path, "deployed_at": moment(report.release.deployed_at), "age_seconds": int((now - report.release.deployed_at).total_seconds())},
        "release_problem": report.release_problem or None,
        "certificate": None
        if report.certificate is None
        else {
            "domain": report.certificate.domain,
            "expires": moment(report.certificate.expires),
            "days_left": (report.certificate.expires - now).days if report.certificate.expires else None,
            "problem": report.certificate.problem or None,
        },
        "keys": None
        if report.keys is None
        else [{"name": key.name, "version": key.version, "created": moment(_utc(key.created)), "age_seconds": int((now - _utc(key.created)).total_seconds())} for key in report.keys],
        "keys_problem": report.keys_problem or None,
    }
