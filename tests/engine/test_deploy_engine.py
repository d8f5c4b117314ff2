"""The kit's deploy on a real engine: what it creates, what it recreates, and what its health gate lets through."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import pytest

from infra import naming
from infra.deploy.deploy import DeployError
from tests.support.engine_bed import bed_config, local_caddyfile
from tests.support.engine_checks import creations
from tests.support.keys_stack import INITIAL_VALUES

SERVICES = ("app", "caddy", "inngest", "redis")


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def test_first_deploy_brings_every_service_up_healthy_and_syncs_the_app(bed):
    containers = bed.engine.containers()
    assert sorted(containers) == sorted(SERVICES)
    assert all(c["status"] == "running" and c["health"] == "healthy" for c in containers.values()), containers
    state = bed.standin()
    # The real SDK registered its function with the server's signing key (the stand-in refuses any other).
    assert state["apps"] == {"kit-test-app": ["kit-test-app-echo"]}
    argv = state["argv"]
    assert argv[argv.index("--signing-key") + 1] == f"sha256:{fingerprint(INITIAL_VALUES[naming.SIGNING_KEY])}"
    assert argv[argv.index("--event-key") + 1] == f"sha256:{fingerprint(INITIAL_VALUES[naming.EVENT_KEY])}"
    assert argv[argv.index("--redis-uri") + 1].startswith("redis://")
    assert ":***@" in argv[argv.index("--redis-uri") + 1] or "@" not in argv[argv.index("--redis-uri") + 1]
    # No secret value is in any container's configuration (docker inspect).
    inspected = bed.engine.docker("inspect", *(c["id"] for c in containers.values())).stdout
    assert not [name for name, value in INITIAL_VALUES.items() if value in inspected]
    status, body = bed.app_get("/")
    assert status == 200 and json.loads(body)["app"] == ""


def test_a_caddyfile_change_recreates_caddy_once_and_nothing_else(bed):
    before = bed.engine.containers()
    since = time.time()
    result = bed.deploy(bed.files(caddyfile=local_caddyfile(bed_config(), marker="a comment changes the file")))
    assert result.uploaded == ("Caddyfile",) and result.recreated == ("caddy",)
    assert creations(bed.engine, since) == {"caddy": 1}
    after = bed.engine.containers()
    assert {s for s in SERVICES if after[s]["id"] != before[s]["id"]} == {"caddy"}
    bed.deploy(bed.files())  # back to the session's release


def test_a_change_compose_sees_and_one_it_cannot_see_recreate_the_app_once(bed):
    """app.env (compose sees it) and app-healthcheck.sh (mounted: compose cannot see it) change together.
    Before the fix, `up` recreated the app for the env and `--force-recreate` did it again."""
    changed = bed.files(bed_config(env={"FEATURE_FLAG": "on"}, healthPath="/healthz?probe=1"))
    since = time.time()
    result = bed.deploy(changed)
    assert set(result.uploaded) == {"app.env", "app-healthcheck.sh"} and result.recreated == ("app",)
    assert creations(bed.engine, since) == {"app": 1}
    since = time.time()
    bed.deploy(bed.files())
    assert creations(bed.engine, since) == {"app": 1}


def test_a_rerun_of_the_live_release_recreates_nothing(bed):
    """Pulumi lost track (or a previous run failed after its work): the same release again."""
    before = bed.engine.containers()
    bed.state = None
    since = time.time()
    result = bed.deploy(bed.files())
    assert result.uploaded == () and result.recreated == ()
    assert creations(bed.engine, since) == {}
    assert {s: c["id"] for s, c in bed.engine.containers().items()} == {s: c["id"] for s, c in before.items()}


class CutAtRecreate:
    """Session factory whose connection breaks for good when the deploy is about to force a recreation."""

    def __init__(self, bed):
        self.bed = bed
        self.cut = False

    def __call__(self):
        return _Cuttable(self.bed.session(), self)


class _Cuttable:
    def __init__(self, session, switch: CutAtRecreate):
        self.session, self.switch = session, switch

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.session.close()

    def run(self, argv, **kwargs):
        if "--force-recreate" in argv:
            self.switch.cut = True
        if self.switch.cut:
            raise ConnectionResetError("connection lost (injected)")
        return self.session.run(argv, **kwargs)

    def upload(self, *args, **kwargs):
        if self.switch.cut:
            raise ConnectionResetError("connection lost (injected)")
        return self.session.upload(*args, **kwargs)


def test_an_interrupted_deploy_is_finished_by_a_rerun_that_recreates_only_what_it_left(bed):
    """The connection dies after `current` switched to a new Caddyfile, before caddy was recreated: the
    rerun recreates caddy, once, and nothing else."""
    from infra.deploy.deploy import deploy
    from infra.render import EXECUTABLE_FILES, services_restarted_by

    files = bed.files(caddyfile=local_caddyfile(bed_config(), marker="interrupted"))
    with pytest.raises(DeployError):
        deploy(CutAtRecreate(bed), files, bed.state, bed.vm, owner="root", restarted_by=services_restarted_by, executable_files=EXECUTABLE_FILES, settings=bed.settings)
    since = time.time()
    bed.state = None
    result = bed.deploy(files)
    assert result.uploaded == () and result.recreated == ("caddy",)
    assert creations(bed.engine, since) == {"caddy": 1}
    bed.deploy(bed.files())


def test_a_broken_caddyfile_fails_the_deploy_with_caddys_own_error_and_rolls_back(bed):
    """Caddy exits at once on this file and the engine restarts it over and over. Before the fix the gate
    took its empty health for "no healthcheck"; the deploy failed later, at the sync, without caddy's words."""
    live = bed.state.release_id
    broken = local_caddyfile(bed_config()) + ":9999 {\n\tnot_a_directive\n}\n"
    fast = dataclasses.replace(bed.settings, health_timeout=10.0)
    with pytest.raises(DeployError) as raised:
        bed.deploy(bed.files(caddyfile=broken), settings=fast)
    message = str(raised.value)
    # Caddy 2.11.7's `caddy run` exits 1 on this file without logging why: its own last lines are what
    # there is to show, and they name the file it loaded.
    assert "caddy is restarting" in message.split("\n", 1)[0], message
    assert "last 20 log lines of caddy" in message and '"file":"/etc/caddy/Caddyfile"' in message, message
    assert raised.value.rolled_back_to == live
    bed.state = dataclasses.replace(bed.state, release_id=live) if bed.state else None
    bed.wait_healthy(timeout=60)
    status, _ = bed.app_get("/")
    assert status == 200
