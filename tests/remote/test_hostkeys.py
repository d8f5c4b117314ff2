"""Parsing guest attributes into host key lines, and waiting for the guest agent to publish them."""

from __future__ import annotations

import paramiko
import pytest

from infra.remote.hostkeys import (
    HostKeysNotReady,
    parse_guest_attributes,
    wait_for_host_keys,
)
from tests.support.sshd import generate_ed25519

ED25519 = generate_ed25519().public_line.split()
ECDSA = paramiko.ECDSAKey.generate()


def response(*items: dict, shape: str = "query_value") -> dict:
    return {"query_path": "hostkeys/", shape: {"items": list(items)}}


def test_key_type_and_blob_become_key_lines_strongest_first():
    parsed = parse_guest_attributes(
        response(
            {"namespace": "hostkeys", "key": "ecdsa-sha2-nistp256", "value": ECDSA.get_base64()},
            {"namespace": "hostkeys", "key": "ssh-ed25519", "value": ED25519[1]},
        )
    )
    assert parsed == (f"ssh-ed25519 {ED25519[1]}", f"ecdsa-sha2-nistp256 {ECDSA.get_base64()}")


def test_values_that_are_whole_lines_and_the_rest_shape_are_accepted():
    parsed = parse_guest_attributes(response({"namespace": "hostkeys", "key": "ssh-ed25519", "value": f"ssh-ed25519 {ED25519[1]} root@vm"}, shape="queryValue"))
    assert parsed == (f"ssh-ed25519 {ED25519[1]}",)


def test_other_namespaces_unknown_types_and_damaged_values_are_ignored():
    parsed = parse_guest_attributes(
        response(
            {"namespace": "other", "key": "ssh-ed25519", "value": "ssh-ed25519 AAAAignored"},
            {"namespace": "hostkeys", "key": "ssh-dss", "value": "AAAAB3NzaC1kc3M="},
            {"namespace": "hostkeys", "key": "ecdsa-sha2-nistp256", "value": "not base64 !"},
            {"namespace": "hostkeys", "key": "ssh-ed25519", "value": ED25519[1]},
        )
    )
    assert parsed == (f"ssh-ed25519 {ED25519[1]}",)


def test_no_keys_means_not_ready():
    with pytest.raises(HostKeysNotReady):
        parse_guest_attributes({"query_path": "hostkeys/"})


def test_waits_until_the_guest_agent_has_published_the_keys():
    answers = [HostKeysNotReady("404"), response(), response({"namespace": "hostkeys", "key": "ssh-ed25519", "value": ED25519[1]})]
    waits: list[float] = []

    def fetch():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for_host_keys(fetch, attempts=5, interval=3.0, sleep=waits.append) == (f"ssh-ed25519 {ED25519[1]}",)
    assert waits == [3.0, 3.0]


def test_gives_up_after_the_attempts_with_the_fix():
    calls: list[int] = []
    waits: list[float] = []

    def fetch():
        calls.append(1)
        return response()

    with pytest.raises(HostKeysNotReady, match="enable-guest-attributes=TRUE"):
        wait_for_host_keys(fetch, attempts=4, interval=2.0, sleep=waits.append)
    assert len(calls) == 4 and waits == [2.0, 2.0, 2.0]


def test_other_errors_are_not_retried():
    waits: list[float] = []

    def fetch():
        raise PermissionError("403: compute.instances.getGuestAttributes denied")

    with pytest.raises(PermissionError):
        wait_for_host_keys(fetch, attempts=4, sleep=waits.append)
    assert waits == []
