"""The scripts the containers run, executed for real by /bin/sh on the files fetch-secrets.sh wrote:
the inngest entry point (against a recording stand-in for the `inngest` binary), the app's secrets
wrapper, the app's health check (with each HTTP client it may find), shellcheck on every script,
and the real redis-server with the rendered persistence flags."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from infra.render import APP_HEALTHCHECK, EXECUTABLE_FILES, render_stack
from tests.render.conftest import SQL_IP, config_with, inputs_for
from tests.render.stand_in_app import StandInApp
from tests.render.stand_ins import Recorder
from tests.render.test_fetch_secrets import (
    APP_DB_PASSWORD,
    APP_DB_PASSWORD_NEW,
    EVENT_NEW,
    EVENT_OLD,
    INNGEST_DB_PASSWORD,
    REDIS_NEW,
    REDIS_OLD,
    SIGNING_NEW,
    SIGNING_OLD,
    STRIPE,
    Vm,
)

# `inngest start` flags at v1.43.0 (inngest/inngest cmd/start/cmd.go), as listed in the team's
# DESIGN.md ("Inngest facts"); the short aliases -p and -u included.
INNGEST_START_FLAGS = frozenset(
    {
        "--config", "--host", "--port", "-p", "--sdk-url", "-u", "--signing-key", "--event-key", "--sqlite-dir",
        "--redis-uri", "--postgres-uri", "--postgres-max-idle-conns", "--postgres-max-open-conns",
        "--postgres-conn-max-idle-time", "--postgres-conn-max-lifetime", "--poll-interval", "--retry-interval",
        "--queue-workers", "--tick", "--connect-gateway-port", "--connect-gateway-grpc-port",
        "--connect-executor-grpc-port", "--connect-gateway-grpc-ip", "--connect-executor-grpc-ip", "--no-ui",
    }
)  # fmt: skip
DESIGN = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"


@pytest.fixture
def vm(tmp_path, release_dir) -> Vm:
    machine = Vm(tmp_path, release_dir)
    machine.choose("INNGEST_SIGNING_KEY_FALLBACK=previous\nINNGEST_EVENT_KEYS=current,previous\n")
    result = machine.run()
    assert result.returncode == 0, result.stderr
    return machine


def run_script(path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", str(path), *args], env=env, capture_output=True, text=True, timeout=30)


def test_inngest_starts_with_the_keys_as_flags_read_from_its_files(vm, release_dir, tmp_path):
    inngest = Recorder.install(tmp_path / "image-bin", "inngest")
    env = {"PATH": f"{inngest.path.parent}:/usr/bin:/bin", "KIT_SECRETS_DIR": str(vm.secrets / "inngest")}
    result = run_script(release_dir / "start-inngest.sh", env=env)
    assert result.returncode == 0, result.stderr
    [call] = inngest.calls()
    assert call["argv"] == [
        "start",
        "--port", "8288",
        "--signing-key", SIGNING_NEW,
        "--event-key", EVENT_NEW,
        "--event-key", EVENT_OLD,
        "--sdk-url", "http://app:3000/api/inngest",
        "--redis-uri", f"redis://default:{REDIS_NEW}@redis:6379",
        "--postgres-uri", f"postgres://inngest:{INNGEST_DB_PASSWORD}@{SQL_IP}:5432/inngest?sslmode=verify-ca&sslrootcert=/kit/server-ca.pem",
        "--postgres-max-open-conns", "10",
        "--postgres-max-idle-conns", "2",
    ]  # fmt: skip
    assert not any(SIGNING_NEW in value or EVENT_NEW in value or REDIS_NEW in value for value in call["env"].values())


def test_each_service_connects_as_the_login_role_the_versions_file_names(release_dir, tmp_path):
    machine = Vm(tmp_path, release_dir)
    machine.choose("DB_APP_LOGIN=app_b\nDB_APP_PASSWORD=2\nDB_INNGEST_LOGIN=inngest_a\n")
    assert machine.run().returncode == 0
    server = Recorder.install(tmp_path / "image-bin", "server")
    inngest = Recorder.install(tmp_path / "image-bin", "inngest")
    path = f"{server.path.parent}:/usr/bin:/bin"
    assert run_script(release_dir / "with-secrets.sh", "server", env={"PATH": path, "KIT_SECRETS_DIR": str(machine.secrets / "app")}).returncode == 0
    assert run_script(release_dir / "start-inngest.sh", env={"PATH": path, "KIT_SECRETS_DIR": str(machine.secrets / "inngest")}).returncode == 0
    tls = "sslmode=verify-ca&sslrootcert=/kit/server-ca.pem"
    assert server.calls()[0]["env"]["DATABASE_URL"] == f"postgres://app_b:{APP_DB_PASSWORD_NEW}@{SQL_IP}:5432/app?{tls}"
    argv = inngest.calls()[0]["argv"]
    assert argv[argv.index("--postgres-uri") + 1] == f"postgres://inngest_a:{INNGEST_DB_PASSWORD}@{SQL_IP}:5432/inngest?{tls}"


def test_inngest_start_uses_only_real_flags(vm, release_dir, tmp_path):
    inngest = Recorder.install(tmp_path / "image-bin", "inngest")
    env = {"PATH": f"{inngest.path.parent}:/usr/bin:/bin", "KIT_SECRETS_DIR": str(vm.secrets / "inngest")}
    assert run_script(release_dir / "start-inngest.sh", env=env).returncode == 0
    argv = inngest.calls()[0]["argv"]
    used = {arg for arg in argv[1:] if arg.startswith("-")}
    assert used and used <= INNGEST_START_FLAGS, used - INNGEST_START_FLAGS


@pytest.mark.skipif(not DESIGN.exists(), reason="the team's DESIGN.md is not beside the repository (../shared/DESIGN.md)")
def test_the_flag_list_matches_design_md():
    facts = DESIGN.read_text()
    section = facts[facts.index("`inngest start` flags") : facts.index("- Keys on the command line")]
    listed = set(re.findall(r"`(--[a-z-]+)", section)) | set(re.findall(r"/(-[a-z])`", section))
    assert listed == INNGEST_START_FLAGS


def test_inngest_refuses_to_start_without_its_files(tmp_path, release_dir):
    inngest = Recorder.install(tmp_path / "image-bin", "inngest")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_script(release_dir / "start-inngest.sh", env={"PATH": f"{inngest.path.parent}:/usr/bin:/bin", "KIT_SECRETS_DIR": str(empty)})
    assert result.returncode == 1
    assert "missing" in result.stderr and "fetch-secrets.sh inngest" in result.stderr
    assert inngest.calls() == []


def test_app_wrapper_exports_its_secrets_and_the_database_url_then_runs_the_command(vm, release_dir, tmp_path):
    server = Recorder.install(tmp_path / "image-bin", "server")
    env = {"PATH": f"{server.path.parent}:/usr/bin:/bin", "KIT_SECRETS_DIR": str(vm.secrets / "app"), "NODE_ENV": "production"}
    result = run_script(release_dir / "with-secrets.sh", "server", "--listen", "0.0.0.0", env=env)
    assert result.returncode == 0, result.stderr
    [call] = server.calls()
    assert call["argv"] == ["--listen", "0.0.0.0"]
    seen = call["env"]
    assert seen["INNGEST_SIGNING_KEY"] == SIGNING_NEW
    assert seen["INNGEST_SIGNING_KEY_FALLBACK"] == SIGNING_OLD
    assert seen["INNGEST_EVENT_KEY"] == EVENT_NEW
    assert seen["STRIPE_API_KEY"] == STRIPE
    assert seen["DATABASE_URL"] == f"postgres://app:{APP_DB_PASSWORD}@{SQL_IP}:5432/app?sslmode=verify-ca&sslrootcert=/kit/server-ca.pem"
    assert seen["NODE_ENV"] == "production"
    assert not {"db-password", "db_password", "value", "path"} & set(seen)


def test_app_wrapper_names_the_missing_files(tmp_path, release_dir):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "INNGEST_SIGNING_KEY").write_text(SIGNING_NEW)
    result = run_script(release_dir / "with-secrets.sh", "true", env={"PATH": "/usr/bin:/bin", "KIT_SECRETS_DIR": str(partial)})
    assert result.returncode == 1
    assert "missing in" in result.stderr and " INNGEST_EVENT_KEY db-user db-password STRIPE_API_KEY." in result.stderr
    assert SIGNING_NEW not in result.stderr


def healthcheck_for(port: int, tmp_path: Path) -> Path:
    config = config_with(port=port, healthPath="/healthz")
    script = tmp_path / APP_HEALTHCHECK
    script.write_text(render_stack(config, inputs_for(config))[APP_HEALTHCHECK])
    return script


def only_tool(tool: str, tmp_path: Path) -> str:
    # python3 on PATH may be a wrapper script; the interpreter running the tests is a real one.
    found = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is not installed on this machine, so its branch of the health check cannot run")
    directory = tmp_path / f"only-{tool}"
    directory.mkdir()
    (directory / tool).symlink_to(found)
    return str(directory)


@pytest.mark.parametrize("tool", ["curl", "wget", "python3", "node"])
def test_app_healthcheck_probes_the_health_path_with_whichever_client_the_image_has(tool, tmp_path):
    with StandInApp() as app:
        script = healthcheck_for(app.port, tmp_path)
        path = only_tool(tool, tmp_path)
        healthy = run_script(script, env={"PATH": path})
        app.status = 503
        unhealthy = run_script(script, env={"PATH": path})
    assert healthy.returncode == 0, healthy.stderr
    assert unhealthy.returncode != 0
    assert app.requests == [("GET", "/healthz"), ("GET", "/healthz")]


def test_app_healthcheck_fails_clearly_when_the_image_has_no_client(tmp_path):
    empty = tmp_path / "no-tools"
    empty.mkdir()
    result = run_script(healthcheck_for(3000, tmp_path), env={"PATH": str(empty)})
    assert result.returncode == 1
    assert "none of curl, wget, python3 or node" in result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck (Debian package) is missing: run `sudo make test-deps`")
@pytest.mark.parametrize("name", sorted(EXECUTABLE_FILES))
def test_shell_scripts_pass_shellcheck(release_dir, name):
    result = subprocess.run(["shellcheck", "--shell=sh", str(release_dir / name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck (Debian package) is missing: run `sudo make test-deps`")
def test_shellcheck_does_flag_a_careless_script(tmp_path):
    careless = tmp_path / "careless.sh"
    careless.write_text("#!/bin/sh\nrm -rf $1/*\n")
    assert subprocess.run(["shellcheck", "--shell=sh", str(careless)], capture_output=True, timeout=60).returncode != 0


def _read_reply(reader) -> bytes:
    """One whole RESP reply, raw."""
    line = reader.readline()
    if line[:1] in (b"$",) and int(line[1:]) >= 0:
        return line + reader.read(int(line[1:]) + 2)
    if line[:1] == b"*" and int(line[1:]) > 0:
        return line + b"".join(_read_reply(reader) for _ in range(int(line[1:])))
    return line


def redis_command(sock: socket.socket, *args: str) -> bytes:
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args))
    with sock.makefile("rb") as reader:
        return _read_reply(reader)


class RealRedis:
    """The real redis-server started with the rendered command, its ACL file where fetch-secrets.sh wrote it."""

    def __init__(self, files: dict[str, str], secrets_dir: Path, data_dir: Path):
        command = yaml.safe_load(files["docker-compose.yml"])["services"]["redis"]["command"]
        self.command = [part.replace("/run/kit-secrets", str(secrets_dir)) for part in command]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.data_dir = data_dir

    def __enter__(self) -> RealRedis:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), *self.command[1:], "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise AssertionError(f"redis-server did not listen within 10 s:\n{self.process.stdout.read().decode()}") from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()

    def connect(self, password: str | None = None) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if password is not None:
            assert redis_command(sock, "AUTH", "default", password) == b"+OK\r\n"
        return sock


needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server (Debian package) is missing: run `sudo make test-deps`")


@needs_redis
def test_real_redis_runs_the_rendered_command_as_a_queue_behind_a_password(vm, files, tmp_path):
    password = (vm.secrets / "inngest" / "redis-password").read_text()
    with RealRedis(files, vm.secrets / "redis", tmp_path) as redis:
        with redis.connect() as anonymous:
            assert redis_command(anonymous, "SET", "queue", "state").startswith(b"-NOAUTH")
            assert redis_command(anonymous, "AUTH", "default", "wrong-password").startswith(b"-WRONGPASS")
        with redis.connect(password) as sock:
            assert redis_command(sock, "CONFIG", "GET", "appendonly").endswith(b"yes\r\n")
            assert redis_command(sock, "CONFIG", "GET", "appendfsync").endswith(b"everysec\r\n")
            assert redis_command(sock, "CONFIG", "GET", "maxmemory-policy").endswith(b"noeviction\r\n")
            assert redis_command(sock, "CONFIG", "GET", "maxmemory").endswith(b"$9\r\n134217728\r\n")  # 128 MiB
            assert redis_command(sock, "SET", "queue", "state") == b"+OK\r\n"
            # What Redis itself holds: the hash, never the password.
            assert password.encode() not in redis_command(sock, "ACL", "LIST")
        assert any(path.name.startswith("appendonly") for path in tmp_path.iterdir())


@needs_redis
@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (Debian package redis-tools) is missing: run `sudo make test-deps`")
def test_the_redis_healthcheck_needs_no_password_and_its_user_may_only_ping(vm, files, tmp_path):
    test = yaml.safe_load(files["docker-compose.yml"])["services"]["redis"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    with RealRedis(files, vm.secrets / "redis", tmp_path) as redis:
        probe = test[1].replace("redis-cli ", f"redis-cli -p {redis.port} ", 1)
        assert subprocess.run(["sh", "-c", probe], capture_output=True, timeout=30).returncode == 0
        with redis.connect() as sock:
            assert redis_command(sock, "AUTH", "healthcheck", "anything") == b"+OK\r\n"
            assert redis_command(sock, "GET", "queue").startswith(b"-NOPERM")
    assert subprocess.run(["sh", "-c", probe], capture_output=True, timeout=30).returncode != 0  # and it fails once Redis is gone


@needs_redis
def test_a_redis_password_rotation_drops_no_connection_and_fails_no_command(vm, files, tmp_path):
    """The rotation's three steps with the real redis-server: accept both, move the client, accept only
    the new one. ACL LOAD rereads the file without a restart; a connection authenticated as `default`
    stays open and working throughout (Redis copies a reloaded `default` user in place)."""
    vm.choose("REDIS_PASSWORD=1\nREDIS_PASSWORDS=1\n")
    assert vm.run().returncode == 0
    with RealRedis(files, vm.secrets / "redis", tmp_path) as redis, redis.connect(REDIS_OLD) as old_client:
        def reload_acl(auth: str) -> None:
            with redis.connect(auth) as admin:
                assert redis_command(admin, "ACL", "LOAD") == b"+OK\r\n"

        assert redis_command(old_client, "RPUSH", "queue", "1") == b":1\r\n"
        vm.choose("REDIS_PASSWORD=1\nREDIS_PASSWORDS=1,2\n")  # Redis accepts both
        assert vm.run("redis").returncode == 0
        reload_acl(REDIS_OLD)
        assert redis_command(old_client, "RPUSH", "queue", "2") == b":2\r\n"
        with redis.connect(REDIS_NEW) as new_client:  # the server restarts on the new password
            assert redis_command(new_client, "RPUSH", "queue", "3") == b":3\r\n"
            vm.choose("REDIS_PASSWORD=2\nREDIS_PASSWORDS=2\n")  # Redis drops the old one
            assert vm.run("redis").returncode == 0
            reload_acl(REDIS_NEW)
            assert redis_command(new_client, "RPUSH", "queue", "4") == b":4\r\n"
            with redis.connect() as late:
                assert redis_command(late, "AUTH", "default", REDIS_OLD).startswith(b"-WRONGPASS")
        # A connection opened with the old password before the switch is not cut by the reload.
        assert redis_command(old_client, "LLEN", "queue") == b":4\r\n"


def test_no_secret_value_appears_in_any_rendered_file(vm, files):
    values = [SIGNING_OLD, SIGNING_NEW, EVENT_OLD, EVENT_NEW, APP_DB_PASSWORD, INNGEST_DB_PASSWORD, REDIS_OLD, REDIS_NEW, STRIPE, "sk_live_multi"]
    assert set(vm.tree().values()) >= {SIGNING_NEW, EVENT_NEW, STRIPE}  # the values exist on the "VM"...
    for path, content in files.items():  # ...and none is in what the deploy uploads
        for value in values:
            assert value not in content, f"a secret value is in {path}"


def test_key_flags_always_take_their_value_from_a_file_at_start(files):
    for path, content in files.items():
        code = "\n".join(line for line in content.splitlines() if not line.lstrip().startswith("#"))
        for match in re.finditer(r"--(signing|event)-key[ =]+(\S+)", code):
            assert match.group(2) == '"$(cat', f"{path}: {match.group(0)}"
    assert "--signing-key" in files["start-inngest.sh"]


def test_the_app_env_file_holds_no_secret_name(files):
    names = {line.split("=", 1)[0] for line in files["app.env"].splitlines() if "=" in line and not line.startswith("#")}
    assert not names & {"INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_EVENT_KEY", "DATABASE_URL", "STRIPE_API_KEY"}
    assert os.path.basename("app.env") in files
