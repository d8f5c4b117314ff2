"""Apply a release to the VM over one SSH session, and put the previous one back if it fails.

The steps are the builders in `infra/remote/commands.py`, run in order, holding the VM's lock
(infra/ops/lock.py) throughout:
take the lock -> read the live manifest -> build the new release dir (copy the unchanged files, upload
the changed ones, check every file's hash, manifest last) -> pull the images not on the VM yet -> switch `current` -> fetch secrets ->
`compose up` -> recreate what compose cannot see -> wait for health -> sync the app with Inngest ->
point `previous` at the old release -> audit line -> give the lock back.

What a failure at each point leaves (the fault sweep in tests/deploy/test_fault_sweep.py cuts the
connection at every one of them):
- before the switch (a failed image pull included): `current` untouched; the half-built release directory is rebuilt by the rerun;
- from the switch (included: a drop during it leaves unknown which way the link points) to the end of
  the health checks: switched back to the previous release and brought up again, over a fresh
  connection if this one died; on a first deploy the new release stays for inspection;
- after the checks: the deploy has succeeded; a failed `previous` switch or audit line is a warning.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from infra.deploy import health
from infra.deploy.release import (
    ReleasePlan,
    RestartedBy,
    check_files,
    file_manifest,
    manifest_document,
    parse_manifest,
    plan_release,
    release_id_for,
    sha256_hex,
)
from infra.images import compose_images, pull_fix
from infra.ops import lock as vm_lock
from infra.ops.audit import entry as audit_entry
from infra.ops.commands import audit_append
from infra.remote import commands, disk
from infra.remote.commands import MANIFEST_FILE, VmEndpoints
from infra.remote.ssh import RemoteCommandError
from infra.remote.vm import Vm


class RemoteSession(Protocol):
    """What the deploy needs of `infra.remote.ssh.Session`."""

    def run(self, argv: Sequence[str], *, check: bool = True, stdin: bytes | None = None, timeout: float | None = None): ...

    def upload(self, path: str, content: bytes, mode: int = 0o644) -> None: ...


SessionFactory = Callable[[], AbstractContextManager[RemoteSession]]


@dataclass(frozen=True)
class DeploySettings:
    """How long the deploy waits, and where it probes. Tests shrink the waits."""

    health_timeout: float = 300.0  # seconds for every service to be running and healthy, then for Inngest's /health
    poll_interval: float = 2.0
    sync_attempts: int = 5  # the app may need a moment after turning healthy before it can register
    sync_interval: float = 3.0
    command_timeout: float = 900.0  # bounds each remote command; `compose up` may pull images
    endpoints: VmEndpoints = field(default_factory=VmEndpoints)
    lock_wait: float = vm_lock.DEFAULT_WAIT  # seconds to wait for another operation's lock on the VM
    lock_poll: float = vm_lock.DEFAULT_POLL


@dataclass(frozen=True)
class DeployState:
    """What the Pulumi state remembers of the last successful deploy."""

    release_id: str
    manifest: Mapping[str, str]


@dataclass(frozen=True)
class DeployResult:
    release_id: str
    manifest: dict[str, str]
    previous_release_id: str | None  # what was live on the VM before this deploy
    uploaded: tuple[str, ...]  # files sent over the connection (the manifest not counted)
    recreated: tuple[str, ...]  # services recreated explicitly, beyond what `compose up` decided
    drift: bool  # the VM's live release was not the one the Pulumi state remembered
    warnings: tuple[str, ...] = ()  # after a verified release went live: what did not finish, and what to do


class DeployStepError(Exception):
    """A step on the VM did not reach its goal (health, sync) within its bounds."""


class DiskFullError(DeployStepError):
    """The VM's disk is full; the message says where and how to free space."""


class DeployError(Exception):
    """The deploy failed; says what failed, on the VM's own words, and what was done about it."""

    def __init__(self, message: str, *, release_id: str, rolled_back_to: str | None):
        self.release_id = release_id
        self.rolled_back_to = rolled_back_to
        super().__init__(message)


@dataclass(frozen=True)
class _Context:
    vm: Vm
    settings: DeploySettings
    expected_services: tuple[str, ...]
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    healthchecked: frozenset[str] = frozenset()  # services that must reach `healthy`, not just `running`


def deploy(
    session_factory: SessionFactory,
    files: Mapping[str, str],
    previous_state: DeployState | None,
    vm: Vm,
    *,
    owner: str,
    restarted_by: RestartedBy,
    executable_files: frozenset[str] = frozenset(),
    settings: DeploySettings = DeploySettings(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    operator: str | None = None,
    command: str = "pulumi up",
    report: Callable[[str], None] | None = None,
) -> DeployResult:
    """Deploy `files` (relative path -> content) as a release, over one connection from `session_factory`.

    `owner` is the SSH user: release directories belong to it because SFTP uploads cannot use sudo.
    The VM's own `current` manifest, not `previous_state`, decides what changed: the VM is the
    truth, and a mismatch is reported as drift. `operator` and `command` are recorded in the VM's
    lock for whoever else tries to change the VM meanwhile; `report` receives progress lines.
    """
    check_files(files)
    release_id = release_id_for(file_manifest(files))
    say = report or _quiet
    compose_text = files.get(commands.COMPOSE_FILE, "")
    context = _Context(vm, settings, health.compose_services(compose_text), clock, sleep, health.healthchecked_services(compose_text))
    request = vm_lock.LockRequest(operation=f"deploy release {release_id}", command=command, by=operator or owner, ssh_user=owner)
    with session_factory() as raw_session:
        session = _Tracked(raw_session)
        try:
            holding = vm_lock.acquire(session, vm, request, wait=settings.lock_wait, poll=settings.lock_poll, report=say, clock=clock, sleep=sleep)
        except (vm_lock.LockBusy, vm_lock.LockError) as error:
            raise DeployError(f"deploy of release {release_id} did not start: {error}", release_id=release_id, rolled_back_to=None) from error
        except Exception as error:
            raise DeployError(
                f"deploy of release {release_id} did not start: {_what_failed(session, error)}. Nothing on the VM was changed. Run `pulumi up` again once the VM is reachable.",
                release_id=release_id,
                rolled_back_to=None,
            ) from error
        try:
            result = _deploy_locked(session, session_factory, context, files, previous_state, owner, restarted_by, executable_files, holding)
        except DeployError as error:
            if not holding.released and not vm_lock.give_back(holding, session):
                error.args = (f"{error}\n{_LOCK_LEFT}",)
            raise
        if holding.released or vm_lock.give_back(holding, session, report=say):
            return result
        return replace(result, warnings=(*result.warnings, _LOCK_LEFT))


_LOCK_LEFT = (
    "The VM's lock could not be given back (the connection is gone); the next `pulumi up` of this same release takes it over, "
    f"and `{vm_lock.RELEASE_HINT}` breaks it."
)


def _quiet(_text: str) -> None:
    pass


def _deploy_locked(
    session: _Tracked,
    session_factory: SessionFactory,
    context: _Context,
    files: Mapping[str, str],
    previous_state: DeployState | None,
    owner: str,
    restarted_by: RestartedBy,
    executable_files: frozenset[str],
    holding: vm_lock.HeldLock,
) -> DeployResult:
    vm, settings = context.vm, context.settings
    release_id = release_id_for(file_manifest(files))
    try:
        live_manifest = _read_manifest(session, vm, vm.paths.current)
        plan = plan_release(files, live_manifest, restarted_by)
    except Exception as error:
        raise _not_live(session, release_id, None, error) from error
    drift = previous_state is not None and previous_state.release_id != plan.previous_release_id
    if plan.is_unchanged:
        # The VM already holds this release (a rerun after a failure, or a state that lost track):
        # converge by bringing it up, recreating only what the run that switched to it left pending
        # (nothing, when that run completed).
        recreate: tuple[str, ...] = ()
        try:
            recreate = _pending_recreate(session, context, plan.release_id)
            _pull_images(session, context, vm.paths.current, files, plan)
            _bring_up(session, context, recreate)
        except DeployError:
            raise
        except Exception as error:
            raise DeployError(
                f"release {plan.release_id} is current on the VM but bringing it up failed: {_what_failed(session, error)}\n"
                "Nothing was switched. Fix the cause and run `pulumi up` again.",
                release_id=plan.release_id,
                rolled_back_to=None,
            ) from error
        return DeployResult(plan.release_id, plan.manifest, plan.previous_release_id, (), recreate, drift)
    try:
        uploaded = _build_release(session, vm, plan, files, owner, executable_files)
        _pull_images(session, context, vm.paths.release(plan.release_id), files, plan)
        if plan.recreate:
            # Recorded before the switch, so that a rerun after a cut recreates what this run left.
            line = " ".join((plan.release_id, *plan.recreate)) + "\n"
            session.run(commands.write_pending_recreate(vm), stdin=line.encode(), timeout=settings.command_timeout)
    except DeployError:
        raise
    except Exception as error:
        raise _not_live(session, plan.release_id, plan.previous_release_id, error) from error
    try:
        # Inside the rollback: a drop during the switch leaves unknown which release `current` names.
        session.run(commands.switch_link(vm, vm.paths.release(plan.release_id), vm.paths.current), timeout=settings.command_timeout)
        _bring_up(session, context, plan.recreate)
    except Exception as error:
        raise _rolled_back(session_factory, session, context, plan, error, holding) from error
    # The release is live and verified: the deploy has succeeded, whatever happens to the bookkeeping.
    warnings = []
    if plan.previous_release_id is not None:
        try:
            session.run(commands.switch_link(vm, vm.paths.release(plan.previous_release_id), vm.paths.previous), timeout=settings.command_timeout)
        except Exception as error:
            warnings.append(
                f"release {plan.release_id} is live and healthy, but pointing `previous` at release {plan.previous_release_id} failed "
                f"({_what_failed(session, error)}); `previous` still names an older release. Nothing needs doing for the app; the next deploy sets it."
            )
    if not _audit(session, vm, "deploy", actor=owner, release=plan.release_id, previous=plan.previous_release_id, uploaded=list(uploaded), recreated=list(plan.recreate)):
        warnings.append(f"release {plan.release_id} is live and healthy, but its line in the VM's audit log could not be written.")
    return DeployResult(plan.release_id, plan.manifest, plan.previous_release_id, uploaded, plan.recreate, drift, tuple(warnings))


def _not_live(session: _Tracked, release_id: str, live_release: str | None, error: Exception) -> DeployError:
    """A failure before the switch: nothing the stack runs was touched."""
    live = f"Release {live_release} is still current and untouched" if live_release else "No release was current before, and none is now"
    return DeployError(
        f"deploy of release {release_id} stopped before it went live: {_what_failed(session, error)}\n"
        f"{live}. Run `pulumi up` again: it rebuilds the half-built release directory.",
        release_id=release_id,
        rolled_back_to=None,
    )


def _what_failed(session: _Tracked, error: BaseException) -> str:
    """The failure in an operator's words: a command's own error, a full disk, or a lost connection and when."""
    if isinstance(error, (RemoteCommandError, DeployStepError, DeployError, vm_lock.LockBusy, vm_lock.LockError)):
        return str(error)
    return f"the connection to the VM was lost during {session.step} ({type(error).__name__}: {str(error).strip() or 'no message'})"


class _Tracked:
    """The session, remembering which step it is at, so a lost connection can be reported by step."""

    def __init__(self, session: RemoteSession):
        self._session = session
        self.step = "connecting"

    def run(self, argv: Sequence[str], **options):
        self.step = _step_name(argv)
        return self._session.run(argv, **options)

    def upload(self, path: str, content: bytes, mode: int = 0o644) -> None:
        self.step = f"the upload of {path}"
        self._session.upload(path, content, mode)


def _step_name(argv: Sequence[str]) -> str:
    words = list(argv)
    if "-c" in words and words.index("-c") + 2 < len(words):
        return f"the `{words[words.index('-c') + 2]}` step"  # a constant script's $0 names it
    if "compose" in words:
        after = words[words.index("compose") + 1:]
        verbs = [word for word in after if word in ("up", "ps", "down", "restart", "logs")]
        return f"`docker compose {verbs[0] if verbs else ''}`".replace(" `", "`")
    return f"`{' '.join(words[:1] + words[-1:])}`"


def stop_stack(session_factory: SessionFactory, vm: Vm, *, settings: DeploySettings = DeploySettings(), owner: str = "unknown", operator: str | None = None, report: Callable[[str], None] | None = None) -> bool:
    """`compose down` on the live release, keeping every release and all data; False when none is live."""
    request = vm_lock.LockRequest(operation="stop the stack", command="pulumi destroy", by=operator or owner, ssh_user=owner)
    with session_factory() as session, vm_lock.held(session, vm, request, wait=settings.lock_wait, poll=settings.lock_poll, report=report or _quiet):
        if _read_manifest(session, vm, vm.paths.current) is None:
            return False
        session.run(commands.compose_down(vm), timeout=settings.command_timeout)
    return True


def _read_manifest(session: RemoteSession, vm: Vm, release_dir: str) -> dict[str, str] | None:
    result = session.run(commands.read_manifest(vm, release_dir), check=False)
    if result.exit_status != 0:
        return None
    return parse_manifest(result.stdout)


def _build_release(session: RemoteSession, vm: Vm, plan: ReleasePlan, files: Mapping[str, str], owner: str, executable_files: frozenset[str]) -> tuple[str, ...]:
    """Make the release directory complete, every file checked against the manifest; returns the files uploaded."""
    release_dir = vm.paths.release(plan.release_id)
    manifest = manifest_document(plan)
    checklist = commands.release_checklist(plan.manifest)
    try:
        prepared = session.run(
            commands.prepare_release(vm, plan.release_id, owner=owner, manifest_sha256=sha256_hex(manifest), copy_from=None if plan.is_first else vm.paths.current, subdirs=plan.subdirs),
            stdin=checklist,
        )
    except RemoteCommandError as error:
        raise _disk_full_or(session, vm, vm.paths.releases, error) from error
    if prepared.stdout.strip() == "complete":
        return ()  # built by an earlier run, or an older release being returned to
    to_upload = tuple(plan.manifest) if plan.is_first else plan.changed
    if plan.removed and not plan.is_first:
        session.run(commands.remove_files(vm, plan.release_id, plan.removed))
    for path in to_upload:
        mode = 0o755 if path in executable_files else 0o644
        try:
            session.upload(f"{release_dir}/{path}", files[path].encode(), mode)
        except OSError as error:
            # SFTP says only "Failure" when the disk is full; ask the VM how much room is left.
            raise _disk_full_or(session, vm, release_dir, error) from error
    try:
        session.run(commands.verify_release(vm, plan.release_id), stdin=checklist)
    except RemoteCommandError as error:
        raise _disk_full_or(session, vm, release_dir, error) from error
    # Last: a release without its manifest is never switched to.
    try:
        session.upload(f"{release_dir}/{MANIFEST_FILE}", manifest)
    except OSError as error:
        raise _disk_full_or(session, vm, release_dir, error) from error
    return to_upload


def _disk_full_or(session: RemoteSession, vm: Vm, where: str, error: Exception) -> Exception:
    """A DiskFullError when the VM's disk is full, else the error itself."""
    if isinstance(error, RemoteCommandError) and disk.says_no_space(error.stderr):
        return DiskFullError(disk.full_disk_message(vm, where, None))
    step = getattr(session, "step", None)
    try:
        free = disk.parse_free_kb(session.run(disk.free_space(vm, where), check=False).stdout)
    except Exception:  # the connection itself is gone: the original error says more
        return error
    finally:
        if step is not None:
            session.step = step  # report the step that failed, not this probe
    if free is not None and free < disk.MIN_FREE_KB:
        return DiskFullError(disk.full_disk_message(vm, where, free))
    return error


def _pull_images(session: RemoteSession, context: _Context, release_dir: str, files: Mapping[str, str], plan: ReleasePlan) -> None:
    """Every image of the release onto the VM while the live release is untouched, so that a bad
    reference or a registry the VM cannot authenticate to stops the deploy before anything moves."""
    images = compose_images(files.get(commands.COMPOSE_FILE, ""))
    if not images:
        return
    result = session.run(commands.pull_images(context.vm, release_dir, images), check=False, timeout=context.settings.command_timeout)
    if result.exit_status == 0:
        return
    stderr = result.stderr.strip()
    failed = [line[len(commands.PULL_FAILED):] for line in stderr.splitlines() if line.startswith(commands.PULL_FAILED)]
    reason = "\n".join(line for line in stderr.splitlines() if not line.startswith(commands.PULL_FAILED)) or f"exit status {result.exit_status}"
    if failed:
        what = f"image {failed[-1]} could not be pulled on the VM: {reason}\nFix: {pull_fix(failed[-1])}."
    elif result.exit_status == commands.REGISTRY_LOGIN_FAILED_STATUS:
        what = f"the registry login for the release's images failed: {reason}"
    else:
        what = f"pulling the release's images ({', '.join(images)}) failed: {reason}"
    live = f"Release {plan.previous_release_id} is still current and running" if plan.previous_release_id else "Nothing was live before, and nothing was started"
    raise DeployError(
        f"deploy of release {plan.release_id} stopped before switching to it: {what}\n{live}; run `pulumi up` again after the fix.",
        release_id=plan.release_id,
        rolled_back_to=plan.previous_release_id,
    )


def _bring_up(session: RemoteSession, context: _Context, recreate: tuple[str, ...]) -> None:
    vm, settings = context.vm, context.settings
    session.run(commands.fetch_secrets(vm), timeout=settings.command_timeout)
    # The forced recreation first: it creates those services from the new compose model as well, so
    # the `up` after it finds them current and leaves them alone. The other way round, a service
    # whose model and files both changed was recreated twice (once by `up`, once forced).
    if recreate:
        session.run(commands.compose_recreate(vm, recreate), timeout=settings.command_timeout)
        session.run(commands.clear_pending_recreate(vm), timeout=settings.command_timeout)
    session.run(commands.compose_up(vm), timeout=settings.command_timeout)
    _wait_for_services(session, context)
    _wait_for_probe(session, context, settings.endpoints.inngest_health)
    _sync_app(session, context)


def _polls(context: _Context, interval: float) -> int:
    # An upper bound on iterations as well as the deadline, so a stuck clock cannot loop forever.
    return max(1, math.ceil(context.settings.health_timeout / max(interval, 0.001)) + 1)


def _pending_recreate(session: RemoteSession, context: _Context, release_id: str) -> tuple[str, ...]:
    """The services an earlier deploy to `release_id` switched to it but had not recreated yet."""
    result = session.run(commands.read_pending_recreate(context.vm), check=False, timeout=context.settings.command_timeout)
    words = result.stdout.split() if result.exit_status == 0 else []
    if not words or words[0] != release_id:
        return ()
    return tuple(sorted(set(words[1:]) & set(context.expected_services)))


def _wait_for_services(session: RemoteSession, context: _Context) -> None:
    settings = context.settings
    deadline = context.clock() + settings.health_timeout
    problems: tuple[tuple[str, str], ...] = ()
    for _ in range(_polls(context, settings.poll_interval)):
        result = session.run(commands.compose_ps(context.vm), timeout=settings.command_timeout)
        problems = health.unready_services(context.expected_services, health.parse_ps(result.stdout), context.healthchecked)
        if not problems or context.clock() >= deadline:
            break
        context.sleep(settings.poll_interval)
    if problems:
        message = f"services not healthy after {settings.health_timeout:g} s: {'; '.join(why for _, why in problems)}"
        raise DeployStepError(message + _service_logs(session, context, tuple(service for service, _ in problems)))


def _service_logs(session: RemoteSession, context: _Context, services: tuple[str, ...], lines: int = 20) -> str:
    """The failing services' own last log lines, so the deploy's error shows why they failed."""
    result = session.run(commands.compose_logs(context.vm, services, lines=lines), check=False, timeout=context.settings.command_timeout)
    text = (result.stdout or "").strip() or (result.stderr or "").strip()
    if not text:
        return ""
    return f"\nlast {lines} log lines of {', '.join(services)}:\n{text}"


def _wait_for_probe(session: RemoteSession, context: _Context, url: str) -> None:
    settings = context.settings
    deadline = context.clock() + settings.health_timeout
    result = None
    for _ in range(_polls(context, settings.poll_interval)):
        result = session.run(commands.probe(context.vm, url), check=False, timeout=settings.command_timeout)
        if result.exit_status == 0 or context.clock() >= deadline:
            break
        context.sleep(settings.poll_interval)
    if result is not None and result.exit_status != 0:
        raise DeployStepError(f"{url} did not answer with success within {settings.health_timeout:g} s: {result.stderr.strip() or f'curl exit status {result.exit_status}'}")


def _sync_app(session: RemoteSession, context: _Context) -> None:
    settings = context.settings
    url = settings.endpoints.app_sync
    result = None
    for attempt in range(max(1, settings.sync_attempts)):
        if attempt:
            context.sleep(settings.sync_interval)
        result = session.run(commands.sync_app(context.vm, url), check=False, timeout=settings.command_timeout)
        if result.exit_status == 0:
            return
    raise DeployStepError(f"app sync (PUT {url}) failed {settings.sync_attempts} time(s): {result.stderr.strip() if result else ''}")


def _roll_back(session: RemoteSession, context: _Context, plan: ReleasePlan) -> None:
    vm, settings = context.vm, context.settings
    session.run(commands.switch_link(vm, vm.paths.release(plan.previous_release_id), vm.paths.current), timeout=settings.command_timeout)
    session.run(commands.clear_pending_recreate(vm), timeout=settings.command_timeout)
    session.run(commands.fetch_secrets(vm), timeout=settings.command_timeout)
    if plan.recreate:
        # The files compose cannot see changed back as well; recreated first, as in _bring_up.
        session.run(commands.compose_recreate(vm, plan.recreate), timeout=settings.command_timeout)
    session.run(commands.compose_up(vm), timeout=settings.command_timeout)
    _audit(session, vm, "deploy-rolled-back", failed=plan.release_id, release=plan.previous_release_id)


def _audit(session: RemoteSession, vm: Vm, action: str, **fields) -> bool:
    """One line in the VM's audit log (`python -m infra audit`). Best effort: a full disk or a lost
    connection must not fail a deploy that has already succeeded or rolled back; False when not written."""
    line = audit_entry(action, at=datetime.now(UTC), **fields)
    try:
        return session.run(audit_append(vm), stdin=line.encode(), check=False).exit_status == 0
    except Exception:
        return False


def _rolled_back(session_factory: SessionFactory, session: _Tracked, context: _Context, plan: ReleasePlan, error: Exception, holding: vm_lock.HeldLock) -> DeployError:
    """Switch back to the previous release; returns the error to raise, saying what happened."""
    failed = f"deploy of release {plan.release_id} failed: {_what_failed(session, error)}"
    if plan.previous_release_id is None:
        return DeployError(
            f"{failed}\nThis was the first release, so there is nothing to roll back to; it stays current for inspection. Fix the cause and run `pulumi up` again.",
            release_id=plan.release_id,
            rolled_back_to=None,
        )
    try:
        try:
            _roll_back(session, context, plan)
        except (RemoteCommandError, DeployStepError):
            raise
        except Exception:
            # The connection itself broke: one fresh connection for the rollback, which also gives the lock back.
            with session_factory() as fresh:
                _roll_back(fresh, context, plan)
                vm_lock.give_back(holding, fresh)
    except Exception as rollback_error:
        return DeployError(
            f"{failed}\nRolling back to release {plan.previous_release_id} failed too: {_what_failed(session, rollback_error)}\n"
            f"`current` may point at the new release {plan.release_id} (complete, but not verified healthy) or at {plan.previous_release_id}; "
            "run `pulumi up` again once the VM is reachable: it finishes whichever it finds.",
            release_id=plan.release_id,
            rolled_back_to=None,
        )
    return DeployError(f"{failed}\nRolled back: release {plan.previous_release_id} is current again and was brought up. Fix the cause and run `pulumi up` again.", release_id=plan.release_id, rolled_back_to=plan.previous_release_id)
