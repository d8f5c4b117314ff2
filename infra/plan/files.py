"""The files the VM receives, as the plan shows them and writes them to build/<stack>/."""

from __future__ import annotations

from infra.startup import render_startup_script

STARTUP_SCRIPT = "startup.sh"
DEPLOYMENT_TYPE = "pulumi-python:dynamic/inngest-kit:StackDeployment"


def plan_files(resources: list[dict]) -> dict[str, str]:
    """The startup script, and the release files exactly as the deploy resource receives them."""
    deployments = [r for r in resources if r["type"] == DEPLOYMENT_TYPE]
    files = dict(deployments[0]["inputs"]["files"]) if deployments else {}
    files[STARTUP_SCRIPT] = render_startup_script()
    return dict(sorted(files.items()))
