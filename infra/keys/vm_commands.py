"""Pure builders of every remote command a rotation runs on the VM. Each returns an argv list."""

from __future__ import annotations

from dataclasses import dataclass

from infra import layout
from infra.keys.model import INNGEST, REDIS, VERSIONS_FILE_NAME
from infra.ops.commands import compose
from infra.remote.vm import Vm
from infra.render import REDIS_PASSWORD_FILE

FETCH_SECRETS = "fetch-secrets.sh"  # in the release directory, rendered from templates/fetch-secrets.sh.j2


@dataclass(frozen=True)
class Endpoints:
    """What the verify step calls on the VM: Inngest's health, and Caddy's loopback listener to the app."""

    inngest_health: str = f"http://127.0.0.1:{layout.INNGEST_PORT}/health"
    app_sync: str = "http://127.0.0.1:8290/api/inngest"


def versions_file(vm: Vm) -> str:
    return f"{vm.paths.data}/{VERSIONS_FILE_NAME}"


# Prints whether the versions file exists, its text, then the tail of the audit log: what a rerun
# needs to know where the last run stopped, in one round trip.
READ_STATE_SCRIPT = """set -u
if [ -e "$1" ]; then
	echo "versions-file: present"
	cat -- "$1"
else
	echo "versions-file: absent"
fi
echo "--- audit tail"
tail -n "$3" -- "$2" 2>/dev/null || true
"""
AUDIT_TAIL_LINES = 50


def read_vm_state(vm: Vm) -> list[str]:
    return [*vm.tools.sudo, "sh", "-c", READ_STATE_SCRIPT, "read-state", versions_file(vm), vm.paths.audit_log, str(AUDIT_TAIL_LINES)]


# Writes the versions file from stdin (a temporary file, then a rename: fetch-secrets.sh never sees
# half a file), fetches one service's secrets, recreates that service. One command, so one round trip
# through IAP; a constant script with every value a positional parameter.
APPLY_SCRIPT = """set -eu
file=$1 fetch=$2 service=$3
shift 3
cat >"$file.new"
mv -f "$file.new" "$file"
"$fetch" "$service"
"$@" up -d --force-recreate --no-deps "$service"
"""


# Redis is not restarted (every queue command would fail meanwhile): after fetch-secrets.sh rewrote its
# ACL file, ACL LOAD rereads it. redis-cli runs inside the Redis container and authenticates with the
# password the server uses now, accepted before and after the reload; it reaches redis-cli on stdin
# through printf, a shell builtin, so no command line holds it.
APPLY_REDIS_SCRIPT = """set -eu
file=$1 fetch=$2 password_file=$3
shift 3
cat >"$file.new"
mv -f "$file.new" "$file"
"$fetch" redis
reply=$({ printf 'AUTH default %s\\n' "$(cat "$password_file")"; echo 'ACL LOAD'; } | "$@" exec -T redis redis-cli)
if [ "$reply" != "$(printf 'OK\\nOK')" ]; then
	echo "apply-versions: Redis did not reload its ACL file: $(echo "$reply" | grep -v '^OK$' | head -n 1)" >&2
	exit 1
fi
"""


def apply_versions(vm: Vm, service: str) -> list[str]:
    """Send the new versions file as stdin. --force-recreate: the compose model is unchanged, only the
    secret files under it are new; --no-deps: restart this one service, never its neighbours."""
    compose_prefix = compose(vm)
    if service == REDIS:
        password_file = f"{vm.paths.secrets}/{INNGEST}/{REDIS_PASSWORD_FILE}"
        return [*vm.tools.sudo, "sh", "-c", APPLY_REDIS_SCRIPT, "apply-versions", versions_file(vm), f"{vm.paths.current}/{FETCH_SECRETS}", password_file, *compose_prefix]
    return [*vm.tools.sudo, "sh", "-c", APPLY_SCRIPT, "apply-versions", versions_file(vm), f"{vm.paths.current}/{FETCH_SECRETS}", service, *compose_prefix]


# One round trip per check: the services' state, Inngest's /health, and (when SYNC is not empty) an app
# sync, a PUT through Caddy's loopback listener that makes the app register with the server, signed
# with the app's key, so it succeeds only when the two agree on a signing key. The output is read by
# infra.keys.verify.parse_check.
CHECK_SCRIPT = """set -u
curl=$1 health=$2 sync=$3
shift 3
"$@" ps --all --format json 2>/dev/null || true
echo "--- health"
"$curl" -fsS --max-time 5 -o /dev/null "$health" 2>&1
echo "exit $?"
if [ -n "$sync" ]; then
	echo "--- sync"
	"$curl" -fsS --max-time 30 -o /dev/null -X PUT "$sync" 2>&1
	echo "exit $?"
fi
"""


def check_services(vm: Vm, endpoints: Endpoints, *, sync: bool) -> list[str]:
    if len(vm.tools.curl) != 1:
        raise ValueError("VmTools.curl must be one program for the service check (it needs no sudo)")
    return ["sh", "-c", CHECK_SCRIPT, "check-services", vm.tools.curl[0], endpoints.inngest_health, endpoints.app_sync if sync else "", *compose(vm)]
