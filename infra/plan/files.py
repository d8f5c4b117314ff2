"""The files the VM receives, rendered for the plan and written to build/<stack>/."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.plan.evaluate import PlanResult
from infra.startup import render_startup_script

STARTUP_SCRIPT = "startup.sh"


def plan_files(result: PlanResult) -> dict[str, str]:
    files = {STARTUP_SCRIPT: render_startup_script()}
    return dict(sorted(files.items()))


def write_files(out: Path, files: dict[str, str]) -> None:
    # A clean directory each time, so that a file no longer rendered does not linger.
    if out.exists():
        shutil.rmtree(out)
    for relative, content in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if content.startswith("#!"):
            path.chmod(0o755)
