# ruff: noqa: F811  (the deploy fixtures are imported from test_deploy_e2e and named as parameters)
"""The two races of a VM without a lock, against the real sshd: each test forces the interleaving that
corrupts, and runs it with the lock (it must hold) and with the lock taken out (it must break, which
proves the test can see the race at all).

- Two deploys at once: B reads the live manifest, A deploys and switches `current`, then B copies its
  "unchanged" files from what is now A's release; B's release then holds A's files under B's manifest.
- Two key rotations at once: B observes the versions file, A rotates the signing key and disables the
  old version, then B writes the versions file from its stale view, naming the disabled version: the
  stack cannot start at the next boot.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from infra.deploy.deploy import deploy
from infra.deploy.release import file_manifest, parse_manifest, release_id_for
from infra.ops import lock as vm_lock
from infra.remote.ssh import connect
from tests.deploy.support import EXECUTABLE_FILES, restarted_by, stack_files
from tests.deploy.test_deploy_e2e import fake, probe, stand  # noqa: F401  (fixtures)

BOUND = 60.0  # seconds any one side waits for the other; a bound, not an expectation


def without_the_lock(monkeypatch):
    """The code as it was before the lock: acquiring succeeds at once and holds nothing."""

    def no_lock(session, vm, request, **options):
        return vm_lock.HeldLock(vm, request.details("no-lock", vm_lock.datetime.now(vm_lock.UTC)), released=True)

    monkeypatch.setattr(vm_lock, "acquire", no_lock)


def verdict(locked: bool, check) -> None:
    """With the lock the check must pass; without it the same interleaving must break it."""
    if locked:
        check()
    else:
        with pytest.raises(AssertionError):
            check()


class Signal(io.StringIO):
    """A progress sink that raises an event when a line says the lock is busy."""

    def __init__(self, event: threading.Event):
        super().__init__()
        self.event = event

    def write(self, text):
        if "the VM is locked by" in text:
            self.event.set()
        return super().write(text)


def live_files_match_live_manifest(root: str) -> tuple[bool, dict]:
    manifest = parse_manifest(Path(root, ".manifest.json").read_text())
    differing = {path: digest for path, digest in manifest.items() if file_manifest({path: Path(root, path).read_text()})[path] != digest}
    return not differing, differing


@pytest.mark.parametrize("locked", [True, False], ids=["with-the-lock", "without-the-lock"])
def test_two_deploys_at_once_leave_a_live_release_whose_files_match_its_manifest(stand, sshd, monkeypatch, locked):  # noqa: F811
    if not locked:
        without_the_lock(monkeypatch)
    base = stand.seed(stack_files(sshd.root))
    files_a = stack_files(sshd.root, log_level="debug")  # A changes app.env
    files_b = stack_files(sshd.root, app_version="2.0.0")  # B changes the compose file only
    # b_arrived: B has read the live manifest (no lock) or is waiting for the lock.
    a_at_read, b_arrived, a_done = (threading.Event() for _ in range(3))
    results: dict[str, object] = {}

    class Paced:
        """A real SSH session that pauses at the read of the live manifest, to force the interleaving."""

        def __init__(self, side):
            self.side = side
            self.session = connect(sshd.target())

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.session.close()

        def run(self, argv, **options):
            reads_manifest = argv[0] == "cat" and argv[-1].endswith("current/.manifest.json")
            if reads_manifest and self.side == "a":
                a_at_read.set()
                assert b_arrived.wait(BOUND), "B neither read nor waited"
            result = self.session.run(argv, **options)
            if reads_manifest and self.side == "b":
                b_arrived.set()
                assert a_done.wait(BOUND), "A did not finish"
            return result

        def upload(self, *args, **kwargs):
            return self.session.upload(*args, **kwargs)

    settings = stand.settings.__class__(**{**stand.settings.__dict__, "lock_wait": BOUND, "lock_poll": 0.05})

    def run(side, files, report):
        try:
            results[side] = deploy(lambda: Paced(side), files, None, stand.vm, owner=sshd.user, restarted_by=restarted_by, executable_files=EXECUTABLE_FILES, settings=settings, report=report)
        except Exception as error:  # noqa: BLE001 (the assertion below shows it)
            results[side] = error
        finally:
            if side == "a":
                a_done.set()

    a = threading.Thread(target=run, args=("a", files_a, lambda text: None))
    a.start()
    assert a_at_read.wait(BOUND)
    b = threading.Thread(target=run, args=("b", files_b, lambda text: b_arrived.set() if "the VM is locked by" in text else None))
    b.start()
    a.join(BOUND * 3)
    b.join(BOUND * 3)

    def both_deployed_in_turn():
        id_a, id_b = release_id_for(file_manifest(files_a)), release_id_for(file_manifest(files_b))
        assert not isinstance(results["a"], Exception), results["a"]
        # Without the lock, B's hash check now catches A's files in B's release (it would have gone live
        # before that check existed); with the lock, B waits and deploys over A's release cleanly.
        assert not isinstance(results["b"], Exception), f"the second deploy failed: {results['b']}"
        assert (stand.current(), stand.previous()) == (id_b, id_a)
        matches, differing = live_files_match_live_manifest(stand.vm.paths.current)
        assert matches, f"the live release {id_b} holds files its manifest does not name: {sorted(differing)}"
        assert stand.live_file("app.env") == files_b["app.env"] and stand.live_file("docker-compose.yml") == files_b["docker-compose.yml"]
        assert base.release_id not in (id_a, id_b)

    verdict(locked, both_deployed_in_turn)


@pytest.mark.parametrize("locked", [True, False], ids=["with-the-lock", "without-the-lock"])
def test_two_key_rotations_at_once_never_leave_the_versions_file_naming_a_disabled_version(keys_stack, monkeypatch, locked):
    from infra import naming
    from infra.keys.model import VERSIONS_FILE_NAME

    if not locked:
        without_the_lock(monkeypatch)
    # b_arrived: B has observed (no lock) or is waiting for the lock.
    a_started, b_arrived, a_done = (threading.Event() for _ in range(3))
    codes: dict[str, int] = {}
    outputs = {"a": io.StringIO(), "b": Signal(b_arrived)}
    b_paced = []

    def pace_a(step):
        if not a_started.is_set():
            a_started.set()  # A holds the lock (when there is one) and has observed
            assert b_arrived.wait(BOUND), "B neither observed nor waited"

    def pace_b(step):
        if not b_paced:
            b_paced.append(step)
            b_arrived.set()
            assert a_done.wait(BOUND), "A did not finish"

    def run(side, kind, pace):
        try:
            codes[side] = keys_stack.run("rotate", kind, "--stack", "dev", "--yes", "--grace", "0s", "--lock-wait", "60s",
                                         on_step=pace, stdout=outputs[side], stderr=outputs[side])
        finally:
            if side == "a":
                a_done.set()

    a = threading.Thread(target=run, args=("a", "signing", pace_a))
    a.start()
    assert a_started.wait(BOUND)
    b = threading.Thread(target=run, args=("b", "event", pace_b))
    b.start()
    a.join(BOUND * 3)
    b.join(BOUND * 3)

    def versions_file_names_enabled_versions_and_both_completed():
        versions = dict(line.split("=", 1) for line in (Path(keys_stack.vm.paths.data) / VERSIONS_FILE_NAME).read_text().splitlines() if "=" in line)
        named = {(naming.SIGNING_KEY, versions["INNGEST_SIGNING_KEY"]), (naming.EVENT_KEY, versions["INNGEST_EVENT_KEY"])}
        disabled = [(logical, number) for logical, number in named if keys_stack.states(logical)[int(number)] != "ENABLED"]
        assert not disabled, f"the versions file names disabled versions {disabled}: the stack would not start at the next boot"
        assert codes == {"a": 0, "b": 0}, {side: output.getvalue()[-2000:] for side, output in outputs.items()}
        assert keys_stack.states(naming.SIGNING_KEY) == {1: "DISABLED", 2: "ENABLED"}
        assert keys_stack.states(naming.EVENT_KEY) == {1: "DISABLED", 2: "ENABLED"}
        assert "the VM is locked by ops@acme-example.com" in outputs["b"].getvalue() and "keys rotate signing" in outputs["b"].getvalue()

    verdict(locked, versions_file_names_enabled_versions_and_both_completed)
