"""The Pulumi program under mocks: each invariant as an assertion on the registered properties."""

from __future__ import annotations

import pytest

from infra.config import IAP_SOURCE_RANGE
from infra.plan.evaluate import SECRET, evaluate
from tests.foundation.plan_helpers import adopted_document, closure, example_raw, of_type, one

FIREWALL = "gcp:compute/firewall:Firewall"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
INSTANCE = "gcp:compute/instance:Instance"
DEPLOYMENT = "pulumi-python:dynamic/inngest-kit:StackDeployment"


@pytest.fixture(scope="module")
def plan():
    return evaluate("example").document


@pytest.fixture(scope="module")
def adopted():
    return adopted_document()


def test_public_surface_is_web_only_and_ssh_from_iap_and_configured_ranges(plan):
    allowing = {r["name"]: r["inputs"] for r in of_type(plan, FIREWALL) if r["inputs"].get("allows")}
    assert set(allowing) == {"allow-web", "allow-ssh"}
    web = allowing["allow-web"]
    assert web["sourceRanges"] == ["0.0.0.0/0"] and web["direction"] == "INGRESS"
    assert sorted((a["protocol"], tuple(a["ports"])) for a in web["allows"]) == [("tcp", ("80", "443")), ("udp", ("443",))]
    ssh = allowing["allow-ssh"]
    assert ssh["sourceRanges"] == [IAP_SOURCE_RANGE, "203.0.113.0/24"]
    assert ssh["allows"] == [{"ports": ["22"], "protocol": "tcp"}]
    deny = one(plan, FIREWALL, "deny-other-ingress")["inputs"]
    assert deny["denies"] == [{"protocol": "all"}] and deny["sourceRanges"] == ["0.0.0.0/0"]
    assert deny["priority"] > max(r["priority"] for r in allowing.values())


def test_port_8288_is_never_opened(plan):
    for rule in of_type(plan, FIREWALL):
        for allow in rule["inputs"].get("allows", []):
            assert not {"8288", "8289"} & set(allow.get("ports", [])), rule["name"]


def test_cloud_sql_is_private_tls_only_backed_up_and_protected(plan):
    sql = one(plan, SQL, "pg")
    settings = sql["inputs"]["settings"]
    ip = settings["ipConfiguration"]
    assert ip["ipv4Enabled"] is False
    assert ip["sslMode"] == "ENCRYPTED_ONLY"
    assert ip["privateNetwork"] == one(plan, "gcp:compute/network:Network", "vpc")["inputs"]["name"] + "-id"
    backups = settings["backupConfiguration"]
    assert backups["enabled"] is True and backups["pointInTimeRecoveryEnabled"] is True
    assert settings["maintenanceWindow"] == {"day": 7, "hour": 4, "updateTrack": "stable"}
    assert sql["inputs"]["deletionProtection"] is True and settings["deletionProtectionEnabled"] is True
    assert sql["options"]["protect"] is True
    assert settings["tier"] == "db-f1-micro"


def test_cloud_sql_waits_for_private_service_access(plan):
    sql = one(plan, SQL, "pg")
    psa = one(plan, "gcp:servicenetworking/connection:Connection", "psa")
    assert psa["urn"] in closure(plan, sql["urn"])
    peering = one(plan, "gcp:compute/globalAddress:GlobalAddress", "psa-range")["inputs"]
    assert peering["purpose"] == "VPC_PEERING"


def test_databases_and_users_for_app_and_inngest(plan):
    assert {r["inputs"]["name"] for r in of_type(plan, "gcp:sql/database:Database")} == {"app", "inngest"}
    users = of_type(plan, "gcp:sql/user:User")
    # Each database's owner, and its two login roles that take turns across password rotations.
    assert {u["inputs"]["name"] for u in users} == {"app", "app_a", "app_b", "inngest", "inngest_a", "inngest_b"}
    for user in users:
        assert user["inputs"]["password"] == SECRET
        # The keys CLI rotates passwords outside Pulumi: `pulumi up` must not set the old one back.
        assert "password" in user["options"]["ignore_changes"]


def test_each_secret_is_readable_by_the_vm_account_only(plan):
    secrets = {r["inputs"]["secretId"] for r in of_type(plan, "gcp:secretmanager/secret:Secret")}
    assert secrets == {"acme-inngest-signing-key", "acme-inngest-event-key", "acme-db-app-password", "acme-db-inngest-password", "acme-redis-password", "acme-app-stripe-api-key"}
    grants = of_type(plan, "gcp:secretmanager/secretIamMember:SecretIamMember")
    assert sorted(g["inputs"]["secretId"] for g in grants) == sorted(secrets)
    for grant in grants:
        assert grant["inputs"]["role"] == "roles/secretmanager.secretAccessor"
        assert grant["inputs"]["member"] == "serviceAccount:acme-vm@acme-web-prod.iam.gserviceaccount.com"
    project_roles = {r["inputs"]["role"] for r in of_type(plan, "gcp:projects/iAMMember:IAMMember")}
    assert project_roles == {"roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/cloudsql.client"}
    assert not any("secretmanager" in role for role in project_roles)


def test_initial_versions_hold_generated_values_as_secrets(plan):
    versions = of_type(plan, "gcp:secretmanager/secretVersion:SecretVersion")
    assert len(versions) == 6
    assert all(v["inputs"]["secretData"] == SECRET for v in versions)


def test_generated_keys_are_sized_for_inngest(plan):
    passwords = {r["name"]: r["inputs"] for r in of_type(plan, "random:index/randomPassword:RandomPassword")}
    # 64 characters from exactly [0-9a-f]: 32 bytes as bare hex, as the server hex-decodes it.
    signing = passwords["inngest-signing-key"]
    assert signing["length"] == 64 and signing["special"] is True and signing["overrideSpecial"] == "abcdef"
    assert signing["numeric"] is True and signing["upper"] is False and signing["lower"] is False
    # Letters and digits only: URL-safe and free of commas.
    event = passwords["inngest-event-key"]
    assert event["special"] is False and event["length"] >= 40
    for logical in ("db-app-password", "db-inngest-password"):
        assert passwords[logical]["overrideSpecial"] == "-_" and passwords[logical]["length"] >= 32


def test_vm_is_shielded_os_login_only_and_has_no_serial_port(plan):
    vm = one(plan, INSTANCE, "vm")["inputs"]
    assert vm["shieldedInstanceConfig"] == {"enableIntegrityMonitoring": True, "enableSecureBoot": True, "enableVtpm": True}
    metadata = vm["metadata"]
    assert metadata["enable-oslogin"] == "TRUE"
    assert metadata["block-project-ssh-keys"] == "TRUE"
    assert metadata["serial-port-enable"] == "FALSE"
    assert metadata["enable-guest-attributes"] == "TRUE"
    assert "ssh-keys" not in metadata
    assert vm["canIpForward"] is False
    assert vm["bootDisk"]["initializeParams"]["image"] == "debian-cloud/debian-12"
    assert vm["bootDisk"]["autoDelete"] is True
    assert vm["serviceAccount"]["email"] == "acme-vm@acme-web-prod.iam.gserviceaccount.com"


def test_data_disk_is_separate_persistent_and_snapshotted_daily(plan):
    vm = one(plan, INSTANCE, "vm")["inputs"]
    disk = one(plan, "gcp:compute/disk:Disk", "data")
    assert vm["attachedDisks"] == [{"deviceName": "data", "mode": "READ_WRITE", "source": "acme-data-id"}]
    assert disk["inputs"]["size"] == 20 and disk["options"]["protect"] is True
    policy = one(plan, "gcp:compute/resourcePolicy:ResourcePolicy", "data-snapshots")["inputs"]["snapshotSchedulePolicy"]
    assert policy["schedule"]["dailySchedule"]["daysInCycle"] == 1
    assert policy["retentionPolicy"]["maxRetentionDays"] == 14
    attachment = one(plan, "gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment", "data-snapshots")["inputs"]
    assert attachment["disk"] == "acme-data"


def test_startup_script_is_in_metadata_and_formats_only_a_blank_disk(plan):
    script = one(plan, INSTANCE, "vm")["inputs"]["metadata"]["startup-script"]
    assert script == plan["files"].get("startup.sh", script)
    format_at = script.index("mkfs.ext4")
    guard_at = script.index('if ! blkid -p "$DATA_DEVICE"')
    assert guard_at < format_at
    assert "systemctl enable inngest-kit.service" in script


def test_deploy_identity_has_sudo_and_iap_on_this_instance_only(plan):
    admin = one(plan, "gcp:compute/instanceIAMMember:InstanceIAMMember", "os-admin-login")["inputs"]
    assert admin["role"] == "roles/compute.osAdminLogin" and admin["instanceName"] == "acme-vm"
    tunnel = one(plan, "gcp:iap/tunnelInstanceIAMMember:TunnelInstanceIAMMember", "iap-tunnel")["inputs"]
    assert tunnel["role"] == "roles/iap.tunnelResourceAccessor" and tunnel["instance"] == "acme-vm"
    key = one(plan, "tls:index/privateKey:PrivateKey", "deploy-key")["inputs"]
    assert key["algorithm"] == "ED25519"


def test_apis_are_enabled_and_left_on_at_destroy(plan):
    services = {r["inputs"]["service"]: r["inputs"] for r in of_type(plan, "gcp:projects/service:Service")}
    assert {"compute.googleapis.com", "sqladmin.googleapis.com", "servicenetworking.googleapis.com", "secretmanager.googleapis.com", "iap.googleapis.com"} <= set(services)
    assert all(s["disableOnDestroy"] is False for s in services.values())


def test_cloud_sql_and_the_vm_are_created_in_parallel(plan):
    sql = one(plan, SQL, "pg")["urn"]
    vm = one(plan, INSTANCE, "vm")["urn"]
    assert sql not in closure(plan, vm)
    assert vm not in closure(plan, sql)


def test_only_the_database_objects_wait_for_the_database(plan):
    sql = one(plan, SQL, "pg")["urn"]
    waiting = {r["type"] for r in plan["resources"] if sql in closure(plan, r["urn"])}
    assert waiting == {"gcp:sql/database:Database", "gcp:sql/user:User", DEPLOYMENT}


def test_outputs_are_complete_and_nothing_secret_is_plain(plan):
    outputs = plan["outputs"]
    for key in ("vm_name", "zone", "project", "external_ip", "url", "sql_connection_name", "sql_private_ip", "secret_ids", "connection_budget"):
        assert key in outputs
    assert outputs["vm_name"] == "acme-vm"
    assert outputs["url"] == "https://app.acme-example.com"
    assert outputs["sql_connection_name"] == "acme-web-prod:us-central1:acme-pg"
    assert outputs["connection_budget"] == 20
    assert outputs["ssh_private_key"] == SECRET


def test_adopt_mode_reads_the_instance_and_creates_only_databases_and_users(adopted):
    instances = of_type(adopted, SQL)
    assert len(instances) == 1
    assert instances[0]["options"]["read_only"] is True
    assert not of_type(adopted, "gcp:servicenetworking/connection:Connection")
    assert len(of_type(adopted, "gcp:sql/database:Database")) == 2
    assert len(of_type(adopted, "gcp:sql/user:User")) == 6
    for resource in of_type(adopted, "gcp:sql/database:Database") + of_type(adopted, "gcp:sql/user:User"):
        assert resource["inputs"]["instance"] == "shared-pg"
        # Leaving the stack must not drop databases in an instance the stack does not own.
        assert resource["inputs"]["deletionPolicy"] == "ABANDON"
    assert adopted["outputs"]["sql_connection_name"] == "acme-web-prod:us-central1:shared-pg"


def test_the_deploy_waits_for_the_vm_the_database_the_secrets_and_the_login(plan):
    deployment = one(plan, DEPLOYMENT, "stack")
    waits_for = closure(plan, deployment["urn"])
    for type_, name in [
        (INSTANCE, "vm"),
        ("gcp:sql/user:User", "user-app"),
        ("gcp:sql/user:User", "user-inngest"),
        ("gcp:sql/database:Database", "db-inngest"),
        ("gcp:secretmanager/secretIamMember:SecretIamMember", "inngest-signing-key-accessor"),
        ("gcp:secretmanager/secretIamMember:SecretIamMember", "app-stripe-api-key-accessor"),
        ("gcp:oslogin/sshPublicKey:SshPublicKey", "deploy-key"),
        ("gcp:compute/instanceIAMMember:InstanceIAMMember", "os-admin-login"),
        ("gcp:iap/tunnelInstanceIAMMember:TunnelInstanceIAMMember", "iap-tunnel"),
    ]:
        assert one(plan, type_, name)["urn"] in waits_for, name


def test_the_deploy_goes_through_iap_and_verifies_the_host_key_from_guest_attributes(plan):
    inputs = one(plan, DEPLOYMENT, "stack")["inputs"]
    assert inputs["host"] == "acme-vm"
    assert inputs["proxy_command"] == ["gcloud", "compute", "start-iap-tunnel", "acme-vm", "22", "--listen-on-stdin", "--zone", "us-central1-a", "--project", "acme-web-prod"]
    assert inputs["host_key_source"] == {"instance": "acme-vm", "project": "acme-web-prod", "zone": "us-central1-a"}
    assert inputs["private_key"] == SECRET
    assert "host_keys" not in inputs or not inputs["host_keys"]


def test_the_deploy_ships_exactly_the_rendered_release(plan):
    files = one(plan, DEPLOYMENT, "stack")["inputs"]["files"]
    assert {"docker-compose.yml", "Caddyfile", "fetch-secrets.sh", "start-inngest.sh"} <= set(files)
    assert {path: plan["files"][path] for path in files} == files


def test_direct_ssh_connects_to_the_external_address_without_a_proxy():
    raw = example_raw()
    raw["inngest-kit:sshVia"] = "direct"
    document = evaluate("direct", raw=raw).document
    inputs = one(document, DEPLOYMENT, "stack")["inputs"]
    assert inputs["host"] == "(known after deploy)"  # the static external IP
    assert not inputs.get("proxy_command")


def test_rotation_reminders_go_to_a_topic_the_secret_manager_agent_may_publish_to(plan):
    topic = one(plan, "gcp:pubsub/topic:Topic", "rotation-reminders")["inputs"]
    publisher = one(plan, "gcp:pubsub/topicIAMMember:TopicIAMMember", "rotation-publisher")["inputs"]
    assert publisher["topic"] == topic["name"] and publisher["role"] == "roles/pubsub.publisher"
    assert publisher["member"].endswith("@gcp-sa-secretmanager.iam.gserviceaccount.com")
    for secret in of_type(plan, "gcp:secretmanager/secret:Secret"):
        if secret["name"].startswith("app-"):
            assert "rotation" not in secret["inputs"]  # the app's own secrets rotate when the user changes them
        else:
            assert secret["inputs"]["rotation"]["rotationPeriod"] == f"{90 * 86400}s"
            assert secret["inputs"]["topics"] == [{"name": f"projects/acme-web-prod/topics/{topic['name']}"}]
