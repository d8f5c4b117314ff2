"""compose-lint (PyPI, OWASP Docker cheat sheet and CIS Docker Benchmark rules) on the rendered
docker-compose.yml: no high or critical finding, and every medium one is in the allow-list below,
each with the reason it stays."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.render import RenderInputs, render_stack
from tests.render.conftest import config_from, example_raw, inputs_for

DIGEST = "sha256:" + "cd" * 32

# (service, rule, what it is about) -> why it stays
ALLOWED_MEDIUM = {
    # The public edge must listen on every address: the VPC firewall (outside the VM) admits only
    # 80 and 443, so Docker publishing past a host firewall opens nothing more.
    ("caddy", "CL-0005", "80:80"): "the public HTTP port (ACME challenges, redirect to HTTPS)",
    ("caddy", "CL-0005", "443:443"): "the public HTTPS port",
    ("caddy", "CL-0005", "443:443/udp"): "the public HTTP/3 port",
    # Digests are the operator's choice: the config takes `<service>.digest` (and app.image@sha256:...),
    # and the README recommends them; the example stack cannot know the registry's digests.
    ("caddy", "CL-0019", "image"): "tag pinned; set inngest-kit:caddy.digest to pin the digest",
    ("redis", "CL-0019", "image"): "tag pinned; set inngest-kit:redis.digest to pin the digest",
    ("inngest", "CL-0019", "image"): "tag pinned; set inngest-kit:inngest.digest to pin the digest",
    ("app", "CL-0019", "image"): "the user's image; give app.image as name:tag@sha256:... to pin it",
}


def lint(files: dict[str, str], directory: Path) -> list[dict]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "compose_lint", "check", "--format", "json", "--fail-on", "critical", str(directory / "docker-compose.yml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["findings"]


def key(finding: dict) -> tuple[str, str, str]:
    quoted = finding["message"].split("'")
    subject = "image" if finding["rule_id"] == "CL-0019" else quoted[1] if len(quoted) >= 2 else "service"
    return finding["service"], finding["rule_id"], subject


def at_least(findings: list[dict], *severities: str) -> list[dict]:
    return [f for f in findings if f["severity"] in severities and not f["suppressed"]]


def test_no_high_finding_and_every_medium_one_is_allowed_with_a_reason(files, tmp_path):
    findings = lint(files, tmp_path / "release")
    assert at_least(findings, "critical", "high") == []
    mediums = {key(f) for f in at_least(findings, "medium")}
    assert mediums == set(ALLOWED_MEDIUM), sorted(mediums ^ set(ALLOWED_MEDIUM))


def test_with_digests_configured_only_the_public_ports_remain(tmp_path):
    raw = example_raw()
    for section in ("caddy", "redis", "inngest"):
        raw[f"inngest-kit:{section}"] = {**raw.get(f"inngest-kit:{section}", {}), "digest": DIGEST}
    raw["inngest-kit:app"]["image"] += "@" + DIGEST
    config = config_from(raw)
    findings = lint(render_stack(config, inputs_for(config)), tmp_path / "release")
    assert {key(f) for f in at_least(findings, "critical", "high", "medium")} == {k for k in ALLOWED_MEDIUM if k[1] == "CL-0005"}


@pytest.mark.parametrize("undo", ["cap_drop", "security_opt", "mem_limit", "secrets"])
def test_compose_lint_does_catch_each_hardening_taken_away(files, tmp_path, undo):
    # The checks above mean something only if compose-lint reports these when they are missing.
    model = yaml.safe_load(files["docker-compose.yml"])
    redis = model["services"]["redis"]
    if undo == "mem_limit":
        del redis["mem_limit"], redis["cpus"]
    elif undo == "secrets":
        del redis["secrets"]
        redis["volumes"].append("/run/inngest-kit/secrets/redis:/run/kit-secrets:ro")  # the old bind under /run
    else:
        del redis[undo]
    findings = lint({**files, "docker-compose.yml": yaml.safe_dump(model)}, tmp_path / "release")
    new = {key(f)[1] for f in at_least(findings, "critical", "high", "medium") if f["service"] == "redis"} - {"CL-0019"}
    assert new == {"cap_drop": {"CL-0006"}, "security_opt": {"CL-0003"}, "mem_limit": {"CL-0026"}, "secrets": {"CL-0013"}}[undo]


def test_the_cloud_sql_proxy_variant_is_hardened_too(config, tmp_path):
    base = inputs_for(config)
    inputs = RenderInputs(project=base.project, sql_private_ip="", secrets=base.secrets, sql_proxy_instance="acme-web-prod:us-central1:shared-pg")
    findings = lint(render_stack(config, inputs), tmp_path / "release")
    assert at_least(findings, "critical", "high") == []
    mediums = {key(f) for f in at_least(findings, "medium")}
    # Its image is pinned by tag in infra/sql_proxy.py, like the kit's others.
    assert mediums == set(ALLOWED_MEDIUM) | {("cloudsql-proxy", "CL-0019", "image")}, sorted(mediums ^ set(ALLOWED_MEDIUM))
