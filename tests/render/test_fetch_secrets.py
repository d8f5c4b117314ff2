"""fetch-secrets.sh, run for real by /bin/sh against a recording stand-in for gcloud, relocated
below a scratch directory with KIT_ROOT (the real script mounts a tmpfs at /var/lib/inngest-kit/secrets)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.render.stand_ins import GcloudStandIn, Recorder

PROJECT = "acme-web-prod"
SIGNING_OLD, SIGNING_NEW = "a1" * 32, "b2" * 32
EVENT_OLD, EVENT_NEW = "event-old-Kq3", "event-new-Zp9"
APP_DB_PASSWORD, INNGEST_DB_PASSWORD = "app-pw-Tr7x", "inngest-pw-Yb2q"
REDIS_OLD, REDIS_NEW = "redis-pw-Old4", "redis-pw-New7"
STRIPE = "sk_live_multi\nline"
APP_DB_PASSWORD_NEW = "New-app-db-password-0123456789"


def store() -> dict:
    rotated = {"current": "2", "previous": "1"}
    return {
        "acme-inngest-signing-key": {"versions": {"1": SIGNING_OLD, "2": SIGNING_NEW}, "aliases": rotated},
        "acme-inngest-event-key": {"versions": {"1": EVENT_OLD, "2": EVENT_NEW}, "aliases": rotated},
        "acme-db-app-password": {"versions": {"1": APP_DB_PASSWORD, "2": APP_DB_PASSWORD_NEW}, "aliases": {"current": "1"}},
        "acme-db-inngest-password": {"versions": {"1": INNGEST_DB_PASSWORD}, "aliases": {"current": "1"}},
        "acme-redis-password": {"versions": {"1": REDIS_OLD, "2": REDIS_NEW}, "aliases": rotated},
        # Never rotated: no alias yet, so the script must fall back to the version Pulumi created.
        "acme-app-stripe-api-key": {"versions": {"1": STRIPE}},
    }


def acl(*passwords: str) -> str:
    """What Redis must read: the SHA-256 of each accepted password (ACL `#<hash>`), never a password."""
    hashes = "".join(f" #{hashlib.sha256(p.encode()).hexdigest()}" for p in passwords)
    return f"user default on{hashes} ~* &* +@all\nuser healthcheck on nopass -@all +ping\n"


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


class Vm:
    def __init__(self, tmp_path: Path, release_dir: Path):
        self.root = tmp_path / "vm"
        self.root.mkdir()
        self.bin = tmp_path / "bin"
        self.gcloud = GcloudStandIn.install(self.bin, PROJECT, store())
        self.sleep = Recorder.install(self.bin, "sleep")
        self.script = release_dir / "fetch-secrets.sh"
        self.secrets = self.root / "var" / "lib" / "inngest-kit" / "secrets"
        self.redis_data = self.root / "srv" / "kit" / "redis"
        self.versions_file = self.root / "srv" / "kit" / "secret-versions.env"

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}", "KIT_ROOT": str(self.root)}
        return subprocess.run(["/bin/sh", str(self.script), *args], env=env, capture_output=True, text=True, timeout=30)

    def choose(self, text: str) -> None:
        self.versions_file.parent.mkdir(parents=True, exist_ok=True)
        self.versions_file.write_text(text)

    def tree(self) -> dict[str, str]:
        return {str(p.relative_to(self.secrets)): p.read_text() for p in sorted(self.secrets.rglob("*")) if p.is_file()}


@pytest.fixture
def vm(tmp_path, release_dir) -> Vm:
    return Vm(tmp_path, release_dir)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_fetches_every_service_file_by_alias_current(vm):
    result = vm.run()
    assert result.returncode == 0, result.stderr
    assert vm.tree() == {
        "app/INNGEST_EVENT_KEY": EVENT_NEW,
        "app/INNGEST_SIGNING_KEY": SIGNING_NEW,
        "app/STRIPE_API_KEY": STRIPE,
        "app/db-password": APP_DB_PASSWORD,
        "app/db-user": "app",
        "inngest/db-password": INNGEST_DB_PASSWORD,
        "inngest/db-user": "inngest",
        "inngest/event-key-1": EVENT_NEW,
        "inngest/signing-key": SIGNING_NEW,
        "inngest/redis-password": REDIS_NEW,
        "redis/users.acl": acl(REDIS_NEW),
    }
    calls = vm.gcloud.calls()
    assert all(call[:3] == ["secrets", "versions", "access"] and call[5] == f"--project={PROJECT}" for call in calls)
    assert not any("latest" in call for call in calls)
    assert ["secrets", "versions", "access", "current", "--secret=acme-inngest-signing-key", f"--project={PROJECT}"] in calls


def test_a_secret_without_the_current_alias_falls_back_to_the_initial_version(vm):
    assert vm.run("app").returncode == 0
    stripe_calls = [call[3] for call in vm.gcloud.calls() if call[4] == "--secret=acme-app-stripe-api-key"]
    assert stripe_calls == ["current", "1"]


def test_files_are_root_only_on_the_host_and_the_app_user_can_read_its_own(vm):
    assert vm.run().returncode == 0
    assert mode(vm.secrets) == 0o700
    assert mode(vm.secrets / "inngest") == 0o700
    assert {mode(p) for p in (vm.secrets / "inngest").iterdir()} == {0o600}
    assert mode(vm.secrets / "app") == 0o755
    assert {mode(p) for p in (vm.secrets / "app").iterdir()} == {0o644}
    # Redis runs as its image's uid 999 with no capability: its directory is its own and no one else's.
    redis_dir = vm.secrets / "redis"
    assert (mode(redis_dir), redis_dir.stat().st_uid, redis_dir.stat().st_gid) == (0o700, 999, 1000)
    assert {(mode(p), p.stat().st_uid) for p in redis_dir.iterdir()} == {(0o600, 999)}
    assert not [p.name for p in vm.secrets.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_output_shows_fingerprints_and_never_a_value(vm):
    result = vm.run()
    output = result.stdout + result.stderr
    for value in (SIGNING_OLD, SIGNING_NEW, EVENT_OLD, EVENT_NEW, APP_DB_PASSWORD, INNGEST_DB_PASSWORD, REDIS_OLD, REDIS_NEW, "sk_live_multi"):
        assert value not in output
    assert f"app/INNGEST_SIGNING_KEY <- acme-inngest-signing-key version current (sha256 {fingerprint(SIGNING_NEW)})" in result.stdout
    assert f"app/STRIPE_API_KEY <- acme-app-stripe-api-key version 1 (sha256 {fingerprint(STRIPE)})" in result.stdout


def test_rotation_overrides_add_the_fallback_and_a_second_event_key_then_drop_them(vm):
    vm.choose("# written by the keys CLI\nINNGEST_SIGNING_KEY=current\nINNGEST_SIGNING_KEY_FALLBACK=previous\n\nINNGEST_EVENT_KEYS=current,previous\n")
    result = vm.run()
    assert result.returncode == 0, result.stderr
    tree = vm.tree()
    assert tree["app/INNGEST_SIGNING_KEY_FALLBACK"] == SIGNING_OLD
    assert (tree["inngest/event-key-1"], tree["inngest/event-key-2"]) == (EVENT_NEW, EVENT_OLD)
    assert tree["app/INNGEST_EVENT_KEY"] == EVENT_NEW

    vm.versions_file.unlink()  # grace period over: back to the defaults
    assert vm.run().returncode == 0
    tree = vm.tree()
    assert "app/INNGEST_SIGNING_KEY_FALLBACK" not in tree
    assert "inngest/event-key-2" not in tree


def test_the_versions_file_moves_a_service_to_its_other_login_role_with_its_password(vm):
    vm.choose("DB_APP_LOGIN=app_b\nDB_APP_PASSWORD=2\n")
    result = vm.run()
    assert result.returncode == 0, result.stderr
    tree = vm.tree()
    assert (tree["app/db-user"], tree["app/db-password"]) == ("app_b", APP_DB_PASSWORD_NEW)
    # The other database is untouched: its owner role and `current`, as before two login roles.
    assert (tree["inngest/db-user"], tree["inngest/db-password"]) == ("inngest", INNGEST_DB_PASSWORD)


def test_a_login_role_of_another_database_is_refused(vm):
    vm.choose("DB_APP_LOGIN=inngest_a\nDB_INNGEST_LOGIN=postgres\n")
    result = vm.run()
    assert result.returncode == 1
    assert "line 1: DB_APP_LOGIN: 'inngest_a' is not one of the database's login roles" in result.stderr
    assert "line 2: DB_INNGEST_LOGIN: 'postgres' is not one of the database's login roles" in result.stderr
    assert vm.gcloud.calls() == []


def test_server_can_keep_the_old_key_while_the_app_moves(vm):
    vm.choose("INNGEST_SIGNING_KEY=1\nINNGEST_EVENT_KEY=2\nINNGEST_EVENT_KEYS=1,2\n")
    assert vm.run().returncode == 0
    tree = vm.tree()
    assert (tree["app/INNGEST_SIGNING_KEY"], tree["inngest/signing-key"]) == (SIGNING_OLD, SIGNING_OLD)
    assert tree["app/INNGEST_EVENT_KEY"] == EVENT_NEW
    assert (tree["inngest/event-key-1"], tree["inngest/event-key-2"]) == (EVENT_OLD, EVENT_NEW)


def test_a_service_name_refreshes_only_that_service(vm):
    assert vm.run().returncode == 0
    before = vm.tree()
    vm.choose("INNGEST_SIGNING_KEY=previous\n")
    vm.gcloud.clear_calls()
    result = vm.run("app")
    assert result.returncode == 0, result.stderr
    after = vm.tree()
    assert after["app/INNGEST_SIGNING_KEY"] == SIGNING_OLD
    assert {k: v for k, v in after.items() if k.startswith("inngest/")} == {k: v for k, v in before.items() if k.startswith("inngest/")}
    assert not any(call[4] == "--secret=acme-db-inngest-password" for call in vm.gcloud.calls())


def test_a_failed_fetch_changes_nothing(vm):
    assert vm.run().returncode == 0
    before = vm.tree()
    broken = store()
    del broken["acme-db-app-password"]
    broken["acme-inngest-signing-key"]["aliases"]["current"] = "1"
    vm.gcloud.set_secrets(PROJECT, broken)
    result = vm.run()
    assert result.returncode != 0
    assert "NOT_FOUND" in result.stderr and "acme-db-app-password" in result.stderr
    assert vm.tree() == before
    assert not [p.name for p in vm.secrets.iterdir() if p.name.startswith(".")]


def test_a_missing_previous_alias_is_an_error_not_a_silent_fallback(vm):
    secrets = store()
    del secrets["acme-inngest-signing-key"]["aliases"]["previous"]
    vm.gcloud.set_secrets(PROJECT, secrets)
    vm.choose("INNGEST_SIGNING_KEY_FALLBACK=previous\n")
    result = vm.run("app")
    assert result.returncode != 0
    assert "acme-inngest-signing-key has no version previous" in result.stderr
    assert not (vm.secrets / "app").exists()


def test_transient_errors_are_retried_a_bounded_number_of_times(vm):
    vm.gcloud.fail_next(2)
    result = vm.run("inngest")
    assert result.returncode == 0, result.stderr
    assert [call["argv"] for call in vm.sleep.calls()] == [["2"], ["2"]]

    vm.gcloud.fail_next(3)
    result = vm.run("inngest")
    assert result.returncode != 0
    assert "UNAVAILABLE" in result.stderr


def test_a_bad_versions_file_reports_every_problem_and_fetches_nothing(vm):
    vm.choose("INNGEST_SIGNING_KEY=latest\nINNGEST_EVENT_KEYS=current,Previous\nSTRIPE=1\nnonsense\nINNGEST_EVENT_KEY=\n")
    result = vm.run()
    assert result.returncode == 1
    for expected in (
        "line 1: INNGEST_SIGNING_KEY: 'latest' is not an alias or a version number",
        "line 2: INNGEST_EVENT_KEYS: 'Previous' is not an alias",
        "line 3: unknown name STRIPE",
        "line 4: expected NAME=VERSION",
        "line 5: INNGEST_EVENT_KEY is empty",
    ):
        assert expected in result.stderr
    assert vm.gcloud.calls() == []
    assert not (vm.secrets / "app").exists()


def test_during_a_redis_rotation_redis_accepts_both_passwords_and_inngest_uses_the_one_chosen(vm):
    vm.choose("REDIS_PASSWORD=1\nREDIS_PASSWORDS=1,2\n")
    assert vm.run().returncode == 0
    tree = vm.tree()
    assert tree["redis/users.acl"] == acl(REDIS_OLD, REDIS_NEW)
    assert tree["inngest/redis-password"] == REDIS_OLD
    assert not [name for name in tree if name.startswith("redis/") and name != "redis/users.acl"]  # no password file left
    vm.choose("REDIS_PASSWORD=2\nREDIS_PASSWORDS=2\n")
    vm.gcloud.clear_calls()
    assert vm.run("redis").returncode == 0
    assert vm.tree()["redis/users.acl"] == acl(REDIS_NEW)
    assert vm.tree()["inngest/redis-password"] == REDIS_OLD  # `redis` refreshes only Redis's file
    assert {call[4] for call in vm.gcloud.calls()} == {"--secret=acme-redis-password"}


def test_the_redis_data_directory_becomes_the_redis_users(vm):
    vm.redis_data.mkdir(parents=True)
    (vm.redis_data / "appendonlydir").mkdir()
    (vm.redis_data / "appendonlydir" / "appendonly.aof.1.incr.aof").write_text("")
    assert vm.run("redis").returncode == 0
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [vm.redis_data, *vm.redis_data.rglob("*")]}
    assert owners == {(999, 1000)}


def test_an_unknown_service_is_a_usage_error(vm):
    result = vm.run("caddy")
    assert result.returncode == 2
    assert "usage: fetch-secrets.sh [app|inngest|redis]" in result.stderr
    assert vm.gcloud.calls() == []
