"""The recording docker stand-in behaves like compose where the deploy relies on it."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.fake_docker import FakeDocker

COMPOSE = """
services:
  app:
    image: ghcr.io/acme/web:1
    env_file: [app.env]
    healthcheck: {test: ["CMD", "true"]}
  caddy:
    image: caddy:2
    volumes: ["./Caddyfile:/etc/caddy/Caddyfile:ro"]
"""


@pytest.fixture
def fake(tmp_path):
    return FakeDocker.install(tmp_path / "docker")


@pytest.fixture
def release(tmp_path):
    directory = tmp_path / "release"
    directory.mkdir()
    (directory / "docker-compose.yml").write_text(COMPOSE)
    (directory / "app.env").write_text("LOG_LEVEL=info\n")
    (directory / "Caddyfile").write_text(":80\n")
    return directory


def docker(fake, release, *args):
    return subprocess.run([fake.executable, "compose", "-p", "kit", "-f", str(release / "docker-compose.yml"), *args], check=False, capture_output=True, text=True, cwd=release)


def test_up_creates_then_leaves_unchanged_services_alone(fake, release):
    assert docker(fake, release, "up", "-d", "--remove-orphans").returncode == 0
    assert docker(fake, release, "up", "-d", "--remove-orphans").returncode == 0
    assert [(e["action"], e["service"]) for e in fake.events()] == [("create", "app"), ("create", "caddy")]


def test_env_file_change_recreates_only_that_service(fake, release):
    docker(fake, release, "up", "-d")
    (release / "app.env").write_text("LOG_LEVEL=debug\n")
    (release / "Caddyfile").write_text(":8080\n")  # a bind-mounted file: compose cannot see it
    docker(fake, release, "up", "-d")
    assert [(e["action"], e["service"]) for e in fake.events()][2:] == [("recreate", "app")]
    assert fake.services()["app"]["created"] == 2 and fake.services()["caddy"]["created"] == 1


def test_ps_reports_one_json_object_per_line_with_controllable_health(fake, release):
    docker(fake, release, "up", "-d")
    fake.set_health("app", "unhealthy")
    rows = [json.loads(line) for line in docker(fake, release, "ps", "--format", "json").stdout.splitlines()]
    assert [(r["Service"], r["State"], r["Health"], r["Name"]) for r in rows] == [("app", "running", "unhealthy", "kit-app-1"), ("caddy", "running", "", "kit-caddy-1")]


def test_missing_env_file_fails_like_compose(fake, release):
    (release / "app.env").unlink()
    result = docker(fake, release, "up", "-d")
    assert result.returncode == 1 and "app.env not found" in result.stderr
    assert fake.services() == {}


def test_records_every_call_and_injected_failures(fake, release):
    fake.fail("up", stderr="pull access denied", times=1)
    first = docker(fake, release, "up", "-d")
    second = docker(fake, release, "up", "-d")
    assert (first.returncode, first.stderr.strip(), second.returncode) == (1, "pull access denied", 0)
    assert len(fake.compose_calls("up")) == 2 and fake.calls()[0]["cwd"] == str(release)


def test_down_removes_and_orphans_go(fake, release):
    docker(fake, release, "up", "-d")
    (release / "docker-compose.yml").write_text("services:\n  app:\n    image: ghcr.io/acme/web:1\n    env_file: [app.env]\n    healthcheck: {test: [CMD, 'true']}\n")
    docker(fake, release, "up", "-d", "--remove-orphans")
    assert sorted(fake.services()) == ["app"]
    docker(fake, release, "down")
    assert fake.services() == {}


def test_unsupported_commands_fail_loudly(fake, release):
    result = subprocess.run([fake.executable, "run", "busybox"], check=False, capture_output=True, text=True)
    assert result.returncode == 1 and "stand-in does not support" in result.stderr
