"""`python -m infra keys rotate|status|prune`: the operator's key rotation commands.

Exit codes: 0 done; 1 failed and the rollback failed too, or the VM could not be reached (a rerun
converges); 2 refused input, nothing changed; 3 a step failed and was rolled back to the last working
state; 4 paused during the signing key's grace period (rerun after the deadline to finish).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

from infra.keys import runner
from infra.keys.durations import format_duration, parse_duration
from infra.keys.model import KIT_SECRETS_READ, LiveVersions, VersionsFileError, resolve_versions_file, utc_now
from infra.keys.plan import KINDS, ROTATION_MARKER, SECRETS_OF_KIND, PlanError, format_plan, plan_kind
from infra.keys.status import DEFAULT_RETENTION, enabled_numbers, prunable, status_lines
from infra.keys.store import SecretStore, SecretStoreError, clear_version_annotations
from infra.keys.values import fingerprint
from infra.keys.vm_commands import Endpoints
from infra.ops import audit
from infra.ops import commands as ops_commands
from infra.remote.vm import Vm

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_ROLLED_BACK, EXIT_PAUSED = 0, 1, 2, 3, 4
OUTCOME_EXIT = {
    runner.Outcome.COMPLETED: EXIT_OK,
    runner.Outcome.FAILED: EXIT_FAILED,
    runner.Outcome.ROLLED_BACK: EXIT_ROLLED_BACK,
    runner.Outcome.PAUSED: EXIT_PAUSED,
}
OPERATOR_ENV = "INNGEST_KIT_OPERATOR"
DEFAULT_GRACE = timedelta(minutes=5)
DEFAULT_MAX_WAIT = timedelta(minutes=15)
CONNECT_ATTEMPTS = 3

EPILOG = """exit codes: 0 done; 1 failed and could not roll back, or the VM was unreachable (rerun to converge);
2 refused input, nothing changed; 3 a step failed and was rolled back; 4 paused in the signing key's grace period"""


class Refused(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Environment:
    """Every edge the commands touch, so tests can point them at local stand-ins."""

    load_outputs: Callable[[str], Mapping[str, Any]]
    secret_client: Callable[[Mapping[str, Any]], Any]  # raises Refused when credentials are missing
    ssh_target: Callable[[Mapping[str, Any]], Any]
    database_users: Callable[[Mapping[str, Any]], Any]
    operator: Callable[[], str | None]
    connect: Callable[[Any], Any]
    vm: Vm = field(default_factory=Vm)
    endpoints: Endpoints = field(default_factory=Endpoints)
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    stdout: TextIO | None = None
    stderr: TextIO | None = None
    confirm: Callable[[str], bool] | None = None  # None: ask on the terminal, refuse without one
    on_step: Callable[[Any], None] | None = None
    health_polls: int = 30
    poll_interval: float = 2.0
    # (outputs, run on the VM) -> what runs the database roles' SQL; None: psql on the VM
    database_roles: Callable[[Mapping[str, Any], Callable[..., Any]], Any] | None = None

    @property
    def out(self) -> TextIO:
        return self.stdout or sys.stdout

    @property
    def err(self) -> TextIO:
        return self.stderr or sys.stderr


# --- the production edges ----------------------------------------------------------------------


def _load_outputs(stack: str) -> Mapping[str, Any]:
    from infra.remote.target import StackOutputsError, load_stack_outputs

    try:
        return load_stack_outputs(stack)
    except StackOutputsError as error:
        raise Refused(error.problems) from None


def _secret_client(outputs: Mapping[str, Any]):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import secretmanager_v1

    try:
        credentials, _ = google.auth.default()
    except DefaultCredentialsError:
        raise Refused(["Google credentials: none found. Fix: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS"]) from None
    return secretmanager_v1.SecretManagerServiceClient(credentials=credentials)


def _ssh_target(outputs: Mapping[str, Any]):
    from infra.ops.reach import context_from_outputs, require_operator_identity
    from infra.remote.identity import IdentityError
    from infra.remote.target import StackOutputsError

    try:
        return context_from_outputs(outputs, via=None, identity_check=require_operator_identity).target
    except (StackOutputsError, IdentityError) as error:
        raise Refused(error.problems) from None


def _database_users(outputs: Mapping[str, Any]):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    from infra.keys.database import CloudSqlUsers

    try:
        credentials, _ = google.auth.default()
    except DefaultCredentialsError:
        raise Refused(["Google credentials: none found. Fix: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS"]) from None
    return CloudSqlUsers(str(outputs["project"]), credentials)


def _vm_psql_roles(vm: Vm):
    from infra.keys.database import VmPsqlRoles

    return lambda outputs, run: VmPsqlRoles(run, vm, str(outputs.get("sql_private_ip") or ""))


def _operator() -> str | None:
    if os.environ.get(OPERATOR_ENV):
        return os.environ[OPERATOR_ENV]
    try:
        completed = subprocess.run(["gcloud", "config", "get-value", "account"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    account = completed.stdout.strip()
    return account if completed.returncode == 0 and account and account != "(unset)" else None


def _connect(target):
    from infra.remote.ssh import connect

    return connect(target, attempts=CONNECT_ATTEMPTS)


def default_environment() -> Environment:
    return Environment(
        load_outputs=_load_outputs,
        secret_client=_secret_client,
        ssh_target=_ssh_target,
        database_users=_database_users,
        operator=_operator,
        connect=_connect,
    )


# --- argument parsing ----------------------------------------------------------------------------


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers, *, environment: Callable[[], Environment] = default_environment) -> None:
    keys = subparsers.add_parser(
        "keys",
        help="rotate and inspect the Inngest keys and database passwords",
        description="Rotate the Inngest signing and event keys and the database passwords held in Secret Manager, "
        "restarting services in an order that drops no call.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    rotate = actions.add_parser(
        "rotate",
        help="rotate one kind of key, or all",
        description="Rotate keys. Every step is verified; a failed step is rolled back, and a rerun resumes where "
        "the last run stopped. Signing key: the app gets the new key with the old one as fallback, then the server "
        "switches, and after --grace the fallback is dropped. A grace period longer than --max-wait is not waited "
        "out in this process: the command records the deadline in Secret Manager, exits with code 4, and the same "
        "command run after the deadline finishes the rotation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rotate.add_argument("kind", choices=(*KINDS, "all"), help="signing (Inngest signing key), event (event key), db (both database passwords), redis (Redis password), or all")
    _common(rotate)
    rotate.add_argument("--dry-run", action="store_true", help="print the steps it would take, change nothing")
    rotate.add_argument("--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)")
    rotate.add_argument("--grace", type=_duration, default=DEFAULT_GRACE, metavar="DURATION",
                        help=f"how long the app keeps the old signing key as fallback (default {format_duration(DEFAULT_GRACE)}), e.g. 10m, 24h")
    rotate.add_argument("--max-wait", type=_duration, default=DEFAULT_MAX_WAIT, metavar="DURATION",
                        help=f"wait out a grace period up to this long in this process (default {format_duration(DEFAULT_MAX_WAIT)}); longer ones pause")
    rotate.add_argument("--reason", default="scheduled rotation", help="why, recorded with each new version and in the VM's audit log")
    rotate.add_argument("--operator", help=f"who, for the audit (default: ${OPERATOR_ENV}, else `gcloud config get-value account`)")
    rotate.set_defaults(func=lambda args: run_rotate(args, environment()))

    status = actions.add_parser("status", help="versions, their state and age, what the VM reads, when rotation is due",
                                description="Show each key's versions (fingerprints, never values), which one the VM reads, and when rotation is due.")
    _common(status)
    status.set_defaults(func=lambda args: run_status(args, environment()))

    prune = actions.add_parser("prune", help="destroy disabled versions past their retention",
                               description="Destroy versions that are disabled, past the retention, and named by nothing "
                               "(no alias, not the VM's versions file). Disabled versions are still billed; destroyed ones are gone for good.",
                               epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(prune)
    prune.add_argument("--retention", type=_duration, default=DEFAULT_RETENTION, metavar="DURATION",
                       help=f"keep disabled versions at least this long (default {format_duration(DEFAULT_RETENTION)})")
    prune.add_argument("--dry-run", action="store_true", help="list what would be destroyed, change nothing")
    prune.add_argument("--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)")
    prune.add_argument("--operator", help=f"who, for the audit (default: ${OPERATOR_ENV}, else `gcloud config get-value account`)")
    prune.set_defaults(func=lambda args: run_prune(args, environment()))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="the Pulumi stack whose outputs locate the project, secrets and VM")


# --- shared set-up ---------------------------------------------------------------------------------


@dataclass
class _Setup:
    outputs: Mapping[str, Any]
    store: SecretStore
    secret_ids: dict[str, str]
    link: runner.VmLink
    operator: str


def _output_problems(outputs: Mapping[str, Any], logicals: tuple[str, ...], need_sql: bool) -> list[str]:
    problems = []
    if not outputs.get("project"):
        problems.append("stack output `project`: missing. Fix: run `pulumi up` so the stack exports it")
    ids = outputs.get("secret_ids")
    if not isinstance(ids, Mapping):
        problems.append("stack output `secret_ids`: missing or not a map of logical name -> secret id. Fix: run `pulumi up`")
    else:
        for logical in logicals:
            if not ids.get(logical):
                problems.append(f"stack output `secret_ids`: has no {logical!r}. Fix: run `pulumi up` with this version of the kit")
    if need_sql and not outputs.get("sql_connection_name"):
        problems.append("stack output `sql_connection_name`: missing; the database passwords cannot be changed without it. Fix: run `pulumi up`")
    return problems


def _setup(args, env: Environment, *, logicals: tuple[str, ...], need_sql: bool = False, need_operator: bool = False) -> _Setup:
    """Everything a command needs before it changes anything; every problem is reported at once."""
    problems: list[str] = []
    operator = getattr(args, "operator", None) or (env.operator() if need_operator else None)
    if need_operator and not operator:
        problems.append(f"operator: unknown (who is rotating, for the audit). Fix: pass --operator EMAIL, set ${OPERATOR_ENV}, or log in with `gcloud auth login`")
    try:
        outputs = env.load_outputs(args.stack)
    except Refused as error:
        raise Refused(problems + error.problems) from None
    problems += _output_problems(outputs, logicals, need_sql)
    client = target = None
    try:
        client = env.secret_client(outputs)
    except Refused as error:
        problems += error.problems
    if not problems:
        try:
            target = env.ssh_target(outputs)
        except Refused as error:
            problems += error.problems
    if problems:
        raise Refused(problems)
    ids = {logical: str(outputs["secret_ids"][logical]) for logical in outputs["secret_ids"]}
    return _Setup(outputs, SecretStore(client, str(outputs["project"])), ids, runner.VmLink(lambda: env.connect(target)), operator or "unknown")


def _refuse(env: Environment, error: Refused) -> int:
    env.err.write("refused; nothing was changed:\n" + "".join(f"  - {problem}\n" for problem in error.problems))
    return EXIT_REFUSED


def _confirm(env: Environment, question: str, yes: bool) -> bool:
    if yes:
        return True
    if env.confirm is not None:
        return env.confirm(question)
    if not sys.stdin.isatty():
        raise Refused(["confirmation: no terminal to ask on. Fix: pass --yes for non-interactive use"])
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


# --- rotate ----------------------------------------------------------------------------------------


def run_rotate(args, env: Environment) -> int:
    kinds = KINDS if args.kind == "all" else (args.kind,)
    try:
        # Every kit secret, not only this kind's: the versions file names the signing and event keys.
        setup = _setup(args, env, logicals=tuple(KIT_SECRETS_READ), need_sql="db" in kinds, need_operator=not args.dry_run)
    except Refused as error:
        return _refuse(env, error)
    ctx = runner.RotationContext(
        store=setup.store,
        secret_ids=setup.secret_ids,
        vm=env.vm,
        link=setup.link,
        operator=setup.operator,
        reason=" ".join(args.reason.split()),
        out=env.out,
        endpoints=env.endpoints,
        clock=env.clock,
        sleep=env.sleep,
        max_wait=args.max_wait,
        on_step=env.on_step,
        health_polls=env.health_polls,
        poll_interval=env.poll_interval,
    )
    try:
        observation = runner.observe(ctx)
        secrets, live, vm_state = observation
        plans = {
            kind: plan_kind(kind, secrets, live.versions, now=env.clock(), grace=args.grace, resume=not runner.ended_cleanly(vm_state, kind))
            for kind in kinds
        }
        for kind, steps in plans.items():
            for line in format_plan(kind, steps, env.clock()):
                env.out.write(line + "\n")
        if args.dry_run:
            env.out.write("dry run: nothing was changed\n")
            return EXIT_OK
        if not _confirm(env, "Rotate now?", args.yes):
            env.out.write("not confirmed; nothing was changed\n")
            return EXIT_REFUSED
        if "db" in kinds:
            ctx.database = env.database_users(setup.outputs)
            ctx.sql_instance = str(setup.outputs["sql_connection_name"]).rsplit(":", 1)[-1]
            ctx.roles = (env.database_roles or _vm_psql_roles(env.vm))(setup.outputs, ctx.link.run)
        scope = [logical for kind in kinds for logical in SECRETS_OF_KIND[kind]]
        for logical in scope:
            if ROTATION_MARKER not in secrets[logical].annotations:
                setup.store.update(setup.secret_ids[logical], annotations={ROTATION_MARKER: str(secrets[logical].current)})
        paused = False
        for kind in kinds:
            env.out.write(f"== rotating {kind} ==\n")
            # The first kind's plan was shown above; a later kind starts from the state the earlier left.
            first = kind == kinds[0]
            outcome = runner.rotate(ctx, kind, grace=args.grace, announce=not first, observed=observation if first else None)
            env.out.write(f"{kind}: {outcome.value}\n")
            if outcome is runner.Outcome.PAUSED:
                # The signing key waits for its deadline; the other kinds need not wait with it.
                paused = True
            elif outcome is not runner.Outcome.COMPLETED:
                return OUTCOME_EXIT[outcome]
        if paused:
            return EXIT_PAUSED
        for logical in scope:
            setup.store.update(setup.secret_ids[logical], annotations={ROTATION_MARKER: None})
        return EXIT_OK
    except Refused as error:
        return _refuse(env, error)
    except (PlanError, VersionsFileError, runner.RefusedState) as error:
        return _refuse(env, Refused(str(error).splitlines()))
    except Exception as error:  # the VM or Secret Manager could not be reached while observing
        env.err.write(f"failed: {type(error).__name__}: {error}\nnothing was rolled back because no step had started; rerun when it is reachable\n")
        return EXIT_FAILED
    finally:
        setup.link.drop()


# --- status ----------------------------------------------------------------------------------------


def _read_live(setup: _Setup, env: Environment, secrets) -> tuple[LiveVersions | None, str | None]:
    try:
        return resolve_versions_file(runner.read_vm_state(setup.link, env.vm).versions_text, secrets), None
    except VersionsFileError as error:
        return None, "versions file unreadable: " + "; ".join(error.problems)
    except Exception as error:
        return None, f"unreachable ({type(error).__name__}: {error}); showing Secret Manager only"


def run_status(args, env: Environment) -> int:
    try:
        setup = _setup(args, env, logicals=tuple(KIT_SECRETS_READ))
    except Refused as error:
        return _refuse(env, error)
    try:
        secrets = {logical: setup.store.observe(logical, secret_id) for logical, secret_id in setup.secret_ids.items()}
        fingerprints = {}
        for logical, state in secrets.items():
            for number in enabled_numbers(state):
                fingerprints[(logical, number)] = fingerprint(setup.store.access(state.secret_id, number))
        live, problem = _read_live(setup, env, secrets)
        for line in status_lines(secrets, live, problem, fingerprints, env.clock()):
            env.out.write(line + "\n")
        return EXIT_OK
    except SecretStoreError as error:
        env.err.write(f"failed: {error}\n")
        return EXIT_FAILED
    finally:
        setup.link.drop()


# --- prune -----------------------------------------------------------------------------------------


def run_prune(args, env: Environment) -> int:
    try:
        setup = _setup(args, env, logicals=tuple(KIT_SECRETS_READ), need_operator=not args.dry_run)
    except Refused as error:
        return _refuse(env, error)
    try:
        # Only the kit's own secrets: the app's secrets' versions belong to the Pulumi program.
        secrets = {logical: setup.store.observe(logical, setup.secret_ids[logical]) for logical in KIT_SECRETS_READ}
        live, problem = _read_live(setup, env, secrets)
        if problem:
            # Without the VM's file we cannot know what it reads; destroying blind could break a restart.
            env.err.write(f"failed: the VM's versions file is needed to know what is in use: {problem}\n")
            return EXIT_FAILED
        now = env.clock()
        doomed = {logical: prunable(state, live, now, args.retention) for logical, state in secrets.items()}
        doomed = {logical: numbers for logical, numbers in doomed.items() if numbers}
        if not doomed:
            env.out.write(f"nothing to prune: no disabled version is older than {format_duration(args.retention)} and unused\n")
            return EXIT_OK
        for logical, numbers in doomed.items():
            env.out.write(f"{logical}: destroy {', '.join(f'v{n}' for n in numbers)}\n")
        if args.dry_run:
            env.out.write("dry run: nothing was changed\n")
            return EXIT_OK
        if not _confirm(env, "Destroy these versions for good?", args.yes):
            env.out.write("not confirmed; nothing was changed\n")
            return EXIT_REFUSED
        for logical, numbers in doomed.items():
            secret_id = setup.secret_ids[logical]
            for number in numbers:
                setup.store.destroy(secret_id, number)
                env.out.write(f"  destroyed v{number} of {logical}\n")
            stale_aliases = {alias: None for alias, number in secrets[logical].aliases.items() if number in numbers}
            setup.store.update(secret_id, aliases=stale_aliases, annotations=clear_version_annotations(secrets[logical].annotations, numbers))
        line = audit.entry("keys-prune", at=now, actor=setup.operator, destroyed=doomed)
        setup.link.run(ops_commands.audit_append(env.vm), stdin=line.encode())
        return EXIT_OK
    except Refused as error:
        return _refuse(env, error)
    except Exception as error:
        env.err.write(f"failed: {type(error).__name__}: {error}\n")
        return EXIT_FAILED
    finally:
        setup.link.drop()


def main(argv: list[str], environment: Environment) -> int:
    """Entry point for tests and embedding: `keys ...` argv with the given edges."""
    parser = argparse.ArgumentParser(prog="python -m infra")
    register(parser.add_subparsers(dest="command", required=True), environment=lambda: environment)
    args = parser.parse_args(argv)
    return args.func(args)

