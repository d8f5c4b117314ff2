"""A real Docker engine as the VM's engine, for the engine tests and `make bench`.

The bed is one "machine" made of Linux namespaces on this host:
- a PID and mount namespace is the VM. Inside it, a private tmpfs on /run (so the secrets tmpfs,
  dockerd's runtime state and its socket vanish with it, as at a power loss), and the VM's data disk:
  a directory of this test session bind-mounted on /srv/kit, so the absolute paths the rendered
  compose file mounts (/srv/kit/current/Caddyfile, /run/inngest-kit/secrets/app) are the real ones,
  and nothing outside the namespace sees or collides with them;
- Debian's dockerd (20.10) runs in it, with its data root under ENGINE_HOME (images are built
  once per machine and kept there), and a second API socket in the session directory for the test
  side's own `docker` calls;
- an sshd runs in it too: the deploy and the keys CLI reach the engine through infra/remote/ssh.py,
  the layer production uses.
- Network: the host's. Published ports (80, 443, 127.0.0.1:8288, 127.0.0.1:8290) are the real ones,
  and container egress to the uplink is dropped (`DOCKER-USER`), so nothing leaves the machine.

`power_loss()` kills the namespace's every process at once (dockerd, containerd, shims, containers,
sshd) and drops its mounts: the tmpfs with the secrets is gone; `boot()` starts a new one on the same
data disk and data root.

Images: on a machine that reaches Docker Hub (KIT_ENGINE_IMAGES=registry, or `auto` and the
registry answers), the real images the rendered compose file names are pulled. Otherwise
(`local`) they are built here under the same tags from a `debootstrap` base (tests/engine/images):
the real caddy and redis-server binaries, and for inngest/inngest a STAND-IN that follows Inngest's
protocol (tests/engine/images/inngest-standin/inngest.js). The test app is always built here.

`python -m tests.support.engine prepare` (run by tests/setup/install.sh) builds what is missing.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infra.config import InngestConfig  # noqa: E402
from infra.render import CADDY_IMAGE, REDIS_IMAGE  # noqa: E402
from infra.startup import DAEMON_CONFIG  # noqa: E402
from tests.support.sshd import SSHD_BINARY, generate_ed25519, sshd_config_text  # noqa: E402

ENGINE_HOME = Path(os.environ.get("KIT_ENGINE_HOME", "/var/lib/inngest-kit-engine"))
IMAGES_DIR = REPO / "tests" / "engine" / "images"
NODE_DIR = REPO / "tests" / "node"
DOCKERD = Path("/usr/sbin/dockerd")
COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
BASE_IMAGE = "kit-test-base:bookworm"
BASE_TARBALL = ENGINE_HOME / "base-bookworm.tar"  # `debootstrap --variant=minbase` rootfs, written by tests/setup/install.sh
INNGEST_IMAGE = InngestConfig().image
APP_IMAGE = "kit-test/app:1"
APP_IMAGE_NEXT = "kit-test/app:2"  # the same app with another label: an "app image change"
CONTEXT_LABEL = "kit.test.context"  # sha256 of a local image's build inputs: rebuilt only when they change
SKIP_REASON = "no Docker engine test bed on this machine (needs root, docker.io, compose v2 and the test images): run `sudo make test-deps`"

# The VM's boot, as PID 1's child in the new namespaces: private /run, the data disk on /srv/kit,
# then dockerd and sshd. `wait` keeps the namespace alive until it is killed.
# With HOLD=1, dockerd waits for the file `dockerd.go`: what systemd orders before docker.service runs first.
BOOT_SCRIPT = """set -eu
disk=$1 state=$2 sshd_config=$3 data_root=$4 hold=$5
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/sshd /run/lock
mount -t tmpfs -o mode=0755 tmpfs /srv
mkdir -p /srv/kit
mount --bind "$disk" /srv/kit
/usr/sbin/sshd -D -e -f "$sshd_config" >>"$state/sshd.log" 2>&1 &
if [ "$hold" = 1 ]; then
  while [ ! -e "$state/dockerd.go" ]; do sleep 0.05; done
fi
dockerd --config-file "$state/daemon.json" --data-root "$data_root" -H unix:///run/docker.sock -H "unix://$state/docker.sock" \
  --pidfile /run/docker.pid >>"$state/dockerd.log" 2>&1 &
wait
"""


class EngineUnavailable(Exception):
    """The bed cannot run here; the message says why and what enables it."""


def missing_prerequisites() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (dockerd and namespaces need root)")
    for path in (DOCKERD, COMPOSE_PLUGIN, SSHD_BINARY):
        if not path.exists():
            problems.append(f"{path} is missing")
    if shutil.which("docker") is None:
        problems.append("the docker CLI is missing")
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        problems.append("unshare/nsenter (util-linux) are missing")
    return problems


def uplink_interface() -> str | None:
    """The interface of the default route: container traffic to it is dropped."""
    out = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True, check=False).stdout.split()
    return out[out.index("dev") + 1] if "dev" in out else None


@dataclass(frozen=True)
class SshLogin:
    port: int
    user: str
    client_private_key: str
    host_public_key: str


class Engine:
    """One VM-like namespace with dockerd and sshd. Not thread-safe; one per test session."""

    def __init__(self, session_dir: Path, *, home: Path = ENGINE_HOME):
        self.home = home
        self.session_dir = session_dir
        self.state = session_dir / "state"
        self.disk = session_dir / "disk"  # the VM's /srv/kit
        self.data_root = home / "docker"
        self.process: subprocess.Popen | None = None
        self.boots = 0
        self._login: SshLogin | None = None

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def socket(self) -> Path:
        return self.state / "docker.sock"

    def boot(self, *, before_dockerd: Callable[[], None] | None = None, timeout: float = 60.0) -> None:
        """Start the VM: its namespaces, sshd, then dockerd. Returns once both answer.

        `before_dockerd` runs inside the booted VM before dockerd starts (what systemd orders before
        docker.service); dockerd then starts with the VM's own daemon.json (infra/startup.py)."""
        problems = missing_prerequisites()
        if problems:
            raise EngineUnavailable(f"{SKIP_REASON}; here: {'; '.join(problems)}")
        self.state.mkdir(parents=True, exist_ok=True)
        self.disk.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        login = self._sshd_config()
        self.socket.unlink(missing_ok=True)
        (self.state / "dockerd.go").unlink(missing_ok=True)
        (self.state / "daemon.json").write_text(json.dumps(DAEMON_CONFIG))
        log = open(self.state / "namespace.log", "ab")
        self.process = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--mount-proc", "--kill-child",
             "tini", "-s", "--", "sh", "-c", BOOT_SCRIPT, "boot", str(self.disk), str(self.state), str(self.state / "sshd_config"), str(self.data_root), "1" if before_dockerd else "0"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        self.boots += 1
        deadline = time.monotonic() + timeout
        if before_dockerd is not None:
            while not _listening(login.port) or self.init_pid() is None:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise EngineUnavailable(f"the VM namespace did not come up: {self._tail('namespace.log')} {self._tail('sshd.log')}")
                time.sleep(0.05)
            before_dockerd()
            (self.state / "dockerd.go").touch()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineUnavailable(f"the engine namespace exited with status {self.process.returncode}: {self._tail('namespace.log')} {self._tail('dockerd.log')}")
            if self.socket.exists() and self.docker("info", "--format", "{{.ServerVersion}}", check=False).returncode == 0 and _listening(login.port):
                self._drop_egress()
                return
            time.sleep(0.1)
        raise EngineUnavailable(f"dockerd did not answer within {timeout:g} s: {self._tail('dockerd.log')}")

    def power_loss(self) -> None:
        """Everything in the VM dies at once, as when the power goes: no stop, no flush, tmpfs gone."""
        if self.process is None:
            return
        init = self.init_pid()
        if init is not None:
            os.kill(init, signal.SIGKILL)  # PID 1 of the namespace: the kernel kills every process in it
        self.process.kill()
        self.process.wait(timeout=30)
        self.process = None
        # Wait for the kernel to reap the namespace: dockerd's data root must be free before the next boot.
        for _ in range(200):
            if not self._data_root_busy():
                break
            time.sleep(0.05)

    def shutdown(self) -> None:
        """End of the session: remove the bed's containers (so the next boot restarts none), then power off."""
        if self.process is None:
            return
        ids = self.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.docker("rm", "-f", *ids, check=False, timeout=120)
        self.power_loss()

    def init_pid(self) -> int | None:
        """Host PID of the namespace's PID 1 (tini)."""
        if self.process is None:
            return None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def in_vm(self, argv: list[str], *, check: bool = True, timeout: float = 300.0, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run a command inside the VM (its mounts and processes), as the VM's own boot would."""
        init = self.init_pid()
        if init is None:
            raise RuntimeError("the engine is not running")
        completed = subprocess.run(["nsenter", "-t", str(init), "-m", "-p", "--", *argv], capture_output=True, text=True, timeout=timeout, check=False, env=env)
        if check and completed.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:4])} failed ({completed.returncode}): {completed.stderr[-2000:]}")
        return completed

    def stop_dockerd_hard(self) -> None:
        """SIGKILL dockerd alone (containerd, shims and containers keep running)."""
        pid = self.in_vm(["cat", "/run/docker.pid"]).stdout.strip()
        self.in_vm(["kill", "-9", pid])

    # --- the test side's view ---------------------------------------------------------------

    def docker(self, *args: str, check: bool = True, timeout: float = 300.0, env: dict | None = None) -> subprocess.CompletedProcess:
        environment = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "0", **(env or {})}
        completed = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, env=environment)
        if check and completed.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])} failed ({completed.returncode}): {completed.stderr[-2000:]}")
        return completed

    def api_version(self) -> tuple[int, int]:
        text = self.docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip()
        major, minor = text.split(".")[:2]
        return int(major), int(minor)

    def containers(self, project: str = "kit") -> dict[str, dict]:
        """service -> {id, created, started, restarts, status, health} of the project's containers."""
        ids = self.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
        if not ids:
            return {}
        result = {}
        for item in json.loads(self.docker("inspect", *ids).stdout):
            service = item["Config"]["Labels"].get("com.docker.compose.service", item["Name"])
            state = item["State"]
            result[service] = {
                "id": item["Id"],
                "created": item["Created"],
                "started": state.get("StartedAt"),
                "restarts": item.get("RestartCount", 0),
                "status": state.get("Status"),
                "health": (state.get("Health") or {}).get("Status", ""),
                "policy": item["HostConfig"]["RestartPolicy"]["Name"],
            }
        return result

    def logs(self, container: str, tail: int = 40) -> str:
        completed = self.docker("logs", "--tail", str(tail), container, check=False)
        return completed.stdout + completed.stderr

    def login(self) -> SshLogin:
        if self._login is None:
            raise RuntimeError("boot the engine first")
        return self._login

    # --- internals ----------------------------------------------------------------------------

    def _sshd_config(self) -> SshLogin:
        if self._login is not None:
            return self._login
        host_key = generate_ed25519("engine-vm-host")
        client_key = generate_ed25519("engine-vm-client")
        (self.state / "host_ed25519").write_text(host_key.private_openssh)
        (self.state / "host_ed25519").chmod(0o600)
        (self.state / "authorized_keys").write_text(client_key.public_line + "\n")
        port = _free_port()
        (self.state / "sshd_config").write_text(
            sshd_config_text(port, self.state / "host_ed25519", self.state / "sshd.pid", self.state / "authorized_keys", "root")
        )
        self._login = SshLogin(port, "root", client_key.private_openssh, host_key.public_line)
        return self._login

    def _drop_egress(self) -> None:
        uplink = uplink_interface()
        if uplink is None:
            return
        rule = ["DOCKER-USER", "-o", uplink, "-j", "DROP"]
        if subprocess.run(["iptables", "-C", *rule], capture_output=True, check=False).returncode != 0:
            subprocess.run(["iptables", "-I", *rule], capture_output=True, check=True)

    def _data_root_busy(self) -> bool:
        return any(_mounted_below(self.data_root))

    def _tail(self, name: str) -> str:
        path = self.state / name
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""


def _mounted_below(path: Path):
    prefix = str(path)
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 4 and fields[4].startswith(prefix):
                yield fields[4]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def exclusive(home: Path = ENGINE_HOME, *, timeout: float = 900.0):
    """One bed per machine at a time: dockerd's data root and the published ports are shared."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "lock", "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EngineUnavailable(f"another test session holds the engine bed ({home / 'lock'}) for over {timeout:g} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- images ---------------------------------------------------------------------------------------


def _context_hash(paths: list[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _image_label(engine: Engine, tag: str) -> str | None:
    completed = engine.docker("image", "inspect", "--format", "{{ index .Config.Labels \"" + CONTEXT_LABEL + "\" }}", tag, check=False)
    return completed.stdout.strip() if completed.returncode == 0 else None


def _build(engine: Engine, tag: str, context: Path, digest: str) -> None:
    engine.docker("build", "--quiet", "--label", f"{CONTEXT_LABEL}={digest}", "-t", tag, str(context), timeout=900)


NODE_MODULES_UNUSED = shutil.ignore_patterns("*.map", "*.d.ts", "*.d.cts", "*.d.mts", "*.md")


def _local_builds() -> dict[str, tuple[str, list[Path], dict[str, Path]]]:
    """tag -> (image directory, files hashed, extra files copied into the context)."""
    node = Path(shutil.which("node") or "/usr/bin/node").resolve()
    caddy = Path(sys.executable).parent / "caddy"
    return {
        CADDY_IMAGE: ("caddy", [IMAGES_DIR / "caddy" / "Dockerfile", caddy.resolve()], {"caddy": caddy.resolve()}),
        REDIS_IMAGE: ("redis", [IMAGES_DIR / "redis" / "Dockerfile", IMAGES_DIR / "redis" / "docker-entrypoint.sh"], {}),
        INNGEST_IMAGE: ("inngest-standin", [IMAGES_DIR / "inngest-standin" / "Dockerfile", IMAGES_DIR / "inngest-standin" / "inngest.js", node], {"node": node}),
        APP_IMAGE: ("app", [IMAGES_DIR / "app" / "Dockerfile", IMAGES_DIR / "app" / "server.js", NODE_DIR / "package-lock.json", node], {"node": node, "node_modules": NODE_DIR / "node_modules"}),
    }


def registry_reachable() -> bool:
    mode = os.environ.get("KIT_ENGINE_IMAGES", "auto")
    if mode in ("local", "registry"):
        return mode == "registry"
    try:
        with socket.create_connection(("registry-1.docker.io", 443), timeout=3):
            return True
    except OSError:
        return False


def uses_standin(engine: Engine) -> bool:
    """Whether inngest/inngest here is the local stand-in (its counters can be read) or the real image."""
    completed = engine.docker("image", "inspect", "--format", "{{ index .Config.Labels \"" + CONTEXT_LABEL + "\" }}", INNGEST_IMAGE, check=False)
    return completed.returncode == 0 and completed.stdout.strip() not in ("", "<no value>")


def prepare_images(engine: Engine, base_tarball: Path | None, *, say=print) -> None:
    """Make every image the bed needs present under its tag; builds only what is missing or stale."""
    pull = registry_reachable()
    builds = _local_builds()
    if pull:
        for tag in (CADDY_IMAGE, REDIS_IMAGE, INNGEST_IMAGE):
            if engine.docker("image", "inspect", tag, check=False).returncode != 0:
                say(f"engine: pulling {tag}")
                engine.docker("pull", "--quiet", tag, timeout=900)
            builds.pop(tag)
    if engine.docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        if base_tarball is None or not base_tarball.exists():
            raise EngineUnavailable(f"{BASE_IMAGE} is missing and no debootstrap tarball was given: run `sudo make test-deps`")
        say(f"engine: importing {BASE_IMAGE}")
        with open(base_tarball, "rb") as tarball:
            subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tarball, capture_output=True, check=True, env={**os.environ, "DOCKER_HOST": f"unix://{engine.socket}"})
    base_id = engine.docker("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE).stdout.strip()
    for tag, (directory, hashed, extras) in builds.items():
        digest = _context_hash(hashed, extra=base_id + "|node_modules without maps, types and docs")
        if _image_label(engine, tag) == digest:
            continue
        say(f"engine: building {tag}")
        with tempfile.TemporaryDirectory(prefix="kit-image-") as scratch:
            context = Path(scratch)
            for path in (IMAGES_DIR / directory).iterdir():
                shutil.copy2(path, context / path.name)
            for name, source in extras.items():
                if source.is_dir():
                    # Source maps, type declarations and docs are most of node_modules and never run.
                    shutil.copytree(source, context / name, symlinks=True, ignore=NODE_MODULES_UNUSED)
                else:
                    shutil.copy2(source, context / name)
            _build(engine, tag, context, digest)
    app_digest = _image_label(engine, APP_IMAGE) or ""
    if _image_label(engine, APP_IMAGE_NEXT) != app_digest + "-next":
        say(f"engine: building {APP_IMAGE_NEXT}")
        with tempfile.TemporaryDirectory(prefix="kit-image-") as scratch:
            (Path(scratch) / "Dockerfile").write_text(f"FROM {APP_IMAGE}\nENV APP_LABEL=2\n")
            _build(engine, APP_IMAGE_NEXT, Path(scratch), app_digest + "-next")


def images_ready(engine: Engine) -> list[str]:
    """Tags the bed needs that the engine does not have."""
    tags = [CADDY_IMAGE, REDIS_IMAGE, INNGEST_IMAGE, APP_IMAGE, APP_IMAGE_NEXT]
    return [tag for tag in tags if engine.docker("image", "inspect", tag, check=False).returncode != 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.engine", description="Prepare the Docker engine test bed.")
    parser.add_argument("command", choices=["prepare"])
    parser.add_argument("--base-tarball", type=Path, default=BASE_TARBALL, help="a debootstrap rootfs tarball to import as the base image")
    args = parser.parse_args(argv)
    with exclusive(), tempfile.TemporaryDirectory(prefix="kit-engine-prepare-") as scratch:
        engine = Engine(Path(scratch))
        engine.boot()
        try:
            prepare_images(engine, args.base_tarball)
            missing = images_ready(engine)
            if missing:
                print(f"engine: still missing {', '.join(missing)}", file=sys.stderr)
                return 1
        finally:
            engine.shutdown()
    print("engine: images ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
