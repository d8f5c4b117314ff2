"""The keys CLI's Redis step (infra/keys/vm_commands.py, APPLY_REDIS_SCRIPT) run for real: the rendered
fetch-secrets.sh rewrites the ACL file, and redis-cli reloads it in the real redis-server with ACL LOAD,
authenticated with the password the server uses. `docker compose exec -T redis` is replaced by a
STAND-IN that runs the local redis-cli against the test's redis-server; everything else is real."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from infra.keys.model import render_versions_file
from infra.keys.vm_commands import APPLY_REDIS_SCRIPT
from tests.keys.states import files
from tests.render.test_container_scripts import RealRedis, redis_command
from tests.render.test_fetch_secrets import REDIS_NEW, REDIS_OLD, Vm

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server and redis-cli (Debian packages redis-server, redis-tools) are missing: run `sudo make test-deps`",
)


def versions(redis: tuple[int, ...], accepted: tuple[int, ...]) -> str:
    return render_versions_file(files(signing=(2,), event=(2,), event_keys=(2,), redis=redis, redis_accepted=accepted))


def test_the_redis_step_reloads_redis_in_place_and_no_connection_fails(tmp_path, release_dir):
    vm = Vm(tmp_path, release_dir)
    vm.choose(versions((1,), (1,)))
    assert vm.run().returncode == 0
    with RealRedis({"docker-compose.yml": (release_dir / "docker-compose.yml").read_text()}, vm.secrets / "redis", tmp_path) as redis:
        compose = tmp_path / "compose-exec"  # stands for `docker compose ... exec -T redis redis-cli`
        compose.write_text(f"#!/bin/sh\n[ \"$1 $2 $3 $4\" = 'exec -T redis redis-cli' ] || exit 64\nexec redis-cli -p {redis.port}\n")
        compose.chmod(0o755)

        def step(text: str, password_file=None) -> subprocess.CompletedProcess:
            argv = ["sh", "-c", APPLY_REDIS_SCRIPT, "apply-versions", str(vm.versions_file), str(vm.script),
                    str(password_file or vm.secrets / "inngest" / "redis-password"), str(compose)]  # fmt: skip
            env = {"PATH": f"{vm.bin}:/usr/bin:/bin", "KIT_ROOT": str(vm.root)}
            return subprocess.run(argv, input=text, env=env, capture_output=True, text=True, timeout=60)

        with redis.connect(REDIS_OLD) as server:
            assert redis_command(server, "RPUSH", "queue", "a") == b":1\r\n"
            result = step(versions((1,), (1, 2)))
            assert result.returncode == 0, result.stderr
            redis.connect(REDIS_NEW).close()  # the new password is accepted with no restart
            assert redis_command(server, "RPUSH", "queue", "b") == b":2\r\n"

            vm.choose(versions((2,), (1, 2)))
            assert vm.run("inngest").returncode == 0  # the server moves to the new password
            result = step(versions((2,), (2,)))
            assert result.returncode == 0, result.stderr
            with redis.connect() as late:
                assert redis_command(late, "AUTH", "default", REDIS_OLD).startswith(b"-WRONGPASS")
            assert redis_command(server, "LLEN", "queue") == b":2\r\n"  # the old connection was never cut

            # Authenticating with a password Redis no longer accepts fails the step, saying so.
            stale = tmp_path / "stale-password"
            stale.write_text(REDIS_OLD)
            result = step(versions((2,), (2,)), password_file=stale)
            assert result.returncode == 1
            assert "Redis did not reload its ACL file: WRONGPASS" in result.stderr
            assert REDIS_OLD not in result.stdout + result.stderr
        assert redis.process.poll() is None  # Redis ran throughout
