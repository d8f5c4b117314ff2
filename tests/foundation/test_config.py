"""Every validation rule of the stack config, with bad input, and the all-at-once report."""

from __future__ import annotations

import copy

import pytest
import yaml

from infra.config import ConfigError, connection_budget, parse_config, tier_max_connections
from infra.plan.evaluate import PROJECT_ROOT


@pytest.fixture
def raw():
    document = yaml.safe_load((PROJECT_ROOT / "Pulumi.example.yaml").read_text())
    config = copy.deepcopy(document["config"])
    config["inngest-kit:appSecrets"] = {"STRIPE_API_KEY": "[secret]"}
    return config


def problems_for(raw) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_example_stack_is_valid_and_typed(raw):
    config = parse_config(raw)
    assert config.project == "acme-web-prod"
    assert config.vm.machine_type == "e2-small"
    assert config.app.command == ("node", "dist/server.js")
    assert config.app.secrets == ("STRIPE_API_KEY",)
    assert config.ssh_ranges == ("35.235.240.0/20", "203.0.113.0/24")
    assert config.connection_budget == 20


def test_defaults_suit_a_small_team():
    config = parse_config(
        {
            "gcp:project": "acme-web-prod",
            "inngest-kit:domain": "app.example.com",
            "inngest-kit:acmeEmail": "ops@example.com",
            "inngest-kit:app": {"image": "ghcr.io/acme/web:1.0.0", "command": ["node", "server.js"]},
        }
    )
    assert (config.region, config.zone) == ("us-central1", "us-central1-a")
    assert config.vm.machine_type == "e2-small"
    assert config.database.tier == "db-f1-micro"
    assert config.database.existing_instance is None
    assert config.inngest.version == "v1.43.0"
    assert config.ssh_via == "iap"
    assert config.app.expose_inngest_endpoint is False


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("gcp:zone", "europe-west1-b", "gcp:zone: zone 'europe-west1-b' is not in region 'us-central1'"),
        ("gcp:zone", "nowhere", "gcp:zone: 'nowhere' is not a zone name"),
        ("gcp:project", "My Project", "gcp:project: 'My Project' is not a valid project id"),
        ("gcp:region", "central", "gcp:region: 'central' is not a region name"),
        ("inngest-kit:domain", "https://app.example.com/", "inngest-kit:domain: 'https://app.example.com/' is not a fully qualified domain name"),
        ("inngest-kit:domain", "localhost", "is not a fully qualified domain name"),
        ("inngest-kit:acmeEmail", "ops-at-example", "inngest-kit:acmeEmail: 'ops-at-example' is not an email address"),
        ("inngest-kit:name", "Acme_Prod", "inngest-kit:name: 'Acme_Prod' is not a valid resource prefix"),
        ("inngest-kit:database", {"tier": "db-n1-huge"}, "inngest-kit:database.tier: 'db-n1-huge' is not a known Cloud SQL tier"),
        ("inngest-kit:database", {"version": "POSTGRES_9_6"}, "inngest-kit:database.version: 'POSTGRES_9_6' is not a supported PostgreSQL version"),
        ("inngest-kit:database", {"existingInstance": "acme:us-central1:pg"}, "inngest-kit:database.existingInstance: 'acme:us-central1:pg' is not a Cloud SQL instance name"),
        ("inngest-kit:database", {"diskGb": 5}, "inngest-kit:database.diskGb: must be a whole number from 10 to 65536, got 5"),
        ("inngest-kit:inngest", {"version": "v1.27.0"}, "inngest-kit:inngest.version: v1.27.0 is older than v1.27.1"),
        ("inngest-kit:inngest", {"version": "latest"}, "inngest-kit:inngest.version: 'latest' is not a pinned release tag"),
        ("inngest-kit:vm", {"machineType": "huge"}, "inngest-kit:vm.machineType: 'huge' is not a machine type"),
        ("inngest-kit:vm", {"diskGb": 10}, "inngest-kit:vm.diskGb: is not a known setting"),
        ("inngest-kit:sshSourceRanges", ["10.0.0.1/8"], "inngest-kit:sshSourceRanges[0]: '10.0.0.1/8' is not a CIDR range"),
        ("inngest-kit:sshSourceRanges", ["office"], "inngest-kit:sshSourceRanges[0]: 'office' is not a CIDR range"),
        ("inngest-kit:sshSourceRanges", ["0.0.0.0/0"], "inngest-kit:sshSourceRanges[0]: 0.0.0.0/0 opens SSH to the whole internet"),
        ("inngest-kit:sshVia", "telnet", "inngest-kit:sshVia: 'telnet' is not a way to reach the VM"),
        ("inngest-kit:sshUser", "Bad User", "inngest-kit:sshUser: 'Bad User' is not a POSIX user name"),
        ("inngest-kit:colour", "blue", "inngest-kit:colour: is not a known setting"),
        ("inngest-kit:app", {"image": "ghcr.io/acme/web:1.0.0", "command": ["node"], "env": {"INNGEST_SERVE_ORIGIN": "x"}}, "inngest-kit:app.env.INNGEST_SERVE_ORIGIN: is set by the kit itself"),
    ],
)
def test_each_rule_names_the_setting_the_problem_and_a_fix(raw, key, value, expected):
    raw[key] = value
    problems = problems_for(raw)
    matching = [p for p in problems if expected in p]
    assert matching, problems
    assert all("Fix: " in p for p in matching)


@pytest.mark.parametrize(
    ("app_change", "expected"),
    [
        ({"image": "ghcr.io/acme/web"}, "inngest-kit:app.image: 'ghcr.io/acme/web' is not a pinned image reference"),
        ({"image": "ghcr.io/acme/web:latest"}, "is not a pinned image reference"),
        ({"command": "node server.js"}, "inngest-kit:app.command: must be a non-empty list of strings"),
        ({"port": 8288}, "inngest-kit:app.port: 8288 is used by Inngest or Redis"),
        ({"port": 70000}, "inngest-kit:app.port: must be a whole number from 1 to 65535"),
        ({"healthPath": "healthz"}, "inngest-kit:app.healthPath: 'healthz' is not an absolute URL path"),
        ({"env": {"INNGEST_SIGNING_KEY": "x"}}, "inngest-kit:app.env.INNGEST_SIGNING_KEY: is set by the kit itself"),
        ({"env": {"lower-case": "x"}}, "inngest-kit:app.env.lower-case: is not a valid environment variable name"),
        ({"exposeInngestEndpoint": "maybe"}, "inngest-kit:app.exposeInngestEndpoint: must be true or false"),
    ],
)
def test_app_rules(raw, app_change, expected):
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], **app_change}
    assert any(expected in p for p in problems_for(raw)), problems_for(raw)


def test_app_secret_names_are_checked(raw):
    raw["inngest-kit:appSecrets"] = {"DATABASE_URL": "[secret]", "bad-name": "[secret]", "NODE_ENV": "[secret]"}
    problems = problems_for(raw)
    assert any(p.startswith("inngest-kit:appSecrets.DATABASE_URL: is set by the kit itself") for p in problems)
    assert any(p.startswith("inngest-kit:appSecrets.bad-name: is not a valid environment variable name") for p in problems)
    assert any(p.startswith("inngest-kit:appSecrets.NODE_ENV: is also set as plain env") for p in problems)


def test_direct_ssh_needs_a_source_range(raw):
    raw["inngest-kit:sshVia"] = "direct"
    raw["inngest-kit:sshSourceRanges"] = []
    assert any(p.startswith("inngest-kit:sshVia: direct SSH needs your address") for p in problems_for(raw))


def test_pools_over_the_tier_budget_are_refused_with_the_numbers(raw):
    raw["inngest-kit:inngest"] = {**raw["inngest-kit:inngest"], "postgresMaxOpenConns": 100}
    problems = problems_for(raw)
    assert any("the pools open 5 + 100 = 105 connections, over the 20 that tier db-f1-micro allows" in p for p in problems), problems


def test_a_larger_tier_admits_larger_pools(raw):
    raw["inngest-kit:inngest"] = {**raw["inngest-kit:inngest"], "postgresMaxOpenConns": 80}
    raw["inngest-kit:database"] = {**raw["inngest-kit:database"], "tier": "db-custom-2-7680"}
    assert parse_config(raw).connection_budget == 395


def test_every_problem_is_reported_at_once(raw):
    raw["gcp:zone"] = "europe-west1-b"
    raw["inngest-kit:domain"] = "not a domain"
    raw["inngest-kit:sshSourceRanges"] = ["999.1.1.1/8"]
    raw["inngest-kit:inngest"] = {"version": "v1.0.0"}
    raw["inngest-kit:database"] = {"tier": "db-n1-huge"}
    problems = problems_for(raw)
    settings = {p.split(":")[0] + ":" + p.split(":")[1] for p in problems}
    assert {"gcp:zone", "inngest-kit:domain", "inngest-kit:sshSourceRanges[0]", "inngest-kit:inngest.version", "inngest-kit:database.tier"} <= settings


@pytest.mark.parametrize(
    ("tier", "max_connections"),
    [("db-f1-micro", 25), ("db-g1-small", 50), ("db-custom-1-3840", 100), ("db-custom-2-7680", 400), ("db-custom-8-30720", 600), ("db-custom-1-1024", None), ("db-n1-huge", None)],
)
def test_connection_budget_follows_the_tier(tier, max_connections):
    assert tier_max_connections(tier) == max_connections
    assert connection_budget(tier) == (None if max_connections is None else max_connections - 5)
