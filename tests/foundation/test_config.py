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
    [("db-f1-micro", 25), ("db-g1-small", 50), ("db-custom-1-3840", 100), ("db-custom-2-7680", 400), ("db-custom-8-30720", 600), ("db-custom-1-1024", None), ("db-n1-huge", None), ("db-custom-1-3840\n", None), ("db-custom-٣-3840", None)],
)
def test_connection_budget_follows_the_tier(tier, max_connections):
    assert tier_max_connections(tier) == max_connections
    assert connection_budget(tier) == (None if max_connections is None else max_connections - 5)


# -- issue 8.8: real zones, regions, machine types and image references; what fits on the VM --


def test_the_default_zone_is_a_real_zone_of_the_region(raw):
    del raw["gcp:zone"]
    raw["gcp:region"] = "europe-west1"  # has b, c and d only
    assert parse_config(raw).zone == "europe-west1-b"


def test_every_region_in_the_table_defaults_to_one_of_its_own_zones():
    from infra import gcp_catalog

    assert len(gcp_catalog.regions()) > 30
    for region in gcp_catalog.regions():
        zone = gcp_catalog.default_zone(region)
        assert zone in gcp_catalog.region_zones(region) and zone.startswith(region + "-")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"gcp:region": "europe-west1", "gcp:zone": "europe-west1-a"}, "gcp:zone: 'europe-west1-a' is not a Compute Engine zone"),
        ({"gcp:region": "us-nowhere1", "gcp:zone": "us-nowhere1-a"}, "gcp:region: 'us-nowhere1' is not a Compute Engine region"),
    ],
)
def test_unknown_regions_and_zones_are_refused(raw, changes, expected):
    raw.update(changes)
    problems = problems_for(raw)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("machine_type", "vcpus", "memory_mib"),
    [
        ("e2-small", 2, 2048),
        ("n1-standard-1", 1, 3840),
        ("n1-highmem-2", 2, 13312),
        ("n2-standard-2", 2, 8192),
        ("n2d-highcpu-4", 4, 4096),
        ("c3-standard-4", 4, 16384),
        ("t2d-standard-1", 1, 4096),
        ("e2-custom-2-4096", 2, 4096),
        ("custom-2-7680", 2, 7680),
        ("n2-custom-2-20480-ext", 2, 20480),
    ],
)
def test_real_machine_families_are_accepted_with_their_shape(raw, machine_type, vcpus, memory_mib):
    raw["inngest-kit:vm"] = {"machineType": machine_type}
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], "cpus": 1, "memoryMb": 256}
    raw["inngest-kit:inngest"] = {**raw["inngest-kit:inngest"], "cpus": 1, "memoryMb": 256}
    raw["inngest-kit:caddy"] = {"memoryMb": 64}
    raw["inngest-kit:redis"] = {"memoryMb": 64}
    vm = parse_config(raw).vm
    assert (vm.vcpus, vm.memory_mib) == (vcpus, memory_mib)


@pytest.mark.parametrize("machine_type", ["e2-standard-3", "e2-custom-3-4096", "e2-custom-2-4000", "e2-custom-2-4096-ext", "n1-standard-1\nx", "m9-standard-2", "custom-2-256"])
def test_machine_types_compute_engine_does_not_offer_are_refused(raw, machine_type):
    raw["inngest-kit:vm"] = {"machineType": machine_type}
    assert any(p.startswith("inngest-kit:vm.machineType: ") and "is not a machine type" in p for p in problems_for(raw))


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com:5000/acme/web:1.4.2",
        "localhost:5000/web:1",
        "[::1]:5000/web:1",
        "acme/web:1.4.2",
        "europe-docker.pkg.dev/acme-prod/images/web:2026.11.1",
        "ghcr.io/acme/web@sha256:" + "a" * 64,
        "ghcr.io/acme/web:1.4.2@sha256:" + "0" * 64,
        "ghcr.io/acme/my__app.web-x:v1",
    ],
)
def test_image_references_follow_the_distribution_grammar(raw, image):
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], "image": image}
    assert parse_config(raw).app.image == image


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/acme/web", "ghcr.io/acme/web:latest", "ghcr.io/Acme/web:1", "ghcr.io/acme/web:", "ghcr.io/acme/web:1 2", "ghcr.io//web:1", "ghcr.io/acme/web@sha256:abc", "-web:1", "web:" + "x" * 129],
)
def test_unpinned_or_malformed_image_references_are_refused(raw, image):
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], "image": image}
    assert any(p.startswith("inngest-kit:app.image: ") and "is not a pinned image reference" in p for p in problems_for(raw))


@pytest.mark.parametrize("section", ["app", "inngest", "caddy", "redis"])
def test_cpus_above_the_vms_vcpus_are_refused(raw, section):
    raw["inngest-kit:vm"] = {"machineType": "n1-standard-1"}
    raw[f"inngest-kit:{section}"] = {**raw.get(f"inngest-kit:{section}", {}), "cpus": 1.5}
    problems = problems_for(raw)
    assert f"inngest-kit:{section}.cpus: 1.5 is above the 1 vCPUs of machine type n1-standard-1, and Docker refuses a CPU limit above the host's. Fix: set at most 1, or pick a larger vm.machineType." in problems


def test_the_example_fits_its_vm_exactly_and_one_mib_more_does_not(raw):
    config = parse_config(raw)
    total = config.app.memory_mb + config.inngest.memory_mb + config.caddy.memory_mb + config.redis.memory_mb
    assert total == config.vm.memory_mib - 384 == 1664
    raw["inngest-kit:redis"] = {"memoryMb": 257}
    problems = problems_for(raw)
    assert any(
        "the memory limits add up to 512 + 768 + 128 + 257 = 1665 MiB, over the 1664 MiB that machine type e2-small leaves (2048 MiB less 384 MiB kept for the OS, Docker and the agents)" in p
        for p in problems
    ), problems


def test_caddy_and_redis_limits_have_defaults():
    config = parse_config({**_minimal(), "inngest-kit:caddy": {}, "inngest-kit:redis": None})
    assert (config.caddy.cpus, config.caddy.memory_mb, config.redis.cpus, config.redis.memory_mb) == (0.25, 128, 0.5, 256)


@pytest.mark.parametrize("connections", [0, 1])
def test_an_inngest_pool_of_one_connection_or_none_is_refused(raw, connections):
    raw["inngest-kit:inngest"] = {**raw["inngest-kit:inngest"], "postgresMaxOpenConns": connections, "postgresMaxIdleConns": 0}
    assert any(p.startswith(f"inngest-kit:inngest.postgresMaxOpenConns: is {connections}, and Inngest v1.43 exits") for p in problems_for(raw))


# -- issue 9.11: what the review found accepted --


@pytest.mark.parametrize(("where", "name"), [("env", "LOG_LEVEL\n"), ("secrets", "STRIPE_API_KEY\n"), ("env", "\nLOG")])
def test_names_with_a_line_break_are_refused(raw, where, name):
    if where == "env":
        raw["inngest-kit:app"] = {**raw["inngest-kit:app"], "env": {name: "info"}}
        setting = f"inngest-kit:app.env.{name}"
    else:
        raw["inngest-kit:appSecrets"] = {name: "[secret]"}
        setting = f"inngest-kit:appSecrets.{name}"
    assert f"{setting}: is not a valid environment variable name. Fix: use upper-case letters, digits and underscores." in problems_for(raw)


@pytest.mark.parametrize(
    "ranges",
    [["0.0.0.0/1", "128.0.0.0/1"], ["128.0.0.0/1", "0.0.0.0/2", "64.0.0.0/2"], ["::/1", "8000::/1"], ["203.0.113.0/24", "0.0.0.0/1", "128.0.0.0/1"]],
)
def test_ssh_ranges_that_together_cover_the_internet_are_refused(raw, ranges):
    raw["inngest-kit:sshSourceRanges"] = ranges
    problems = problems_for(raw)
    assert any(p.startswith("inngest-kit:sshSourceRanges: together, ") and "cover the whole" in p and "opens SSH to everyone" in p for p in problems), problems


def test_broad_but_partial_ssh_ranges_are_accepted(raw):
    raw["inngest-kit:sshSourceRanges"] = ["0.0.0.0/1", "10.0.0.0/8", "2001:db8::/32"]
    assert parse_config(raw).ssh_source_ranges == ("0.0.0.0/1", "10.0.0.0/8", "2001:db8::/32")


@pytest.mark.parametrize("email", ['ops"@example.com', "ops`id`@example.com", "{$ACME_EMAIL}", "ops{x}@example.com", "o'ps@example.com", "ops@example.com\n# x", "ops@@example.com", "ops@-example.com", ".ops@example.com"])
def test_acme_emails_the_caddyfile_cannot_carry_are_refused(raw, email):
    raw["inngest-kit:acmeEmail"] = email
    assert any(p.startswith("inngest-kit:acmeEmail: ") and "is not an email address" in p for p in problems_for(raw))


@pytest.mark.parametrize("email", ["ops@example.com", "ops+alerts@acme-example.co.uk", "first.last_1%x@example.io"])
def test_ordinary_acme_emails_are_accepted(raw, email):
    raw["inngest-kit:acmeEmail"] = email
    assert parse_config(raw).acme_email == email


def test_an_encrypted_acme_email_is_accepted_with_a_note(raw):
    raw["inngest-kit:acmeEmail"] = {"secure": "v1:ciphertext"}
    config = parse_config(raw)
    assert config.acme_email == "[secret]"
    assert any(w.startswith("inngest-kit:acmeEmail: is encrypted") for w in config.warnings)


def test_a_plain_text_app_secret_gives_a_warning_not_an_error(raw):
    raw["inngest-kit:appSecrets"] = {"STRIPE_API_KEY": "sk_live_in_the_clear", "SENTRY_DSN": {"secure": "v1:x"}}
    config = parse_config(raw)
    assert config.app.secrets == ("SENTRY_DSN", "STRIPE_API_KEY")
    plain = [w for w in config.warnings if w.startswith("inngest-kit:appSecrets.")]
    assert plain == [
        "inngest-kit:appSecrets.STRIPE_API_KEY: is stored in plain text in the stack file. "
        "Fix: set it encrypted with `pulumi config set --secret --path 'appSecrets.STRIPE_API_KEY' <value>`."
    ]
    assert "sk_live_in_the_clear" not in "".join(config.warnings)


@pytest.mark.parametrize(
    ("name", "warned"),
    [("API_TOKEN", True), ("STRIPE_SECRET_KEY", True), ("DB_PASSWORD", True), ("OPENAI_API_KEY", True), ("AWS_SECRET_ACCESS_KEY", True), ("SENTRY_DSN", True),
     ("NODE_ENV", False), ("LOG_LEVEL", False), ("NEXT_PUBLIC_POSTHOG_KEY", False), ("KEYBOARD_LAYOUT", False)],
)
def test_secret_looking_names_in_plain_env_give_a_warning(raw, name, warned):
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], "env": {name: "value"}}
    warnings = parse_config(raw).warnings
    assert any(w.startswith(f"inngest-kit:app.env.{name}: looks like a secret") for w in warnings) is warned


def test_the_example_stack_has_no_warnings(raw):
    assert parse_config(raw).warnings == ()


def test_the_config_is_frozen(raw):
    from pydantic import ValidationError

    config = parse_config(raw)
    with pytest.raises(ValidationError):
        config.vm.machine_type = "e2-medium"
    with pytest.raises(ValidationError):
        config.domain = "evil.example.com"


@pytest.mark.parametrize(
    ("app_change", "expected"),
    [
        ({"healthPath": '/health"$(reboot)'}, "inngest-kit:app.healthPath: '/health\"$(reboot)' is not an absolute URL path"),
        ({"env": {"WINDOWS_PATH": "C:\\"}}, "inngest-kit:app.env.WINDOWS_PATH: a backslash before a quote or at the end"),
        ({"cpus": "²"}, "inngest-kit:app.cpus: must be a number from 0.1 to 64, got '²'"),
        ({"memoryMb": "9" * 5000}, "inngest-kit:app.memoryMb: must be a whole number from 64 to 262144, got '999"),
        ({"cpus": 10**5000}, "inngest-kit:app.cpus: must be a number from 0.1 to 64, got <a int too large to show>"),
    ],
)
def test_values_the_renderer_or_python_cannot_carry_are_refused_by_the_config(raw, app_change, expected):
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], **app_change}
    assert any(p.startswith(expected) for p in problems_for(raw)), problems_for(raw)


def test_non_string_keys_are_named_not_crashed_on(raw):
    raw[7] = "x"
    raw["inngest-kit:vm"] = {**raw["inngest-kit:vm"], None: 1}
    problems = problems_for(raw)
    assert "7: is not a setting name. Fix: use names such as inngest-kit:domain, as in Pulumi.example.yaml." in problems
    assert any(p.startswith("inngest-kit:vm.None: is not a setting name (names are strings). Fix: remove it, or use one of: bootDiskGb, dataDiskGb") for p in problems), problems


def _minimal() -> dict:
    return {
        "gcp:project": "acme-web-prod",
        "inngest-kit:domain": "app.example.com",
        "inngest-kit:acmeEmail": "ops@example.com",
        "inngest-kit:app": {"image": "ghcr.io/acme/web:1.0.0", "command": ["node", "server.js"]},
    }


@pytest.mark.parametrize(
    ("subnet", "expected"),
    [
        ("10.10.0.1/24", "inngest-kit:vm.subnetCidr: '10.10.0.1/24' is not a CIDR range"),
        ("8.8.8.0/24", "inngest-kit:vm.subnetCidr: 8.8.8.0/24 is not a private IPv4 range from /8 to /29"),
        ("10.0.0.0/30", "inngest-kit:vm.subnetCidr: 10.0.0.0/30 is not a private IPv4 range from /8 to /29"),
        ("fd00::/64", "inngest-kit:vm.subnetCidr: fd00::/64 is not a private IPv4 range from /8 to /29"),
    ],
)
def test_the_vm_subnet_is_a_private_ipv4_range(raw, subnet, expected):
    raw["inngest-kit:vm"] = {**raw["inngest-kit:vm"], "subnetCidr": subnet}
    assert any(p.startswith(expected) for p in problems_for(raw)), problems_for(raw)


def test_an_app_secret_name_too_long_for_its_secret_manager_id_is_refused(raw):
    raw["inngest-kit:appSecrets"] = {"X" * 231: "[secret]", "Y" * 230: "[secret]"}
    problems = problems_for(raw)
    assert [p.split(":")[1].split(".")[1][:3] for p in problems] == ["XXX"]
    assert "is 231 characters long; an app secret's Secret Manager id (<name>-app-<its name>) may have 255" in problems[0]
