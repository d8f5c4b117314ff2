"""Pure parts of `keys status` and `keys prune`."""

from __future__ import annotations

from datetime import datetime, timedelta

from infra import naming
from infra.keys.model import resolve_versions_file
from infra.keys.status import due_text, key_ages, prunable
from tests.keys.states import T0, fresh_secrets, secret

EVENT = naming.EVENT_KEY


def test_prune_counts_retention_from_when_the_cli_disabled_a_version():
    state = secret(EVENT, {1: "DISABLED", 2: "DISABLED", 3: "DISABLED", 4: "DISABLED", 5: "ENABLED"}, {"current": 5, "previous": 4},
                   {"kit-v1-disabled-at": "2026-01-01T00:00:00Z", "kit-v2-disabled-at": "2026-10-01T00:00:00Z", "kit-v4-disabled-at": "2026-11-20T00:00:00Z"})
    live = resolve_versions_file("INNGEST_EVENT_KEY=5\nINNGEST_EVENT_KEYS=5\n", {**fresh_secrets(), EVENT: state})

    # v1: Pulumi's own; v3: disabled by other means, so its retention is unknown; v4: too recent.
    assert prunable(state, live, datetime(2026, 11, 25), timedelta(days=30)) == [2]
    assert prunable(state, live, datetime(2026, 12, 25), timedelta(days=30)) == [2, 4]


def test_prune_never_picks_what_the_vm_reads():
    state = secret(EVENT, {1: "ENABLED", 2: "DISABLED", 3: "ENABLED"}, {"current": 3}, {"kit-v2-disabled-at": "2026-01-01T00:00:00Z"})
    live = resolve_versions_file("INNGEST_EVENT_KEY=3\nINNGEST_EVENT_KEYS=2,3\n", {**fresh_secrets(), EVENT: state})

    assert prunable(state, live, datetime(2026, 12, 25), timedelta(days=30)) == []


def test_due_date_from_the_rotation_schedule():
    now = datetime(2026, 12, 1)
    assert due_text(secret(EVENT, {1: "ENABLED"}), now).startswith("rotation not scheduled")
    due = secret(EVENT, {1: "ENABLED"}, next_rotation=datetime(2026, 12, 11), rotation_period=timedelta(days=90))
    assert due_text(due, now) == "rotation due 2026-12-11 00:00 UTC (in 10d), every 90d"
    late = secret(EVENT, {1: "ENABLED"}, next_rotation=datetime(2026, 11, 29))
    assert due_text(late, now) == "rotation OVERDUE since 2026-11-29 00:00 UTC (2d ago)"


def test_key_ages_for_the_ops_status_report():
    secrets = fresh_secrets()
    secrets[EVENT] = secret(EVENT, {1: "DISABLED", 2: "ENABLED"}, {"current": 2})

    ages = {age.name: (age.version, age.created) for age in key_ages(secrets)}

    assert ages[EVENT] == ("2", T0 + timedelta(days=2))
    assert ages[naming.SIGNING_KEY] == ("1", T0 + timedelta(days=1))
