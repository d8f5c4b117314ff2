"""The plan's JSON document, its exit codes, and that no secret value ever reaches its output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from infra.cli import main
from infra.plan.evaluate import PROJECT_ROOT, SECRET, evaluate
from tests.foundation.plan_helpers import example_raw

CANARY = "sk_live_canary_value_0f3a9c"


@pytest.fixture(scope="module")
def canary_stack(tmp_path_factory):
    """A stack whose app secret is given in plain text, so the test knows a value to look for."""
    raw = example_raw()
    raw["inngest-kit:appSecrets"] = {"STRIPE_API_KEY": CANARY}
    path = tmp_path_factory.mktemp("stack") / "Pulumi.canary.yaml"
    path.write_text(yaml.safe_dump({"config": raw}))
    return path


def test_json_document_has_the_documented_shape(capsys, tmp_path):
    assert main(["plan", "--stack", "example", "--json", "--out", str(tmp_path)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"stack", "resources", "outputs", "files", "cost", "notes", "warnings"}
    assert document["notes"] == []  # a new instance: nothing assumed
    assert document["warnings"] == []  # the example stack needs no advice
    for resource in document["resources"]:
        assert {"type", "name", "parent", "depends_on", "inputs"} <= set(resource)
        assert isinstance(resource["depends_on"], list)
    assert {"startup.sh", "docker-compose.yml", "Caddyfile", "fetch-secrets.sh"} <= set(document["files"])
    # Offline, the database address is not known; the files say so rather than invent one.
    assert "(known after deploy):5432" in document["files"]["start-inngest.sh"]
    assert (tmp_path / "startup.sh").read_text() == document["files"]["startup.sh"]
    assert document["cost"]["total_usd_month"] > 0
    assert all("usd_month" in item and "price_source" in item for item in document["cost"]["items"])
    children = [r for r in document["resources"] if r["type"] == "gcp:compute/instance:Instance"]
    assert children[0]["parent"].endswith("inngest-kit:index:Vm::vm")


def test_no_generated_or_configured_secret_appears_in_any_output(capsys, tmp_path, canary_stack):
    result = evaluate("canary", config_file=canary_stack)
    assert len(result.generated_secrets) >= 5
    assert main(["plan", "--stack", "canary", "--config-file", str(canary_stack), "--json", "--out", str(tmp_path / "j")]) == 0
    assert main(["plan", "--stack", "canary", "--config-file", str(canary_stack), "--out", str(tmp_path / "t")]) == 0
    captured = capsys.readouterr()
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    everything = captured.out + captured.err + written
    assert CANARY not in everything
    # Fresh values per evaluation; the plan must mask them wherever they flow.
    second = evaluate("canary", config_file=canary_stack)
    document = json.dumps(second.document)
    for value in second.generated_secrets + [CANARY]:
        assert value not in document
    assert SECRET in document


def test_bad_config_prints_every_problem_and_exits_2(tmp_path):
    raw = example_raw()
    raw["gcp:zone"] = "europe-west1-b"
    raw["inngest-kit:sshSourceRanges"] = ["not-a-cidr"]
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": raw}))
    run = subprocess.run(
        [sys.executable, "-m", "infra", "plan", "--stack", "bad", "--config-file", str(path), "--out", str(tmp_path / "out")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 2
    assert "gcp:zone: zone 'europe-west1-b' is not in region 'us-central1'" in run.stderr
    assert "inngest-kit:sshSourceRanges[0]: 'not-a-cidr' is not a CIDR range" in run.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_stack_exits_2_with_the_fix(capsys):
    assert main(["plan", "--stack", "no-such-stack"]) == 2
    assert "no stack file Pulumi.no-such-stack.yaml" in capsys.readouterr().err
