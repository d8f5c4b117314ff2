"""`python -m infra plan`: the offline plan of a stack, as a table or as one JSON document."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.plan.evaluate import PROJECT_ROOT, PlanInputError, evaluate, short_stack_name
from infra.plan.output import OutputError, write_plan_files
from infra.plan.table import format_plan

EXIT_OK = 0
EXIT_BAD_CONFIG = 2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="evaluate the stack offline and show what it would create, the rendered files and the monthly cost",
        description="Evaluates the Pulumi program under mocks (no cloud account, no Pulumi CLI, no network), "
        "prints every resource with its settings (secret values masked), writes the rendered VM files to "
        "build/<stack>/ and estimates the monthly bill.",
    )
    parser.add_argument("--stack", default="example", help="the stack whose Pulumi.<stack>.yaml to read (default: example)")
    parser.add_argument("--config-file", type=Path, default=None, help="read this stack file instead of Pulumi.<stack>.yaml")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the rendered files (default: build/<stack>/); a new or empty directory, or one an earlier plan wrote",
    )
    parser.add_argument(
        "--adopted-instance",
        type=Path,
        default=None,
        help="in adopt mode, the instance's description (`gcloud sql instances describe NAME --format=json`); default: a labelled stand-in",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = evaluate(args.stack, config_file=args.config_file, adopted_instance=args.adopted_instance)
    except PlanInputError as error:
        print(f"Stack {args.stack!r} cannot be planned:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    out = args.out or PROJECT_ROOT / "build" / short_stack_name(args.stack)
    try:
        write_plan_files(out, result.document["files"])
    except OutputError as error:
        print(f"Stack {args.stack!r} was planned, but its files were not written:\n  - {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    for warning in result.config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        json.dump(result.document, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print(format_plan(result.document, out))
    return EXIT_OK
