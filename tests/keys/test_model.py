"""The VM's versions file: the format fetch-secrets.sh reads, resolved against the secrets' aliases."""

from __future__ import annotations

import pytest

from infra import naming
from infra.keys.model import VersionsFileError, render_versions_file, resolve_versions_file, unusable_slots
from tests.keys.states import files, fresh_secrets, secret


def test_absent_file_means_current_everywhere_and_the_initial_version_without_an_alias():
    secrets = fresh_secrets()
    secrets[naming.EVENT_KEY] = secret(naming.EVENT_KEY, {1: "DISABLED", 2: "ENABLED"}, {"current": 2})

    live = resolve_versions_file(None, secrets)

    assert live.versions == files(signing=(1,), event=(2,), event_keys=(2,))
    assert not live.present and not live.pinned


def test_aliases_and_numbers_resolve_and_event_keys_default_to_the_apps_key():
    secrets = fresh_secrets()
    secrets[naming.SIGNING_KEY] = secret(naming.SIGNING_KEY, {1: "ENABLED", 2: "ENABLED"}, {"current": 2, "previous": 1})
    text = "# comment\n\nINNGEST_SIGNING_KEY=current\nINNGEST_SIGNING_KEY_FALLBACK=previous\nINNGEST_EVENT_KEY=1\n"

    live = resolve_versions_file(text, secrets)

    assert live.versions == files(signing=(2,), fallback=(1,), event=(1,), event_keys=(1,))
    assert live.present and not live.pinned


def test_what_the_cli_writes_reads_back_pinned():
    versions = files(signing=(3,), fallback=(2,), event=(4,), event_keys=(4, 5))
    text = render_versions_file(versions)

    assert "INNGEST_EVENT_KEYS=4,5\n" in text and "INNGEST_SIGNING_KEY_FALLBACK=2\n" in text
    live = resolve_versions_file(text, fresh_secrets())
    assert live.versions == versions and live.pinned


def test_every_problem_in_the_file_is_reported_at_once():
    text = "DB_PASSWORD=1\nINNGEST_SIGNING_KEY=1,2\nINNGEST_EVENT_KEY=previous\nnot a line\n"

    with pytest.raises(VersionsFileError) as error:
        resolve_versions_file(text, fresh_secrets())

    problems = "\n".join(error.value.problems)
    assert "'DB_PASSWORD' is not a slot" in problems
    assert "INNGEST_SIGNING_KEY takes one version, got 2" in problems
    assert "INNGEST_EVENT_KEY names 'previous'" in problems
    assert "'not a line' is not a slot" in problems


def test_unusable_slots_name_disabled_and_missing_versions():
    secrets = fresh_secrets()
    secrets[naming.SIGNING_KEY] = secret(naming.SIGNING_KEY, {1: "DISABLED", 2: "ENABLED"})

    problems = unusable_slots(files(signing=(2,), fallback=(1,), event_keys=(1, 9)), secrets)

    assert problems == [
        "INNGEST_SIGNING_KEY_FALLBACK names v1 of inngest-signing-key, which is DISABLED",
        "INNGEST_EVENT_KEYS names v9 of inngest-event-key, which does not exist",
    ]
