"""Rotations end to end: the real CLI, a real sshd as the VM, the real rendered fetch-secrets.sh, the real
Secret Manager client against the fake, the recording docker stand-in, the real curl.

The timeline is what each service held after each restart (tests/support/keys_stack.py); the
invariants are asserted on every moment of it, not only at the end.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf import field_mask_pb2

from infra import naming

SIGNING, EVENT = naming.SIGNING_KEY, naming.EVENT_KEY
DB_APP, DB_INNGEST = naming.DB_APP_PASSWORD, naming.DB_INNGEST_PASSWORD
REDIS = naming.REDIS_PASSWORD


def fp(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:8]


def assert_nothing_secret_leaked(stack, capfd=None) -> None:
    """No stored value appears in what was printed (the CLI's streams and, given capfd, the process's own
    stdout and stderr, logging included), the VM's audit log, its versions file, or docker's call log."""
    seen = [stack.output(), stack.versions_file() or "", str(stack.audit_lines()), (stack.docker.directory / "calls.jsonl").read_text()]
    if capfd is not None:
        seen += list(capfd.readouterr())
    for value in stack.every_value():
        for text in seen:
            assert value not in text


def assert_signing_never_disagrees(stack) -> None:
    moments = stack.timeline()
    assert moments, "the timeline recorded no restart"
    for number, moment in enumerate(moments):
        assert moment.signing_agrees(), f"moment {number}: the server signs with {moment.server_signing}, the app accepts only {moment.app_signing}"


def assert_event_key_always_accepted(stack) -> None:
    for number, moment in enumerate(stack.timeline()):
        assert moment.event_accepted(), f"moment {number}: the app sends {moment.app.get('INNGEST_EVENT_KEY')}, the server accepts {moment.server_event_keys}"


def assert_redis_always_accepts_the_server(stack) -> None:
    moments = stack.timeline()
    assert moments, "the timeline recorded no restart"
    for number, moment in enumerate(moments):
        assert moment.redis_accepts_server(), f"moment {number}: the server logs in with {moment.inngest.get('redis-password')}, Redis accepts {moment.redis_accepted}"


def test_signing_rotation_keeps_every_call_signed(keys_stack, capfd):
    now = {"value": datetime(2026, 11, 24, 12, 0, 0)}
    keys_stack.clock = lambda: now["value"]

    def sleep(seconds):
        keys_stack.sleeps.append(seconds)
        now["value"] += timedelta(seconds=seconds)

    keys_stack.client.update_secret(
        secret={"name": keys_stack.secret_name(SIGNING), "rotation": {"next_rotation_time": datetime(2026, 11, 30), "rotation_period": timedelta(days=90)}},
        update_mask=field_mask_pb2.FieldMask(paths=["rotation"]),
    )

    code = keys_stack.run("rotate", "signing", "--stack", "dev", "--yes", "--grace", "2m", "--reason", "quarterly rotation", sleep=sleep)

    # A grace period shorter than --max-wait is waited out in the same run, with progress.
    assert "waiting for the grace period: 2m left" in keys_stack.output()
    assert sum(keys_stack.sleeps) >= 120
    assert code == 0, keys_stack.output()
    assert_signing_never_disagrees(keys_stack)
    moments = keys_stack.timeline()
    new = fp(keys_stack.value(SIGNING, 2))
    old = fp(keys_stack.value(SIGNING, 1))
    # The app held the new key with the old as fallback while the server still signed with the old.
    assert any(m.app.get("INNGEST_SIGNING_KEY") == new and m.app.get("INNGEST_SIGNING_KEY_FALLBACK") == old and m.server_signing == old for m in moments)
    final = moments[-1]
    assert final.app_signing == {new} and final.server_signing == new
    assert keys_stack.states(SIGNING) == {1: "DISABLED", 2: "ENABLED"}
    assert keys_stack.aliases(SIGNING) == {"current": 2, "previous": 1}
    annotations = keys_stack.annotations(SIGNING)
    assert annotations["kit-v2-created-by"] == "ops@acme-example.com"
    assert annotations["kit-v2-created-why"] == "quarterly rotation"
    assert annotations["kit-v1-disabled-by"] == "ops@acme-example.com"
    assert [line["result"] for line in keys_stack.audit_lines()] == ["completed"]
    assert keys_stack.audit_lines()[0]["reason"] == "quarterly rotation"
    assert "INNGEST_SIGNING_KEY=2\nINNGEST_SIGNING_KEY_FALLBACK=\n" in keys_stack.versions_file()
    rotation = keys_stack.client.get_secret(name=keys_stack.secret_name(SIGNING)).rotation
    # One period after the rotation was planned (12:00), not after the old reminder.
    assert rotation.next_rotation_time.replace(tzinfo=None) == datetime(2027, 2, 22, 12, 0)
    assert rotation.rotation_period == timedelta(days=90)
    assert_nothing_secret_leaked(keys_stack, capfd)


def test_event_rotation_never_rejects_the_apps_key(keys_stack):
    code = keys_stack.run("rotate", "event", "--stack", "dev", "--yes")

    assert code == 0, keys_stack.output()
    assert_event_key_always_accepted(keys_stack)
    moments = keys_stack.timeline()
    new, old = fp(keys_stack.value(EVENT, 2)), fp(keys_stack.value(EVENT, 1))
    assert any(m.server_event_keys == {old, new} for m in moments), "the server never accepted both keys"
    assert moments[-1].server_event_keys == {new} and moments[-1].app["INNGEST_EVENT_KEY"] == new
    assert keys_stack.states(EVENT) == {1: "DISABLED", 2: "ENABLED"}
    assert keys_stack.aliases(EVENT) == {"current": 2, "previous": 1}
    value = keys_stack.value(EVENT, 2).decode()
    assert value.isalnum() and "," not in value
    assert_nothing_secret_leaked(keys_stack)


def live_login(stack, held: dict) -> str:
    """Which role a service's db-user file names (the timeline keeps fingerprints only)."""
    return next(role for role in stack.database.passwords if held.get("db-user") == fp(role))


def test_db_rotation_sets_the_standby_login_switches_then_retires_the_old_one(keys_stack, capfd):
    code = keys_stack.run("rotate", "db", "--stack", "dev", "--yes")

    assert code == 0, keys_stack.output()
    calls = [user for _, user, _ in keys_stack.database.calls]
    # The new password goes to the login no one uses; the old login is retired only after the switch.
    assert calls == ["app_a", "app", "app_b", "inngest_a", "inngest", "inngest_b"]
    assert keys_stack.roles.calls == [("app", "app", "app"), ("app", "app", "app"), ("inngest", "inngest", "inngest"), ("inngest", "inngest", "inngest")]
    for logical, login, service_file in ((DB_APP, "app_a", "app"), (DB_INNGEST, "inngest_a", "inngest")):
        assert keys_stack.states(logical) == {1: "DISABLED", 2: "ENABLED"}
        assert keys_stack.aliases(logical) == {"current": 2, "previous": 1}
        new = keys_stack.value(logical, 2).decode()
        assert keys_stack.database.passwords[login] == new
        held = getattr(keys_stack.timeline()[-1], service_file)
        assert live_login(keys_stack, held) == login
        assert held["db-password"] == fp(new), f"{service_file} holds a password Cloud SQL no longer accepts"
    assert "DB_APP_LOGIN=app_a\nDB_APP_PASSWORD=2\n" in keys_stack.versions_file()
    # The next rotation hands over to the other login role.
    assert keys_stack.run("rotate", "db", "--stack", "dev", "--yes") == 0, keys_stack.output()
    assert live_login(keys_stack, keys_stack.timeline()[-1].app) == "app_b"
    assert keys_stack.database.passwords["app_b"] == keys_stack.value(DB_APP, 3).decode()
    assert_nothing_secret_leaked(keys_stack, capfd)


def test_redis_rotation_never_locks_the_server_out_and_never_restarts_redis(keys_stack, capfd):
    code = keys_stack.run("rotate", "redis", "--stack", "dev", "--yes")

    assert code == 0, keys_stack.output()
    assert_redis_always_accepts_the_server(keys_stack)
    moments = keys_stack.timeline()
    new, old = fp(keys_stack.value(REDIS, 2)), fp(keys_stack.value(REDIS, 1))
    assert any(set(m.redis_accepted) == {old, new} for m in moments), "Redis never accepted both passwords"
    assert moments[-1].redis_accepted == (new,) and moments[-1].inngest["redis-password"] == new
    assert keys_stack.states(REDIS) == {1: "DISABLED", 2: "ENABLED"}
    assert keys_stack.aliases(REDIS) == {"current": 2, "previous": 1}
    # Redis reloads its ACL file in place: every queue command keeps working, so no restart of Redis.
    assert [e["action"] for e in keys_stack.docker.events() if e["service"] == "redis"] == ["create"]
    assert [e["action"] for e in keys_stack.docker.events() if e["service"] == "inngest"] == ["create", "recreate"]
    assert "REDIS_PASSWORD=2\nREDIS_PASSWORDS=2\n" in keys_stack.versions_file()
    value = keys_stack.value(REDIS, 2).decode()
    assert len(value) == 32 and all(ch.isalnum() or ch in "-_" for ch in value)  # URL-safe: it goes into --redis-uri
    assert_nothing_secret_leaked(keys_stack, capfd)


def test_rotate_all_plans_every_kind_in_turn(keys_stack):
    code = keys_stack.run("rotate", "all", "--stack", "dev", "--dry-run")

    assert code == 0, keys_stack.output()
    out = keys_stack.output()
    assert out.index("signing: 7 step(s)") < out.index("event: 6 step(s)") < out.index("db: 14 step(s)") < out.index("redis: 6 step(s)")
    assert "restart redis reading REDIS_PASSWORD=v1, REDIS_PASSWORDS=v1,v2 (Redis accepts both passwords), then verify" in out
    assert "set Cloud SQL user 'app_a', which no service logs in as, to v2 of db-app-password" in out
    assert "set Cloud SQL user 'inngest_a', which no service logs in as, to v2 of db-inngest-password" in out
    for logical in naming.KIT_SECRETS:
        assert keys_stack.states(logical) == {1: "ENABLED"}


def test_dry_run_prints_the_plan_and_changes_nothing(keys_stack):
    before = len(keys_stack.docker.calls())

    code = keys_stack.run("rotate", "signing", "--stack", "dev", "--dry-run")

    assert code == 0
    out = keys_stack.output()
    assert "1. add v2 of inngest-signing-key" in out
    assert "restart app reading INNGEST_SIGNING_KEY=v2, INNGEST_SIGNING_KEY_FALLBACK=v1" in out
    assert "disable v1 of inngest-signing-key" in out
    assert keys_stack.states(SIGNING) == {1: "ENABLED"}
    assert keys_stack.aliases(SIGNING) == {}
    assert len(keys_stack.docker.calls()) == before
    assert keys_stack.versions_file() is None


def test_a_long_grace_period_pauses_and_a_later_rerun_finishes_without_rotating_twice(keys_stack):
    start = datetime(2026, 11, 24, 12, 0, 0)
    now = {"value": start}
    keys_stack.clock = lambda: now["value"]

    code = keys_stack.run("rotate", "all", "--stack", "dev", "--yes", "--grace", "24h")

    # The signing key waits for its deadline; the event key and the passwords need not wait with it.
    assert code == 4, keys_stack.output()
    assert "run the same command again after that" in keys_stack.output()
    assert keys_stack.states(SIGNING) == {1: "ENABLED", 2: "ENABLED"}
    assert keys_stack.annotations(SIGNING)["kit-fallback-until"] == "2026-11-25T12:00:00"
    assert keys_stack.timeline()[-1].app.get("INNGEST_SIGNING_KEY_FALLBACK") == fp(keys_stack.value(SIGNING, 1))
    for logical in (EVENT, DB_APP, DB_INNGEST, REDIS):
        assert keys_stack.states(logical) == {1: "DISABLED", 2: "ENABLED"}, logical
    restarts = len(keys_stack.timeline())

    now["value"] = start + timedelta(hours=1)
    assert keys_stack.run("rotate", "all", "--stack", "dev", "--yes", "--grace", "24h") == 4
    assert len(keys_stack.timeline()) == restarts, "a rerun inside the grace period restarted something"

    now["value"] = start + timedelta(hours=25)
    assert keys_stack.run("rotate", "all", "--stack", "dev", "--yes", "--grace", "24h") == 0, keys_stack.output()
    assert keys_stack.states(SIGNING) == {1: "DISABLED", 2: "ENABLED"}
    for logical in (EVENT, DB_APP, DB_INNGEST, REDIS):
        assert keys_stack.states(logical) == {1: "DISABLED", 2: "ENABLED"}, f"{logical} was rotated twice"
        assert "kit-rotating-from" not in keys_stack.annotations(logical)
    assert "INNGEST_SIGNING_KEY_FALLBACK" not in keys_stack.timeline()[-1].app
    assert_signing_never_disagrees(keys_stack)
    assert_event_key_always_accepted(keys_stack)
    assert_redis_always_accepts_the_server(keys_stack)
    assert [(line["kind"], line["result"]) for line in keys_stack.audit_lines()] == [
        ("signing", "paused"), ("event", "completed"), ("db", "completed"), ("redis", "completed"),
        ("signing", "paused"), ("event", "completed"), ("db", "completed"), ("redis", "completed"),
        ("signing", "completed"), ("event", "completed"), ("db", "completed"), ("redis", "completed"),
    ]


# --- fault injection ---------------------------------------------------------------------------

# Which faults make sense at which step; each faulted run injects the next one not yet tried.
FAULTS_BY_STEP = {
    "AddVersion": ("secretmanager",),
    "ApplyVersions": ("secretmanager", "ssh", "health"),
    "EnsureDbRoles": ("roles",),
    "SetLoginPassword": ("cloudsql",),
    "RetireLogins": ("cloudsql", "roles"),
    "MoveAliases": ("secretmanager",),
    "DisableVersion": ("secretmanager", "ssh"),
}
SM_METHOD = {"AddVersion": "AddSecretVersion", "MoveAliases": "UpdateSecret", "DisableVersion": "DisableSecretVersion"}


class FaultInjector:
    """Called before each step: injects one fault per run, at the first (step, fault) pair not yet tried."""

    def __init__(self, stack, proxy, per_step: int):
        self.stack, self.proxy, self.per_step = stack, proxy, per_step
        self.tried: set[tuple[str, str]] = set()
        self.counts: dict[str, int] = {}
        self.injected: tuple[str, str] | None = None

    def __call__(self, step) -> None:
        kind = type(step).__name__
        if self.injected or kind not in FAULTS_BY_STEP:
            return
        key = step.describe().split(";")[0]  # without the grace deadline, which moves with the clock
        tried_here = [fault for (described, fault) in self.tried if described == key]
        if len(tried_here) >= self.per_step:
            return
        options = FAULTS_BY_STEP[kind]
        fault = options[(self.counts.get(kind, 0)) % len(options)]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.tried.add((key, fault))
        self.injected = (key, fault)
        if fault == "ssh":
            self.proxy.cut()
        elif fault == "health":
            self.stack.health_failures["sync" if getattr(step, "check_sync", True) else "health"] = 2
        elif fault == "cloudsql":
            self.stack.database.fail_next = 1
        elif fault == "roles":
            self.stack.roles.fail_next = 1
        elif kind == "ApplyVersions":
            # fetch-secrets.sh retries transient errors; NOT_FOUND it reports at once.
            import grpc

            self.stack.sm.fail_next("AccessSecretVersion", grpc.StatusCode.NOT_FOUND)
        else:
            import grpc

            self.stack.sm.fail_next(SM_METHOD[kind], grpc.StatusCode.UNAVAILABLE)


def assert_stack_working(stack, kind: str) -> None:
    if kind == "signing":
        assert_signing_never_disagrees(stack)
    elif kind == "event":
        assert_event_key_always_accepted(stack)
    elif kind == "redis":
        assert_redis_always_accepts_the_server(stack)
    else:
        final = stack.timeline()[-1]
        for service in ("app", "inngest"):
            held = getattr(final, service)
            assert held["db-password"] == fp(stack.database.passwords[live_login(stack, held)]), f"{service}'s password is not Cloud SQL's"


@pytest.mark.parametrize("kind", ["signing", "event", "db", "redis"])
def test_faults_at_every_step_leave_a_working_stack_and_a_rerun_converges(keys_stack, flaky_proxy, capfd, kind):
    proxy = flaky_proxy(keys_stack.target.port)
    keys_stack.target = replace(keys_stack.target, port=proxy.port)
    injector = FaultInjector(keys_stack, proxy, per_step=1)
    keys_stack.on_step = injector
    logicals = (DB_APP, DB_INNGEST) if kind == "db" else ({"signing": SIGNING, "event": EVENT, "redis": REDIS}[kind],)
    outcomes = []
    for _ in range(20):  # bounded: each run tries a new (step, fault) pair, and there are fewer than 20
        injector.injected = None
        code = keys_stack.run("rotate", kind, "--stack", "dev", "--yes", "--grace", "0s")
        outcomes.append((injector.injected, code))
        proxy.heal()
        keys_stack.health_failures.update(health=0, sync=0)
        if code == 0:
            break
        assert code in (1, 3), keys_stack.output()
        assert_stack_working(keys_stack, kind)
        for logical in logicals:
            # The version the rotation started from stays valid until its successor is in service.
            assert keys_stack.states(logical)[1] == "ENABLED" or keys_stack.aliases(logical)["current"] > 1, (logical, outcomes)
    assert outcomes[-1][1] == 0, f"the last rerun did not converge: {outcomes}\n{keys_stack.output()}"
    faulted_steps = {key.split(" ")[0] for key, _ in injector.tried}
    assert {"add", "restart", "disable"} <= faulted_steps or {"add", "set", "disable"} <= faulted_steps, injector.tried
    assert len({fault for _, fault in injector.tried}) >= 3, injector.tried
    for logical in logicals:
        assert keys_stack.states(logical)[1] == "DISABLED", (logical, outcomes)
        assert keys_stack.aliases(logical)["current"] == max(keys_stack.states(logical))
    assert_stack_working(keys_stack, kind)
    assert_nothing_secret_leaked(keys_stack, capfd)


# --- refused input ---------------------------------------------------------------------------


def test_stack_without_outputs_changes_nothing(keys_stack):
    keys_stack.outputs = {}
    calls_before = list(keys_stack.sm.calls)

    code = keys_stack.run("rotate", "signing", "--stack", "dev", "--yes")

    assert code == 2
    err = keys_stack.stderr.getvalue()
    assert "stack output `project`: missing" in err
    assert "stack output `secret_ids`: missing" in err
    assert keys_stack.sm.calls == calls_before


def test_missing_credentials_and_operator_are_reported_together(keys_stack):
    from infra.keys.cli import Refused

    def no_credentials(outputs):
        raise Refused(["Google credentials: none found. Fix: run `gcloud auth application-default login`"])

    code = keys_stack.run("rotate", "db", "--stack", "dev", "--yes", secret_client=no_credentials, operator=lambda: None)

    assert code == 2
    err = keys_stack.stderr.getvalue()
    assert "Google credentials: none found" in err
    assert "operator: unknown" in err
    assert keys_stack.states(DB_APP) == {1: "ENABLED"}
    assert keys_stack.database.calls == []


def test_db_rotation_without_a_sql_instance_is_refused(keys_stack):
    del keys_stack.outputs["sql_connection_name"]

    assert keys_stack.run("rotate", "db", "--stack", "dev", "--yes") == 2
    assert "sql_connection_name" in keys_stack.stderr.getvalue()
    assert keys_stack.states(DB_APP) == {1: "ENABLED"}


def test_without_a_terminal_or_yes_nothing_happens(keys_stack, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    assert keys_stack.run("rotate", "event", "--stack", "dev") == 2
    assert "pass --yes" in keys_stack.stderr.getvalue()
    assert keys_stack.states(EVENT) == {1: "ENABLED"}


# --- status and prune ------------------------------------------------------------------------------


def arrange_rotated_event_key(stack, disabled_at: str) -> None:
    """The state two completed event-key rotations leave (v1 -> v2 -> v3), made directly: rotations are
    tested above. v1 is the version Pulumi created; v2 was disabled by the CLI at `disabled_at`."""
    name = stack.secret_name(EVENT)
    for value in (b"SecondEventKey0123456789abcdefghijklmnopq", b"ThirdEventKey0123456789abcdefghijklmnopqr"):
        stack.client.add_secret_version(parent=name, payload={"data": value})
    for number in (1, 2):
        stack.client.disable_secret_version(name=f"{name}/versions/{number}")
    stack.client.update_secret(
        secret={"name": name, "version_aliases": {"current": 3, "previous": 2}, "annotations": {"kit-v2-disabled-at": disabled_at, "kit-v3-created-by": "ops@acme-example.com"}},
        update_mask=field_mask_pb2.FieldMask(paths=["version_aliases", "annotations"]),
    )
    versions_file = Path(stack.vm.paths.data) / "secret-versions.env"
    versions_file.write_text("INNGEST_SIGNING_KEY=1\nINNGEST_SIGNING_KEY_FALLBACK=\nINNGEST_EVENT_KEY=3\nINNGEST_EVENT_KEYS=3\n")


def test_status_shows_versions_fingerprints_what_the_vm_reads_and_the_due_date(keys_stack):
    arrange_rotated_event_key(keys_stack, "2026-11-20T12:00:00Z")
    keys_stack.sm.client().update_secret(
        secret={"name": keys_stack.secret_name(SIGNING), "rotation": {"next_rotation_time": datetime(2027, 2, 1), "rotation_period": timedelta(days=90)}},
        update_mask=field_mask_pb2.FieldMask(paths=["rotation"]),
    )
    keys_stack.clock = lambda: datetime(2026, 12, 1)

    assert keys_stack.run("status", "--stack", "dev") == 0

    out = keys_stack.stdout.getvalue()
    signing_block = out[out.index("inngest-signing-key"):out.index("inngest-event-key")]
    event_block = out[out.index("inngest-event-key"):out.index("db-app-password")]
    assert re.search(rf"v3 +ENABLED +age \S+ +sha256 {fp(keys_stack.value(EVENT, 3))} +alias current +live: INNGEST_EVENT_KEY, INNGEST_EVENT_KEYS", event_block)
    assert re.search(r"v2 +DISABLED +age \S+ +sha256 - +alias previous$", event_block, re.MULTILINE)
    assert re.search(rf"v1 +ENABLED .*sha256 {fp(keys_stack.value(SIGNING, 1))} +live: INNGEST_SIGNING_KEY$", signing_block, re.MULTILINE)
    assert "rotation due 2027-02-01 00:00 UTC (in 62d), every 90d" in signing_block
    assert "rotation not scheduled" in event_block
    assert "live: DB_APP_PASSWORD (as app)" in out
    assert_nothing_secret_leaked(keys_stack)


def test_prune_destroys_only_disabled_unused_versions_past_retention(keys_stack):
    arrange_rotated_event_key(keys_stack, "2026-11-20T12:00:00Z")
    keys_stack.clock = lambda: datetime(2026, 12, 10)
    assert keys_stack.run("prune", "--stack", "dev", "--yes") == 0
    assert "nothing to prune" in keys_stack.stdout.getvalue()

    keys_stack.clock = lambda: datetime(2026, 12, 21)
    assert keys_stack.run("prune", "--stack", "dev", "--dry-run") == 0
    assert "inngest-event-key: destroy v2\n" in keys_stack.stdout.getvalue()
    assert keys_stack.states(EVENT) == {1: "DISABLED", 2: "DISABLED", 3: "ENABLED"}

    assert keys_stack.run("prune", "--stack", "dev", "--yes") == 0, keys_stack.output()
    # v1 is Pulumi's: destroyed, the program would create it again with its old value.
    assert keys_stack.states(EVENT) == {1: "DISABLED", 2: "DESTROYED", 3: "ENABLED"}
    assert keys_stack.value(EVENT, 2) is None
    assert keys_stack.aliases(EVENT) == {"current": 3}, "an alias still names the destroyed version"
    assert set(keys_stack.annotations(EVENT)) == {"kit-v3-created-by"}
    assert keys_stack.audit_lines()[-1]["action"] == "keys-prune"
    for logical in (SIGNING, DB_APP, DB_INNGEST):
        assert keys_stack.states(logical) == {1: "ENABLED"}, "prune touched a version in use"


def test_prune_never_destroys_what_the_vms_file_still_names(keys_stack):
    arrange_rotated_event_key(keys_stack, "2026-01-01T00:00:00Z")
    (Path(keys_stack.vm.paths.data) / "secret-versions.env").write_text("INNGEST_EVENT_KEY=3\nINNGEST_EVENT_KEYS=2,3\n")
    keys_stack.clock = lambda: datetime(2026, 12, 21)

    assert keys_stack.run("prune", "--stack", "dev", "--yes") == 0
    assert keys_stack.states(EVENT)[2] == "DISABLED"


def test_status_still_reports_secret_manager_when_the_vm_is_unreachable(keys_stack):
    from tests.support.sshd import free_port

    keys_stack.target = replace(keys_stack.target, port=free_port())

    assert keys_stack.run("status", "--stack", "dev") == 0

    out = keys_stack.stdout.getvalue()
    assert out.startswith("VM: unreachable (SshConnectionError")
    assert f"sha256 {fp(keys_stack.value(SIGNING, 1))}" in out
