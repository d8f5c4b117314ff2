"""The planner: exact steps from each observable state, so a rerun resumes and a dry run shows the truth."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from infra import naming
from infra.keys.plan import (
    AddVersion,
    ApplyVersions,
    AwaitGrace,
    DisableVersion,
    EnsureDbRoles,
    MoveAliases,
    PlanError,
    RetireLogins,
    ScheduleNextRotation,
    SetLoginPassword,
    format_plan,
    plan_kind,
)
from tests.keys.states import files, fresh_secrets, secret

NOW = datetime(2026, 11, 24, 12, 0, 0)
GRACE = timedelta(minutes=5)
SIGNING, EVENT = naming.SIGNING_KEY, naming.EVENT_KEY


def plan(kind, secrets, live, resume=True):
    return plan_kind(kind, secrets, live, now=NOW, grace=GRACE, resume=resume)


def shape(steps):
    """Each step as (type, service or logical, the slots it sets)."""
    out = []
    for step in steps:
        if isinstance(step, ApplyVersions):
            out.append(("apply", step.service, {name: step.versions[name] for name in step.shown}))
        elif isinstance(step, AddVersion):
            out.append(("add", step.logical, step.predicted))
        elif isinstance(step, MoveAliases):
            out.append(("aliases", step.logical, (step.current, step.previous)))
        elif isinstance(step, AwaitGrace):
            out.append(("grace", step.logical, step.until))
        elif isinstance(step, DisableVersion):
            out.append(("disable", step.logical, step.number))
        elif isinstance(step, EnsureDbRoles):
            out.append(("roles", step.owner, step.service))
        elif isinstance(step, SetLoginPassword):
            out.append(("password", step.login, step.number))
        elif isinstance(step, RetireLogins):
            out.append(("retire", step.owner, step.roles))
    return out


SIGN_C1 = {"INNGEST_SIGNING_KEY": (2,), "INNGEST_SIGNING_KEY_FALLBACK": (1,)}
SIGN_C3 = {"INNGEST_SIGNING_KEY": (2,), "INNGEST_SIGNING_KEY_FALLBACK": ()}


def test_signing_from_scratch_app_first_then_server_then_the_fallback_goes():
    assert shape(plan("signing", fresh_secrets(), files())) == [
        ("add", SIGNING, 2),
        ("apply", "app", SIGN_C1),
        ("apply", "inngest", SIGN_C1),
        ("aliases", SIGNING, (2, 1)),
        ("grace", SIGNING, NOW + GRACE),
        ("apply", "app", SIGN_C3),
        ("disable", SIGNING, 1),
    ]


def test_signing_adopts_a_version_left_by_an_interrupted_run():
    secrets = fresh_secrets()
    secrets[SIGNING] = secret(SIGNING, {1: "ENABLED", 2: "ENABLED"}, annotations={"kit-v2-created-by": "ops@acme-example.com"})

    steps = shape(plan("signing", secrets, files()))

    assert steps[0] == ("apply", "app", SIGN_C1)
    assert not any(kind == "add" for kind, _, _ in steps)


def test_a_newer_version_the_cli_did_not_create_is_never_adopted():
    secrets = fresh_secrets()
    secrets[SIGNING] = secret(SIGNING, {1: "ENABLED", 2: "ENABLED"})

    steps = shape(plan("signing", secrets, files()))

    assert steps[0] == ("add", SIGNING, 3)
    assert steps[1] == ("apply", "app", {"INNGEST_SIGNING_KEY": (3,), "INNGEST_SIGNING_KEY_FALLBACK": (1,)})


def test_signing_rerun_after_the_app_switched_repeats_the_apps_restart_first():
    secrets = fresh_secrets()
    secrets[SIGNING] = secret(SIGNING, {1: "ENABLED", 2: "ENABLED"})
    live = files(signing=(2,), fallback=(1,))

    resumed = shape(plan("signing", secrets, live, resume=True))
    continued = shape(plan("signing", secrets, live, resume=False))

    assert resumed[:2] == [("apply", "app", SIGN_C1), ("apply", "inngest", SIGN_C1)]
    assert continued[0] == ("apply", "inngest", SIGN_C1)


def test_signing_in_its_grace_period_waits_for_the_recorded_deadline():
    deadline = datetime(2026, 11, 25, 12, 0, 0)
    secrets = fresh_secrets()
    secrets[SIGNING] = secret(SIGNING, {1: "ENABLED", 2: "ENABLED"}, {"current": 2, "previous": 1}, {"kit-fallback-until": deadline.isoformat()})

    assert shape(plan("signing", secrets, files(signing=(2,), fallback=(1,)))) == [
        ("grace", SIGNING, deadline),
        ("apply", "app", SIGN_C3),
        ("disable", SIGNING, 1),
    ]


def test_signing_after_the_fallback_went_only_disables_the_old_version():
    secrets = fresh_secrets()
    secrets[SIGNING] = secret(SIGNING, {1: "ENABLED", 2: "ENABLED"}, {"current": 2, "previous": 1})

    assert shape(plan("signing", secrets, files(signing=(2,)), resume=False)) == [("disable", SIGNING, 1)]
    assert shape(plan("signing", secrets, files(signing=(2,)), resume=True)) == [("apply", "app", SIGN_C3), ("disable", SIGNING, 1)]


def test_a_settled_signing_key_starts_a_new_rotation():
    secrets = fresh_secrets()
    secrets[SIGNING] = secret(SIGNING, {1: "DISABLED", 2: "ENABLED"}, {"current": 2, "previous": 1})

    steps = shape(plan("signing", secrets, files(signing=(2,))))

    assert steps[0] == ("add", SIGNING, 3) and steps[-1] == ("disable", SIGNING, 2)


def test_the_server_steps_rollback_puts_it_back_on_the_old_key():
    server_step = plan("signing", fresh_secrets(), files())[2]

    undo = server_step.rollback()

    assert undo.service == "inngest"
    assert undo.versions["INNGEST_SIGNING_KEY"] == (1,) and undo.versions["INNGEST_SIGNING_KEY_FALLBACK"] == ()


def test_a_signing_key_that_is_its_own_fallback_is_refused():
    with pytest.raises(PlanError, match="both the signing key and its fallback"):
        plan("signing", fresh_secrets(), files(signing=(1,), fallback=(1,)))


def test_event_from_scratch_server_takes_both_then_app_then_server_drops_the_old():
    assert shape(plan("event", fresh_secrets(), files())) == [
        ("add", EVENT, 2),
        ("apply", "inngest", {"INNGEST_EVENT_KEY": (1,), "INNGEST_EVENT_KEYS": (1, 2)}),
        ("apply", "app", {"INNGEST_EVENT_KEY": (2,), "INNGEST_EVENT_KEYS": (1, 2)}),
        ("apply", "inngest", {"INNGEST_EVENT_KEY": (2,), "INNGEST_EVENT_KEYS": (2,)}),
        ("aliases", EVENT, (2, 1)),
        ("disable", EVENT, 1),
    ]


@pytest.mark.parametrize(
    ("live", "first"),
    [
        (files(event=(1,), event_keys=(1, 2)), ("apply", "inngest", {"INNGEST_EVENT_KEY": (1,), "INNGEST_EVENT_KEYS": (1, 2)})),
        (files(event=(2,), event_keys=(1, 2)), ("apply", "app", {"INNGEST_EVENT_KEY": (2,), "INNGEST_EVENT_KEYS": (1, 2)})),
        (files(event=(2,), event_keys=(2,)), ("apply", "inngest", {"INNGEST_EVENT_KEY": (2,), "INNGEST_EVENT_KEYS": (2,)})),
    ],
)
def test_event_rerun_repeats_the_last_restart_and_continues(live, first):
    secrets = fresh_secrets()
    secrets[EVENT] = secret(EVENT, {1: "ENABLED", 2: "ENABLED"})

    steps = shape(plan("event", secrets, live))

    assert steps[0] == first
    assert steps[-2:] == [("aliases", EVENT, (2, 1)), ("disable", EVENT, 1)]


def test_event_key_the_server_would_reject_is_refused():
    with pytest.raises(PlanError, match="includes the app's INNGEST_EVENT_KEY"):
        plan("event", fresh_secrets(), files(event=(3,), event_keys=(1,)))


def test_db_sets_the_standby_login_switches_the_service_to_it_then_retires_the_old_one():
    steps = plan("db", fresh_secrets(), files())

    app_switched = {"DB_APP_LOGIN": ("app_a",), "DB_APP_PASSWORD": (2,)}
    assert shape(steps) == [
        ("add", naming.DB_APP_PASSWORD, 2),
        ("roles", "app", "app"),
        # The new password goes to a login role no service uses: no connection is refused.
        ("password", "app_a", 2),
        ("apply", "app", app_switched),
        ("aliases", naming.DB_APP_PASSWORD, (2, 1)),
        ("retire", "app", ("app", "app_b")),
        ("disable", naming.DB_APP_PASSWORD, 1),
        ("add", naming.DB_INNGEST_PASSWORD, 2),
        ("roles", "inngest", "inngest"),
        ("password", "inngest_a", 2),
        ("apply", "inngest", {"DB_INNGEST_LOGIN": ("inngest_a",), "DB_INNGEST_PASSWORD": (2,)}),
        ("aliases", naming.DB_INNGEST_PASSWORD, (2, 1)),
        ("retire", "inngest", ("inngest", "inngest_b")),
        ("disable", naming.DB_INNGEST_PASSWORD, 1),
    ]
    apply = steps[3]
    # The rollback restarts the service as it was: the old login still has the old password.
    assert apply.rollback().versions["DB_APP_LOGIN"] == ("app",) and apply.rollback().versions["DB_APP_PASSWORD"] == (1,)


def test_db_logins_take_turns():
    secrets = fresh_secrets()
    secrets[naming.DB_APP_PASSWORD] = secret(naming.DB_APP_PASSWORD, {1: "DISABLED", 2: "ENABLED"}, {"current": 2, "previous": 1})
    steps = shape(plan("db", secrets, files(app_login="app_a", app_db=(2,))))

    assert ("password", "app_b", 3) in steps
    assert ("retire", "app", ("app", "app_a")) in steps


def test_db_rerun_after_the_switch_repeats_the_restart_then_finishes():
    secrets = fresh_secrets()
    secrets[naming.DB_APP_PASSWORD] = secret(naming.DB_APP_PASSWORD, {1: "ENABLED", 2: "ENABLED"}, {}, {"kit-v2-created-by": "ops"})
    live = files(app_login="app_a", app_db=(2,))

    assert [s[0] for s in shape(plan("db", secrets, live, resume=True))[:4]] == ["apply", "aliases", "retire", "disable"]
    assert [s[0] for s in shape(plan("db", secrets, live, resume=False))[:3]] == ["aliases", "retire", "disable"]


def test_db_rerun_after_the_alias_moved_skips_what_this_command_finished():
    secrets = fresh_secrets()
    secrets[naming.DB_APP_PASSWORD] = secret(naming.DB_APP_PASSWORD, {1: "DISABLED", 2: "ENABLED"}, {"current": 2, "previous": 1}, {"kit-rotating-from": "1"})
    secrets[naming.DB_INNGEST_PASSWORD] = secret(naming.DB_INNGEST_PASSWORD, {1: "ENABLED", 2: "ENABLED"}, {"current": 2, "previous": 1}, {"kit-rotating-from": "1"})
    live = files(app_login="app_a", app_db=(2,), inngest_login="inngest_a", inngest_db=(2,))

    expected = [("retire", "inngest", ("inngest", "inngest_b")), ("disable", naming.DB_INNGEST_PASSWORD, 1)]
    assert shape(plan("db", secrets, live, resume=True)) == expected
    assert shape(plan("db", secrets, live, resume=False)) == expected


def test_unknown_kind_is_refused():
    with pytest.raises(PlanError, match="unknown key kind 'tls'"):
        plan("tls", fresh_secrets(), files())


def test_the_printed_plan_numbers_steps_and_says_how_long_the_grace_is():
    lines = format_plan("signing", plan("signing", fresh_secrets(), files()), NOW)

    assert lines[0] == "signing: 7 step(s)"
    assert lines[1] == "  1. add v2 of inngest-signing-key: a new signing value"
    assert lines[5].endswith("(5m from now)")


def test_a_scheduled_reminder_moves_to_one_period_after_this_rotation():
    secrets = fresh_secrets()
    secrets[EVENT] = secret(EVENT, {1: "ENABLED"}, rotation_period=timedelta(days=90), next_rotation=datetime(2026, 11, 30))

    steps = plan("event", secrets, files())

    assert steps[-1] == ScheduleNextRotation(EVENT, NOW + timedelta(days=90))
    assert not any(isinstance(step, ScheduleNextRotation) for step in plan("signing", secrets, files()))


REDIS = naming.REDIS_PASSWORD


def test_redis_from_scratch_redis_accepts_both_then_the_server_moves_then_redis_drops_the_old():
    assert shape(plan("redis", fresh_secrets(), files())) == [
        ("add", REDIS, 2),
        ("apply", "redis", {"REDIS_PASSWORD": (1,), "REDIS_PASSWORDS": (1, 2)}),
        ("apply", "inngest", {"REDIS_PASSWORD": (2,), "REDIS_PASSWORDS": (1, 2)}),
        ("apply", "redis", {"REDIS_PASSWORD": (2,), "REDIS_PASSWORDS": (2,)}),
        ("aliases", REDIS, (2, 1)),
        ("disable", REDIS, 1),
    ]
    # A rollback of a Redis step reloads the file in which the server still logs in.
    first_reload = plan("redis", fresh_secrets(), files())[1]
    assert first_reload.rollback().versions["REDIS_PASSWORDS"] == (1,)


@pytest.mark.parametrize(
    ("live", "first"),
    [
        (files(redis=(1,), redis_accepted=(1, 2)), ("apply", "redis", {"REDIS_PASSWORD": (1,), "REDIS_PASSWORDS": (1, 2)})),
        (files(redis=(2,), redis_accepted=(1, 2)), ("apply", "inngest", {"REDIS_PASSWORD": (2,), "REDIS_PASSWORDS": (1, 2)})),
        (files(redis=(2,), redis_accepted=(2,)), ("apply", "redis", {"REDIS_PASSWORD": (2,), "REDIS_PASSWORDS": (2,)})),
    ],
)
def test_redis_rerun_repeats_the_last_step_and_continues(live, first):
    secrets = fresh_secrets()
    secrets[REDIS] = secret(REDIS, {1: "ENABLED", 2: "ENABLED"})

    steps = shape(plan("redis", secrets, live))

    assert steps[0] == first
    assert steps[-2:] == [("aliases", REDIS, (2, 1)), ("disable", REDIS, 1)]


def test_a_redis_password_redis_would_refuse_is_refused():
    with pytest.raises(PlanError, match="so it includes REDIS_PASSWORD"):
        plan("redis", fresh_secrets(), files(redis=(3,), redis_accepted=(1,)))
