"""Pure builders of the remote commands the operator commands run on the VM; each returns an argv list.

Nothing here does I/O. Where a shell is unavoidable the script is a constant and every value is a
positional parameter, so no value is ever spliced into shell text.
"""

from __future__ import annotations

from infra import layout
from infra.remote.commands import compose, compose_ps
from infra.remote.vm import Vm

INNGEST_HEALTH_URL = f"http://127.0.0.1:{layout.INNGEST_PORT}/health"
# Where Caddy keeps certificates below its data directory (mounted at /data, XDG data home /data/caddy):
# caddy/certificates/<issuer>/<domain>/<domain>.crt; the issuer directory depends on the CA that answered.
CADDY_CERTIFICATES = "caddy/certificates"
# Prints the link's target, then its own mtime (the link is replaced at each deploy, so that is when
# the release went live). Exit 3 says "no release yet", distinct from any other failure.
RELEASE_SCRIPT = '[ -L "$1" ] || exit 3; readlink -- "$1" && stat -c %Y -- "$1"'
NO_RELEASE_STATUS = 3


def container_states(vm: Vm) -> list[str]:
    # The deploy's own `ps` (--all: an exited container shows as exited), so both read the same picture.
    return compose_ps(vm)


def container_logs(vm: Vm, service: str | None = None, *, lines: int = 100, since: str | None = None, follow: bool = False) -> list[str]:
    # `--opt=value` so no value can be mistaken for a service name.
    argv = compose(vm, "logs", "--no-color", f"--tail={lines}")
    if since:
        argv.append(f"--since={since}")
    if follow:
        argv.append("--follow")
    if service:
        argv.append(service)
    return argv


def inngest_health(vm: Vm, url: str = INNGEST_HEALTH_URL, *, max_seconds: int = 5) -> list[str]:
    """Prints the HTTP status code; exits non-zero only when nothing answered."""
    return [*vm.tools.curl, "--silent", "--show-error", "--max-time", str(max_seconds), "--output", "/dev/null", "--write-out", "%{http_code}", url]


def live_release(vm: Vm) -> list[str]:
    return ["sh", "-c", RELEASE_SCRIPT, "live-release", vm.paths.current]


def caddy_data_dir(vm: Vm) -> str:
    return f"{vm.paths.root}{layout.CADDY_DATA_DIR}"


def find_certificates(vm: Vm, domain: str) -> list[str]:
    """Lists the certificate files Caddy holds for the domain (one per issuer it has used)."""
    # Caddy's data directory is written by root inside the container.
    return [*vm.tools.sudo, "find", f"{caddy_data_dir(vm)}/{CADDY_CERTIFICATES}", "-type", "f", "-name", f"{domain}.crt"]


def certificate_expiry(vm: Vm, certificate_file: str) -> list[str]:
    return [*vm.tools.sudo, "openssl", "x509", "-enddate", "-noout", "-in", certificate_file]


def audit_tail(vm: Vm, *, lines: int = 50) -> list[str]:
    return [*vm.tools.sudo, "tail", "-n", str(lines), "--", vm.paths.audit_log]


def audit_append(vm: Vm) -> list[str]:
    """Appends stdin to the audit log (send one JSON line from `infra.ops.audit.entry` as stdin)."""
    return [*vm.tools.sudo, "tee", "-a", "--", vm.paths.audit_log]
