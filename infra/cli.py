"""`python -m infra`: the operator's entry point. Each command module adds its own sub-command."""

from __future__ import annotations

import argparse
import importlib

# Each module has `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
COMMAND_MODULES = (
    "infra.plan.cli",
    "infra.ops.cli",
    "infra.keys.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra", description="Deploy kit for a web app and a self-hosted Inngest server on Google Cloud.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
