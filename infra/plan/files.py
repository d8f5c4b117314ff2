"""The files the VM receives, rendered for the plan and written to build/<stack>/."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.plan.evaluate import PlanResult
from infra.plan.mocks import KNOWN_AFTER_DEPLOY
from infra.render import RenderInputs, SecretRef, render_stack
from infra.startup import render_startup_script

STARTUP_SCRIPT = "startup.sh"
# The render checks that the database address is an IP; offline it is not known yet, so the plan
# renders with an address from the documentation range and shows it as unknown.
UNKNOWN_IP = "192.0.2.254"


def release_inputs(result: PlanResult) -> RenderInputs:
    outputs = result.document["outputs"]
    ip = outputs["sql_private_ip"]
    return RenderInputs(
        project=result.config.project,
        sql_private_ip=UNKNOWN_IP if ip == KNOWN_AFTER_DEPLOY else ip,
        # A new secret's first version is number 1.
        secrets={logical: SecretRef(secret_id, "1") for logical, secret_id in outputs["secret_ids"].items()},
    )


def plan_files(result: PlanResult) -> dict[str, str]:
    release = render_stack(result.config, release_inputs(result))
    files = {path: content.replace(UNKNOWN_IP, KNOWN_AFTER_DEPLOY) for path, content in release.items()}
    files[STARTUP_SCRIPT] = render_startup_script()
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
