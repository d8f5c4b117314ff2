"""Pure builders of the remote commands the deploy runs on the VM: each returns an argv list.

Nothing here does I/O; `infra/remote/ssh.py` runs what these return and quotes it in one place.
Tests assert the exact lists, so a change of any flag is a visible, reviewed change.
Values always travel as separate arguments, never spliced into shell text: where a shell is needed
(an atomic symlink switch), the script is a constant and the values are its positional parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from infra import layout
from infra.remote.vm import Vm

COMPOSE_FILE = "docker-compose.yml"
FETCH_SECRETS = "fetch-secrets.sh"
MANIFEST_FILE = ".manifest.json"  # written last into a release directory: its presence marks the release complete

# `ln -sfn` then `mv -T` over the link: rename(2) is atomic, so readers see the old or the new
# target, never a missing link.
SWITCH_LINK_SCRIPT = 'ln -sfn -- "$1" "$2.next" && mv -T -- "$2.next" "$2"'


@dataclass(frozen=True)
class VmEndpoints:
    """Loopback URLs on the VM that the deploy probes with curl after `compose up`."""

    # Inngest publishes 8288 on 127.0.0.1 only; `/health` answers 200 once the server is up.
    inngest_health: str = f"http://127.0.0.1:{layout.INNGEST_PORT}/health"
    # Caddy's loopback-only listener proxies this to the app's serve endpoint; a PUT makes the
    # app register its functions with Inngest, which `inngest start` does not re-poll (inngest/inngest#3791).
    app_sync: str = "http://127.0.0.1:8290/api/inngest"


def compose(vm: Vm, *args: str) -> list[str]:
    """`docker compose` on the live release, addressed through the `current` link.

    The project directory is the link itself, not the release it points to, so relative paths in
    the compose file resolve to the same strings in every release and compose recreates only the
    services whose own configuration changed.
    """
    current = vm.paths.current
    return [*vm.tools.docker, "compose", "-p", vm.compose_project, "-f", f"{current}/{COMPOSE_FILE}", "--project-directory", current, *args]


def compose_up(vm: Vm) -> list[str]:
    return compose(vm, "up", "-d", "--remove-orphans")


def compose_recreate(vm: Vm, services: Iterable[str]) -> list[str]:
    """Recreate services whose change compose cannot see (a bind-mounted file such as the Caddyfile).

    Recreating, rather than `restart`, makes the container mount the file again through the new
    `current` link whatever the engine resolved when it first created the container.
    """
    return compose(vm, "up", "-d", "--no-deps", "--force-recreate", *_services(services))


def compose_restart(vm: Vm, services: Iterable[str]) -> list[str]:
    return compose(vm, "restart", *_services(services))


def compose_ps(vm: Vm) -> list[str]:
    # --all: a container that exited must show up as exited, not vanish from the health picture.
    return compose(vm, "ps", "--all", "--format", "json")


def compose_logs(vm: Vm, services: Iterable[str], *, lines: int = 20) -> list[str]:
    """The last lines each service wrote, for a deploy error to show the service's own words."""
    return compose(vm, "logs", "--no-color", f"--tail={lines}", *_services(services))


# "<release id> <service> ...": the services a deploy switched to that release must still recreate.
# Written before the switch, removed once they are recreated, so a rerun after an interruption knows
# what is left to do, and a rerun after a complete deploy knows there is nothing.
PENDING_RECREATE_FILE = "pending-recreate"
WRITE_FILE_SCRIPT = 'cat > "$1.new" && mv -f -- "$1.new" "$1"'


def pending_recreate_path(vm: Vm) -> str:
    return f"{vm.paths.data}/{PENDING_RECREATE_FILE}"


def write_pending_recreate(vm: Vm) -> list[str]:
    """Send the line as stdin (the data directory belongs to root)."""
    return [*vm.tools.sudo, "sh", "-c", WRITE_FILE_SCRIPT, "write-pending", pending_recreate_path(vm)]


def read_pending_recreate(vm: Vm) -> list[str]:
    return ["cat", "--", pending_recreate_path(vm)]


def clear_pending_recreate(vm: Vm) -> list[str]:
    return [*vm.tools.sudo, "rm", "-f", "--", pending_recreate_path(vm)]


def compose_down(vm: Vm) -> list[str]:
    # No --volumes: named volumes hold state the next `up` needs.
    return compose(vm, "down", "--remove-orphans")


def read_manifest(vm: Vm, release_dir: str) -> list[str]:
    """Print a release's manifest; fails (non-zero) when the release is missing or incomplete."""
    return ["cat", "--", f"{release_dir}/{MANIFEST_FILE}"]


def remove_tree(vm: Vm, path: str) -> list[str]:
    return [*vm.tools.sudo, "rm", "-rf", "--", path]


# One round trip to make a release directory ready for uploads (each round trip costs a lot through
# IAP). A directory whose manifest has the expected hash AND whose every file has the hash the manifest
# gives (the checklist on stdin, `sha256sum -c` format) is complete and left alone; anything else there
# is the debris of an interrupted run, or of a copy that a full disk cut short, and is rebuilt. `set -e`:
# a failed copy fails the whole step with the tool's own words, instead of a "prepared" release with
# empty files. The directory belongs to the SSH user, who uploads over SFTP, which cannot use sudo.
# Unchanged files are copied, not hard linked, so an edit made in place to one release cannot leak
# into another.
PREPARE_RELEASE_SCRIPT = """\
set -eu
release=$1 owner=$2 manifest_sha256=$3 source=$4
shift 4
checklist=$(cat)
if [ -f "$release/.manifest.json" ] && [ "$(sha256sum < "$release/.manifest.json")" = "$manifest_sha256  -" ] \\
  && (cd "$release" && printf '%s\\n' "$checklist" | sha256sum --quiet --strict -c -) >/dev/null 2>&1; then
  echo complete
  exit 0
fi
rm -rf -- "$release"
install -d -o "$owner" -- "$release"
if [ -n "$source" ]; then
  cp -a -- "$source/." "$release/"
  rm -f -- "$release/.manifest.json"
fi
for dir in "$@"; do
  install -d -o "$owner" -- "$release/$dir"
done
echo prepared
"""


def release_checklist(manifest: Mapping[str, str]) -> bytes:
    """The manifest as `sha256sum -c` input: what prepare_release and verify_release read on stdin."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(manifest.items())).encode()


def prepare_release(vm: Vm, release_id: str, *, owner: str, manifest_sha256: str, copy_from: str | None, subdirs: Iterable[str]) -> list[str]:
    """Make `releases/<id>` ready: prints `complete` (nothing to upload) or `prepared` (upload into it).

    Send `release_checklist(manifest)` as stdin. `copy_from` is the live release to copy unchanged
    files from (None on a first deploy); `subdirs` are the directories the uploads need.
    """
    return [*vm.tools.sudo, "sh", "-c", PREPARE_RELEASE_SCRIPT, "prepare-release", vm.paths.release(release_id), owner, manifest_sha256, copy_from or "", *subdirs]


# Checks every file of a release against the checklist on stdin before its manifest is written: a
# release is never marked complete with a file that a full disk left short. Prints the files that
# differ (sha256sum's own words) and exits non-zero.
VERIFY_RELEASE_SCRIPT = 'cd -- "$1" && sha256sum --quiet --strict -c -'


def verify_release(vm: Vm, release_id: str) -> list[str]:
    """Send `release_checklist(manifest)` as stdin."""
    return ["sh", "-c", VERIFY_RELEASE_SCRIPT, "verify-release", vm.paths.release(release_id)]


def remove_files(vm: Vm, release_id: str, paths: Iterable[str]) -> list[str]:
    release = vm.paths.release(release_id)
    return [*vm.tools.sudo, "rm", "-f", "--", *(f"{release}/{path}" for path in paths)]


def switch_link(vm: Vm, target: str, link: str) -> list[str]:
    return [*vm.tools.sudo, "sh", "-c", SWITCH_LINK_SCRIPT, "switch-link", target, link]


# Run as root before `current` moves: find the images not on the VM yet (those present are left
# alone, as `compose up` would with pull_policy "missing", so a registry that is down does not block a
# deploy that needs nothing from it); if any, log in through the release's registry-login.sh (releases
# rendered before it existed have none) and pull them, with Docker's config in the tmpfs.
# The last line of stderr names the image that failed. Image references hold no blanks.
PULL_IMAGES_SCRIPT = """\
release=$1 docker_config=$2 docker=$3
shift 3
missing=""
for image; do
  "$docker" image inspect --format '{{.Id}}' "$image" >/dev/null 2>&1 || missing="$missing $image"
done
[ -n "$missing" ] || exit 0
if [ -x "$release/registry-login.sh" ]; then
  "$release/registry-login.sh" >/dev/null || exit 4
fi
DOCKER_CONFIG=$docker_config
export DOCKER_CONFIG
for image in $missing; do
  if ! "$docker" pull --quiet "$image" >/dev/null; then
    echo "cannot pull image: $image" >&2
    exit 3
  fi
done
"""
PULL_FAILED = "cannot pull image: "
REGISTRY_LOGIN_FAILED_STATUS = 4


def pull_images(vm: Vm, release_dir: str, images: Iterable[str]) -> list[str]:
    """Pull `images` for the release in `release_dir` (see PULL_IMAGES_SCRIPT). The script already runs
    under sudo, so it calls the docker program itself, without the sudo of `vm.tools.docker`."""
    return [*vm.tools.sudo, "sh", "-c", PULL_IMAGES_SCRIPT, "pull-images", release_dir, vm.paths.docker_config, vm.tools.docker[-1], *images]


def fetch_secrets(vm: Vm) -> list[str]:
    """Run the live release's fetch-secrets.sh as root: it writes secret values into the tmpfs."""
    return [*vm.tools.sudo, f"{vm.paths.current}/{FETCH_SECRETS}"]


def probe(vm: Vm, url: str, *, max_seconds: int = 5) -> list[str]:
    return [*vm.tools.curl, "--fail", "--silent", "--show-error", "--max-time", str(max_seconds), "--output", "/dev/null", url]


def sync_app(vm: Vm, url: str, *, max_seconds: int = 30) -> list[str]:
    return [*vm.tools.curl, "--fail", "--silent", "--show-error", "--max-time", str(max_seconds), "--request", "PUT", "--output", "/dev/null", url]


def _services(services: Iterable[str]) -> list[str]:
    names = list(services)
    if not names:
        # With no names compose acts on every service: never what a targeted restart means.
        raise ValueError("name at least one service")
    return names
