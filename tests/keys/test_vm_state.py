"""What a rerun reads from the VM: the versions file and whether the last run ended verified."""

from __future__ import annotations

import json

import pytest

from infra.keys.runner import ended_cleanly, parse_vm_state
from infra.keys.verify import parse_check
from infra.keys.vm_commands import apply_versions, read_vm_state
from infra.remote.vm import Vm


def test_present_file_and_audit_tail_are_split_apart():
    state = parse_vm_state('versions-file: present\nINNGEST_SIGNING_KEY=2\n--- audit tail\n{"action":"deploy"}\n')
    assert state.versions_text == "INNGEST_SIGNING_KEY=2\n"
    assert state.audit_tail == ('{"action":"deploy"}',)


def test_absent_file_is_none_and_unexpected_output_is_an_error():
    assert parse_vm_state("versions-file: absent\n--- audit tail\n").versions_text is None
    with pytest.raises(ValueError, match="expected header"):
        parse_vm_state("sh: 1: cannot open\n")


@pytest.mark.parametrize(
    ("lines", "clean"),
    [
        ([], False),
        (['{"action":"keys-rotate","kind":"signing","result":"rolled back"}'], True),
        (['{"action":"keys-rotate","kind":"signing","result":"failed"}'], False),
        (['{"action":"keys-rotate","kind":"signing","result":"completed"}', '{"action":"keys-rotate","kind":"event","result":"failed"}'], True),
        (['{"action":"keys-rotate","kind":"signing","result":"paused"}', "a note written by hand"], True),
    ],
)
def test_only_a_verified_end_of_the_same_kind_spares_the_repeat_restart(lines, clean):
    state = parse_vm_state("versions-file: absent\n--- audit tail\n" + "".join(line + "\n" for line in lines))
    assert ended_cleanly(state, "signing") is clean


def test_remote_commands_pass_every_value_as_a_parameter():
    vm = Vm()
    assert read_vm_state(vm)[:3] == ["sudo", "-n", "sh"]
    assert read_vm_state(vm)[-3:] == ["/srv/kit/secret-versions.env", "/srv/kit/audit.log", "50"]
    argv = apply_versions(vm, "app")
    assert argv[:4] == ["sudo", "-n", "sh", "-c"]
    assert argv[5:9] == ["apply-versions", "/srv/kit/secret-versions.env", "/srv/kit/current/fetch-secrets.sh", "app"]
    assert argv[9:] == ["sudo", "-n", "docker", "compose", "-p", "kit", "-f", "/srv/kit/current/docker-compose.yml", "--project-directory", "/srv/kit/current"]


def check_output(*, app="healthy", health="exit 0", sync="exit 0") -> str:
    rows = [
        json.dumps({"Service": "app", "Name": "kit-app-1", "State": "running", "Health": app, "Status": "Up"}),
        json.dumps({"Service": "inngest", "Name": "kit-inngest-1", "State": "running", "Health": "", "Status": "Up"}),
    ]
    text = "\n".join(rows) + "\n--- health\n" + health + "\n"
    return text + (f"--- sync\n{sync}\n" if sync is not None else "")


def test_a_healthy_service_with_health_and_sync_passes():
    assert parse_check(check_output(), "app").problem("app") is None
    assert parse_check(check_output(sync=None), "inngest").problem("inngest") is None


def test_each_failure_is_named_and_only_a_sick_container_is_final():
    starting = parse_check(check_output(app="starting"), "app")
    assert starting.problem("app") == "app is running/starting" and not starting.broken
    unhealthy = parse_check(check_output(app="unhealthy"), "app")
    assert unhealthy.broken
    no_health = parse_check(check_output(health="curl: (7) Failed to connect\nexit 7"), "app")
    assert no_health.problem("app") == "Inngest /health failed: curl: (7) Failed to connect (exit 7)"
    no_sync = parse_check(check_output(sync="curl: (22) The requested URL returned error: 401\nexit 22"), "app")
    assert "the sync between Inngest and the app failed: curl: (22)" in no_sync.problem("app")
    assert parse_check(check_output(), "redis").problem("redis") == "redis is not running"


def test_a_redis_step_reloads_the_acl_file_instead_of_restarting_redis():
    argv = apply_versions(Vm(), "redis")
    assert argv[:4] == ["sudo", "-n", "sh", "-c"]
    assert argv[5:9] == ["apply-versions", "/srv/kit/secret-versions.env", "/srv/kit/current/fetch-secrets.sh", "/var/lib/inngest-kit/secrets/inngest/redis-password"]
    assert argv[9:] == ["sudo", "-n", "docker", "compose", "-p", "kit", "-f", "/srv/kit/current/docker-compose.yml", "--project-directory", "/srv/kit/current"]
    script = argv[4]
    assert '"$fetch" redis' in script and "exec -T redis redis-cli" in script and "ACL LOAD" in script
    assert " up " not in script and "restart" not in script
