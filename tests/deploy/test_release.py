"""Release planning: content-addressed ids, what changed, what compose cannot see."""

from __future__ import annotations

import json

import pytest

from infra.deploy.release import ReleaseFilesError, file_manifest, manifest_document, parse_manifest, plan_release, release_id_for

FILES = {"docker-compose.yml": "services: {}\n", "caddy/Caddyfile": ":80\n", "app.env": "A=1\n"}


def restarted_by(path):
    return {"caddy/Caddyfile": ("caddy",)}.get(path, ())


def test_same_files_give_the_same_release_id_and_any_change_a_new_one():
    first = plan_release(FILES, None, restarted_by)
    assert plan_release(dict(reversed(list(FILES.items()))), None, restarted_by).release_id == first.release_id
    assert plan_release({**FILES, "app.env": "A=2\n"}, None, restarted_by).release_id != first.release_id
    assert len(first.release_id) == 16 and int(first.release_id, 16) >= 0


def test_first_release_uploads_everything_and_lets_compose_create_everything():
    plan = plan_release(FILES, None, restarted_by)
    assert plan.is_first and not plan.is_unchanged
    assert plan.changed == ("app.env", "caddy/Caddyfile", "docker-compose.yml")
    assert plan.recreate == () and plan.subdirs == ("caddy",)


def test_a_change_to_a_bind_mounted_file_recreates_its_service():
    previous = file_manifest(FILES)
    plan = plan_release({**FILES, "caddy/Caddyfile": ":8080\n"}, previous, restarted_by)
    assert (plan.changed, plan.unchanged, plan.removed) == (("caddy/Caddyfile",), ("app.env", "docker-compose.yml"), ())
    assert plan.recreate == ("caddy",) and plan.previous_release_id == release_id_for(previous)


def test_env_change_is_left_to_compose_and_removed_files_are_listed():
    previous = file_manifest({**FILES, "old.env": "X=1\n"})
    plan = plan_release({**FILES, "app.env": "A=2\n"}, previous, restarted_by)
    assert plan.changed == ("app.env",) and plan.removed == ("old.env",) and plan.recreate == ()


def test_unchanged_files_make_an_unchanged_plan():
    plan = plan_release(FILES, file_manifest(FILES), restarted_by)
    assert plan.is_unchanged and plan.changed == () and plan.recreate == ()


def test_bad_paths_are_all_reported_at_once():
    with pytest.raises(ReleaseFilesError) as caught:
        plan_release({"/etc/passwd": "x", "a/../b": "y", ".manifest.json": "{}", "ok": "z"}, None, restarted_by)
    assert len(caught.value.problems) == 3
    assert all("Fix:" in problem for problem in caught.value.problems)
    assert "files['/etc/passwd']" in str(caught.value)


def test_manifest_round_trips_and_a_foreign_or_partial_manifest_is_not_trusted():
    plan = plan_release(FILES, None, restarted_by)
    text = manifest_document(plan).decode()
    assert parse_manifest(text, plan.release_id) == plan.manifest
    assert parse_manifest(text, "0" * 16) is None  # a copy carried over from another release
    assert parse_manifest(text[: len(text) // 2]) is None
    tampered = json.loads(text)
    tampered["files"]["app.env"] = "0" * 64
    assert parse_manifest(json.dumps(tampered)) is None


def test_a_removed_file_the_renderer_no_longer_knows_does_not_fail_the_plan():
    def strict(path):
        if path == "old.env":
            raise ValueError("'old.env' is not a file render_stack produces")
        return restarted_by(path)

    plan = plan_release(FILES, file_manifest({**FILES, "old.env": "X=1\n"}), strict)
    assert plan.removed == ("old.env",) and plan.recreate == ()
