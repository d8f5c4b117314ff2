"""Adopt mode under Pulumi mocks: the program reads the adopted instance (an invoke the mocks answer
from a description in the Cloud SQL Admin API's format) and reaches it whatever its networking.

- private IP on a VPC of the project: the VM's subnet and the kit's firewall rules go into that VPC;
- public IP only, no authorized networks: the kit's own VPC, and the Cloud SQL Auth Proxy as a
  compose service with the VM's service account.
Neither creates Private Service Access, and the connection budget comes from the tier read."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from infra.cli import main
from infra.plan.evaluate import PROJECT_ROOT, PlanInputError, evaluate
from infra.plan.mocks import STAND_IN_ADOPTED_INSTANCE
from infra.sql_proxy import PROXY_IMAGE, PROXY_SERVICE
from tests.foundation.plan_helpers import closure, of_type, one

SUBNET = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"
VPC = "gcp:compute/network:Network"
INSTANCE = "gcp:compute/instance:Instance"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
DEPLOYMENT = "pulumi-python:dynamic/inngest-kit:StackDeployment"
SHARED_VPC = "projects/acme-web-prod/global/networks/shared-vpc"


def adopt_raw() -> dict:
    return copy.deepcopy(yaml.safe_load((PROJECT_ROOT / "Pulumi.adopt.yaml").read_text())["config"])


def described(**changes) -> dict:
    description = json.loads(STAND_IN_ADOPTED_INSTANCE.read_text())
    for key, value in changes.items():
        if key in ("tier", "ipConfiguration", "databaseFlags"):
            description["settings"][key] = value
        else:
            description[key] = value
    return description


PUBLIC_ONLY = described(
    ipAddresses=[{"type": "PRIMARY", "ipAddress": "203.0.113.40"}, {"type": "OUTGOING", "ipAddress": "203.0.113.41"}],
    ipConfiguration={"ipv4Enabled": True, "sslMode": "ENCRYPTED_ONLY", "authorizedNetworks": []},
    tier="db-g1-small",
)


@pytest.fixture(scope="module")
def private():
    return evaluate("adopt").document


@pytest.fixture(scope="module")
def public():
    return evaluate("adopt", adopted_instance=PUBLIC_ONLY).document


def no_private_service_access(document: dict) -> None:
    assert not of_type(document, "gcp:servicenetworking/connection:Connection")
    assert not of_type(document, "gcp:compute/globalAddress:GlobalAddress")


def test_private_ip_the_vm_joins_the_instances_own_network(private):
    assert not of_type(private, VPC), "no VPC of the kit's own: the VM must share the instance's"
    subnet = one(private, SUBNET, "subnet")
    assert subnet["inputs"]["network"] == SHARED_VPC
    assert subnet["inputs"]["ipCidrRange"] == "10.10.0.0/24" and subnet["inputs"]["region"] == "us-central1"
    vm = one(private, INSTANCE, "vm")
    assert vm["inputs"]["networkInterfaces"][0]["subnetwork"] == "acme-subnet-id"
    assert subnet["urn"] in closure(private, vm["urn"])
    no_private_service_access(private)


def test_private_ip_firewall_rules_in_that_network_touch_only_the_kits_vm(private):
    rules = {r["name"]: r["inputs"] for r in of_type(private, FIREWALL)}
    assert set(rules) == {"allow-web", "allow-ssh", "deny-other-ingress"}
    for rule in rules.values():
        assert rule["network"] == SHARED_VPC
        assert rule["targetTags"], "a rule without target tags would apply to every VM of the shared network"
    assert set(rules["deny-other-ingress"]["targetTags"]) == {"kit-web", "kit-ssh"}


def test_private_ip_the_release_connects_directly_and_verifies_the_instance_ca(private):
    files = private["files"]
    assert "postgres://${db_user}:${db_password}@10.61.0.3:5432/inngest?sslmode=verify-ca&sslrootcert=/kit/server-ca.pem" in files["start-inngest.sh"]
    assert "@10.61.0.3:5432/app?sslmode=verify-ca&sslrootcert=/kit/server-ca.pem" in files["with-secrets.sh"]
    assert "server-ca.pem" in files
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert PROXY_SERVICE not in compose["services"]
    for service in ("app", "inngest"):
        assert "/srv/kit/current/server-ca.pem:/kit/server-ca.pem:ro" in compose["services"][service]["volumes"]
    assert private["outputs"]["sql_private_ip"] == "10.61.0.3"


def test_adopted_instance_is_only_read_and_the_budget_comes_from_its_read_tier(private, public):
    sql = of_type(private, SQL)
    assert len(sql) == 1 and sql[0]["options"]["read_only"] is True
    # Stand-in tier db-custom-1-3840: max_connections 100, less 5 reserved. Not database.tier's default (db-f1-micro: 20).
    assert private["outputs"]["connection_budget"] == 95
    assert public["outputs"]["connection_budget"] == 45  # db-g1-small: 50 - 5


def test_public_only_the_auth_proxy_runs_as_a_service_with_pinned_image_and_flags(public):
    compose = yaml.safe_load(public["files"]["docker-compose.yml"])
    proxy = compose["services"][PROXY_SERVICE]
    assert proxy["image"] == PROXY_IMAGE == "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.25.3"
    assert proxy["command"] == ["--address", "0.0.0.0", "--port", "5432", "--health-check", "--structured-logs", "acme-web-prod:us-central1:shared-pg"]
    assert proxy["healthcheck"]["test"] == ["CMD", "/cloud-sql-proxy", "wait", "--max", "5s"]
    assert "ports" not in proxy, "the proxy is reachable on the stack's network only"
    assert not {"credentials-file", "--credentials-file", "--token"} & set(proxy["command"]), "the VM's own service account, no key"
    for client in ("app", "inngest"):
        assert compose["services"][client]["depends_on"][PROXY_SERVICE] == {"condition": "service_healthy"}
        assert not any("server-ca.pem" in v for v in compose["services"][client]["volumes"])
    assert "server-ca.pem" not in public["files"]
    assert f"@{PROXY_SERVICE}:5432/inngest?sslmode=disable" in public["files"]["start-inngest.sh"]
    assert f"@{PROXY_SERVICE}:5432/app?sslmode=disable" in public["files"]["with-secrets.sh"]


def test_public_only_the_vm_stays_in_the_kits_vpc_with_the_cloudsql_client_role(public):
    vpc = one(public, VPC, "vpc")
    assert one(public, SUBNET, "subnet")["inputs"]["network"] == "acme-vpc-id"
    assert vpc["inputs"]["name"] == "acme-vpc"
    no_private_service_access(public)
    roles = {r["inputs"]["role"] for r in of_type(public, "gcp:projects/iAMMember:IAMMember")}
    assert "roles/cloudsql.client" in roles
    assert not of_type(public, SQL)[0]["inputs"].get("settings"), "the instance is read, never given settings (no authorized network added)"


def test_the_plan_shows_how_the_vm_reaches_the_instance_and_that_it_used_a_stand_in(capsys, tmp_path):
    assert main(["plan", "--stack", "adopt", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "NOTE: STAND-IN: the offline plan cannot read the adopted instance shared-pg" in text
    assert "Database: direct to private IP 10.61.0.3: the VM joins the instance's network shared-vpc" in text
    described_file = tmp_path / "shared-pg.json"
    described_file.write_text(json.dumps(PUBLIC_ONLY))
    assert main(["plan", "--stack", "adopt", "--adopted-instance", str(described_file), "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "STAND-IN" not in text and f"as described in {described_file}" in text
    assert "Database: Cloud SQL Auth Proxy to acme-web-prod:us-central1:shared-pg over its public IP (it has no private IP)" in text


def test_pools_over_the_adopted_tiers_budget_are_refused_naming_the_instance():
    raw = adopt_raw()
    raw["inngest-kit:inngest"]["postgresMaxOpenConns"] = 30
    with pytest.raises(PlanInputError) as caught:
        evaluate("adopt", raw=raw, adopted_instance=described(tier="db-f1-micro"))
    text = str(caught.value)
    assert "5 + 30 = 35 connections, over the 20 that the adopted instance 'shared-pg' allows" in text
    assert "tier db-f1-micro" in text


def test_the_instances_max_connections_flag_is_its_real_limit(public):
    document = evaluate("adopt", adopted_instance=described(tier="db-f1-micro", databaseFlags=[{"name": "max_connections", "value": "60"}])).document
    assert document["outputs"]["connection_budget"] == 55


def test_settings_adopt_mode_ignores_are_refused_all_at_once():
    raw = adopt_raw()
    raw["inngest-kit:database"].update(tier="db-g1-small", version="POSTGRES_16", diskGb=50, maintenanceDay=3)
    with pytest.raises(PlanInputError) as caught:
        evaluate("adopt", raw=raw)
    problems = caught.value.problems
    for setting in ("tier", "version", "diskGb", "maintenanceDay"):
        assert any(p.startswith(f"inngest-kit:database.{setting}: has no effect when database.existingInstance is set") for p in problems), setting
    assert len(problems) == 4


def test_a_private_only_instance_on_another_projects_vpc_is_refused_with_the_fix():
    shared = described(ipConfiguration={"ipv4Enabled": False, "privateNetwork": "projects/acme-network-host/global/networks/shared"})
    with pytest.raises(PlanInputError, match="Shared VPC.*Fix: enable the instance's public IP"):
        evaluate("adopt", adopted_instance=shared)


def test_a_shared_vpc_instance_with_a_public_ip_goes_through_the_proxy():
    shared = described(
        ipAddresses=[{"type": "PRIVATE", "ipAddress": "10.9.0.5"}, {"type": "PRIMARY", "ipAddress": "203.0.113.40"}],
        ipConfiguration={"ipv4Enabled": True, "privateNetwork": "projects/acme-network-host/global/networks/shared"},
    )
    document = evaluate("adopt", adopted_instance=shared).document
    assert document["outputs"]["database_reach"].startswith("Cloud SQL Auth Proxy to acme-web-prod:us-central1:shared-pg")
    assert PROXY_SERVICE in yaml.safe_load(document["files"]["docker-compose.yml"])["services"]


def test_legacy_n1_tiers_have_a_known_limit_and_an_unknown_tier_asks_for_the_flag():
    from infra.adopted import adopted_budget, from_invoke, max_connections
    from infra.config import ConfigError
    from infra.plan.mocks import invoke_result

    def read(tier: str):
        # The same camelCase result the mocks return, read the way the program reads pulumi-gcp's result.
        raw = invoke_result(described(tier=tier), name="shared-pg", project="acme-web-prod")
        settings = raw["settings"][0]
        return from_invoke({**raw, "settings": [{"tier": settings["tier"], "database_flags": [], "ip_configurations": []}]})

    assert max_connections(read("db-n1-standard-1")) == 100  # 3.75 GB
    assert max_connections(read("db-n1-standard-2")) == 400  # 7.5 GB
    assert max_connections(read("db-n1-highmem-4")) == 500  # 26 GB
    with pytest.raises(ConfigError, match="tier 'db-perf-optimized-N-4'.*max_connections database flag"):
        adopted_budget(read("db-perf-optimized-N-4"), 5, 10)


def test_the_subnet_range_is_a_setting_checked_before_anything_runs():
    raw = adopt_raw()
    raw["inngest-kit:vm"]["subnetCidr"] = "10.10.0.1/24"
    with pytest.raises(PlanInputError, match=r"inngest-kit:vm.subnetCidr: '10.10.0.1/24' is not a CIDR range"):
        evaluate("adopt", raw=raw)
    raw["inngest-kit:vm"]["subnetCidr"] = "10.42.8.0/22"
    assert one(evaluate("adopt", raw=raw).document, SUBNET, "subnet")["inputs"]["ipCidrRange"] == "10.42.8.0/22"


def test_an_instance_that_demands_client_certificates_is_reached_by_the_proxy_over_its_private_ip():
    strict = described(ipConfiguration={"ipv4Enabled": False, "privateNetwork": SHARED_VPC, "sslMode": "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"})
    document = evaluate("adopt", adopted_instance=strict).document
    assert one(document, SUBNET, "subnet")["inputs"]["network"] == SHARED_VPC
    proxy = yaml.safe_load(document["files"]["docker-compose.yml"])["services"][PROXY_SERVICE]
    assert proxy["command"][-2:] == ["--private-ip", "acme-web-prod:us-central1:shared-pg"]
    assert "server-ca.pem" not in document["files"]
    assert "over private IP 10.61.0.3" in document["outputs"]["database_reach"]
    no_private_service_access(document)


def test_pulumi_up_stops_with_exit_2_and_no_resource_when_the_pools_do_not_fit_the_adopted_instance(capsys):
    from infra.plan.mocks import PlanMocks, RecordingMonitor
    from tests.foundation.test_entrypoint import run_entrypoint

    raw = adopt_raw()
    raw["inngest-kit:inngest"]["postgresMaxOpenConns"] = 100  # the stand-in's tier allows 95 in all
    monitor = RecordingMonitor(PlanMocks("acme-web-prod", "us-central1"))
    with pytest.raises(SystemExit) as stopped:
        run_entrypoint(raw, monitor)
    assert stopped.value.code == 2
    assert monitor.registrations == []
    assert "5 + 100 = 105 connections, over the 95 that the adopted instance 'shared-pg' allows" in capsys.readouterr().err
