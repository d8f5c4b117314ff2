"""`python -m infra status | logs | ssh | audit`: the operator's everyday views of the VM.

Each command opens ONE verified SSH session (the same layer as the deploy), runs pure-built
commands over it, and prints. Exit status: 0 ok, 2 bad input or configuration, 1 remote failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from infra.ops import commands
from infra.ops.audit import parse_audit, render_audit
from infra.ops.reach import CONNECT_ATTEMPTS, OpsContext, context_from_stack
from infra.ops.status import gather_status, render_text, to_json
from infra.remote.hostkeys import HostKeysNotReady
from infra.remote.identity import IdentityError
from infra.remote.ssh import SshError, connect
from infra.remote.target import VIA_CHOICES, StackOutputsError

EXIT_OK, EXIT_REMOTE, EXIT_INPUT = 0, 1, 2
SERVICE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# What `docker compose logs --since` accepts: a relative duration or an RFC 3339 / ISO date.
SINCE_RE = re.compile(r"^(\d+(ns|us|ms|s|m|h))+$|^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")

ContextFactory = Callable[[str | None, str | None], OpsContext]


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def since_value(text: str) -> str:
    if not SINCE_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 10m, 2h, 1h30m) or a date (e.g. 2026-11-24T13:00:00Z)")
    return text


def service_name(text: str) -> str:
    if not SERVICE_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a service name (e.g. app, inngest, caddy, redis)")
    return text


def register(subparsers: argparse._SubParsersAction, *, context_factory: ContextFactory = context_from_stack, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", help="the Pulumi stack to read outputs from (default: the selected stack)")
    common.add_argument("--via", choices=VIA_CHOICES, help="reach the VM through IAP or directly to its external IP (default: the stack's ssh_via output)")

    def runner(handler):
        def run(args: argparse.Namespace) -> int:
            return _guarded(lambda: handler(args, context_factory(args.stack, args.via), sys.stdout))

        return run

    status = subparsers.add_parser("status", parents=[common], help="the VM, its containers, Inngest health, the live release, TLS and keys")
    status.add_argument("--json", action="store_true", help="print one JSON object, for scripts")
    status.set_defaults(func=runner(lambda args, context, out: run_status(context, out, as_json=args.json, now=now())))

    logs = subparsers.add_parser("logs", parents=[common], help="the containers' logs")
    logs.add_argument("service", nargs="?", type=service_name, help="one service (default: all)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.add_argument("--since", type=since_value, help="only lines newer than this (10m, 2h, or a date)")
    logs.add_argument("--lines", type=positive_int, default=100, help="lines per container to show first (default 100)")
    logs.set_defaults(func=runner(lambda args, context, out: run_logs(context, service=args.service, follow=args.follow, since=args.since, lines=args.lines)))

    shell = subparsers.add_parser("ssh", parents=[common], help="an interactive shell on the VM over the verified connection")
    shell.set_defaults(func=runner(lambda args, context, out: run_shell(context)))

    audit = subparsers.add_parser("audit", parents=[common], help="the deploy and key-rotation log kept on the VM")
    audit.add_argument("--lines", type=positive_int, default=50, help="most recent entries to show (default 50)")
    audit.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    audit.set_defaults(func=runner(lambda args, context, out: run_audit(context, out, lines=args.lines, as_json=args.json)))


def _guarded(action: Callable[[], int]) -> int:
    try:
        return action()
    except StackOutputsError as exc:
        _complain("the stack outputs are not usable", exc.problems)
        return EXIT_INPUT
    except IdentityError as exc:
        _complain("the VM cannot be reached as one Google identity", exc.problems)
        return EXIT_INPUT
    except (HostKeysNotReady, SshError) as exc:
        _complain("cannot reach the VM", [str(exc)])
        return EXIT_REMOTE


def _complain(headline: str, problems: list[str]) -> None:
    print(f"error: {headline}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def run_status(context: OpsContext, out: TextIO, *, as_json: bool, now: datetime) -> int:
    vm_state = context.vm_state()
    with connect(context.target, attempts=CONNECT_ATTEMPTS) as session:
        report = gather_status(session, context.vm, vm_name=context.vm_name, vm_state=vm_state, domain=context.domain, keys=context.key_ages(), inngest_url=context.inngest_url)
    out.write(json.dumps(to_json(report, now), indent=2) + "\n" if as_json else render_text(report, now))
    return EXIT_OK


def run_logs(context: OpsContext, *, service: str | None, follow: bool, since: str | None, lines: int, stdout=None, stderr=None) -> int:
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr.buffer
    argv = commands.container_logs(context.vm, service, lines=lines, since=since, follow=follow)
    with connect(context.target, attempts=CONNECT_ATTEMPTS) as session:
        try:
            status = session.stream(argv, stdout, stderr)
        except KeyboardInterrupt:
            return EXIT_OK  # Ctrl-C is how one stops following; closing the session ends the remote command
    return EXIT_OK if status == 0 else EXIT_REMOTE


def run_shell(context: OpsContext) -> int:
    with connect(context.target, attempts=CONNECT_ATTEMPTS) as session:
        return session.interactive_shell()


def run_audit(context: OpsContext, out: TextIO, *, lines: int, as_json: bool) -> int:
    with connect(context.target, attempts=CONNECT_ATTEMPTS) as session:
        result = session.run(commands.audit_tail(context.vm, lines=lines), check=False)
    if result.exit_status != 0 and "No such file" in result.stderr:
        entries = []
    elif result.exit_status != 0:
        _complain("cannot read the audit log", [result.stderr.strip() or f"tail exited with status {result.exit_status}"])
        return EXIT_REMOTE
    else:
        entries = parse_audit(result.stdout)
    if as_json:
        out.write(json.dumps(entries, indent=2) + "\n")
    elif not entries:
        out.write("no deploy or rotation recorded yet\n")
    else:
        out.write(render_audit(entries))
    return EXIT_OK
