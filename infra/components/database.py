"""Cloud SQL for PostgreSQL: a new private, TLS-only instance, or an adopted existing one.

Either way the stack creates its own two databases and users (app, inngest).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra import naming
from infra.adopted import AdoptedInstance, from_invoke
from infra.config import DatabaseConfig


@dataclass(frozen=True)
class DatabaseArgs:
    project: str
    region: str
    instance_name: str
    settings: DatabaseConfig
    network_id: pulumi.Input[str] | None
    passwords: dict[str, pulumi.Input[str]]  # user name -> password (a Pulumi secret)
    # The instance may only be created once the PSA peering exists.
    depends_on: list[pulumi.Resource]
    # The adopted instance as read at preview (read_adopted_instance); None for a new instance.
    adopted: AdoptedInstance | None = None


# The keys CLI changes user passwords outside Pulumi; `pulumi up` must not put the old one back.
USER_IGNORE_CHANGES = ["password"]

# CIS Google Cloud Platform Foundation Benchmark v3.0.0, section 6.2 (Cloud SQL for PostgreSQL).
# Only on an instance the stack creates: an adopted instance is never changed. Changing
# cloudsql.enable_pgaudit restarts the instance (Cloud SQL flags documentation).
CIS_DATABASE_FLAGS = {
    "log_error_verbosity": "default",  # 6.2.1: DEFAULT or stricter
    "log_connections": "on",  # 6.2.2
    "log_disconnections": "on",  # 6.2.3
    "log_statement": "ddl",  # 6.2.4: set appropriately (schema changes, not every query)
    "log_min_messages": "warning",  # 6.2.5: at minimum WARNING
    "log_min_error_statement": "error",  # 6.2.6: ERROR or stricter
    "log_min_duration_statement": "-1",  # 6.2.7: disabled (statements may carry secrets)
    "cloudsql.enable_pgaudit": "on",  # 6.2.8: centralized audit logging
    # What pgaudit records: role changes and schema changes. The extension itself is created in each
    # database by the login roles' SQL (infra/keys/db_roles.py), as Cloud SQL's pgAudit page
    # (sql/docs/postgres/pg-audit) lists: the flag, CREATE EXTENSION, then pgaudit.log.
    "pgaudit.log": "role,ddl",
}


def read_adopted_instance(project: str, name: str) -> AdoptedInstance:
    """Reads an existing instance at preview (an invoke: a data source, never a change), so that the
    program can choose how the VM reaches it and size the pools to its real tier before registering
    anything. Under the offline plan the mocks answer it (infra/plan/mocks.py)."""
    return from_invoke(gcp.sql.get_database_instance(name=name, project=project))


def _joined_certificates(certs) -> str:
    # During a CA rotation Cloud SQL lists the current and the upcoming CA: trust both.
    pems = [c.cert.strip() for c in certs or [] if c.cert]
    return "\n".join(pems) + ("\n" if pems else "")


class Database(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inngest-kit:index:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        if s.adopted:
            # A read-only reference: Pulumi never updates or deletes a resource it only reads.
            self.instance = gcp.sql.DatabaseInstance.get(
                "pg", id=f"projects/{args.project}/instances/{s.existing_instance}", project=args.project, opts=child
            )
        else:
            self.instance = self._new_instance(args, child)
        self.databases = {
            db: gcp.sql.Database(
                f"db-{db}",
                name=db,
                project=args.project,
                instance=self.instance.name,
                # An adopted or protected instance keeps the data even if the stack goes away.
                deletion_policy="ABANDON",
                opts=child,
            )
            for db in (naming.APP_DB_NAME, naming.INNGEST_DB_NAME)
        }
        self.users = {
            user: gcp.sql.User(
                f"user-{user}",
                name=user,
                project=args.project,
                instance=self.instance.name,
                password=password,
                deletion_policy="ABANDON",
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=USER_IGNORE_CHANGES),
            )
            for user, password in args.passwords.items()
        }
        if args.adopted is not None:
            # What the preview read; the instance is never changed by this stack.
            self.connection_name = pulumi.Output.from_input(args.adopted.connection_name)
            self.private_ip = pulumi.Output.from_input(args.adopted.private_ip)
            self.server_ca_pem = pulumi.Output.from_input(args.adopted.server_ca_pem)
        else:
            self.connection_name = self.instance.connection_name
            self.private_ip = self.instance.private_ip_address
            self.server_ca_pem = self.instance.server_ca_certs.apply(_joined_certificates)
        self.register_outputs({"connection_name": self.connection_name, "private_ip": self.private_ip})

    def _new_instance(self, args: DatabaseArgs, child: pulumi.ResourceOptions) -> gcp.sql.DatabaseInstance:
        s = args.settings
        return gcp.sql.DatabaseInstance(
            "pg",
            name=args.instance_name,
            project=args.project,
            region=args.region,
            database_version=s.version,
            deletion_protection=True,
            settings=gcp.sql.DatabaseInstanceSettingsArgs(
                tier=s.tier,
                edition="ENTERPRISE",
                availability_type="ZONAL",
                disk_type="PD_SSD",
                disk_size=s.disk_gb,
                disk_autoresize=True,
                deletion_protection_enabled=True,
                ip_configuration=gcp.sql.DatabaseInstanceSettingsIpConfigurationArgs(
                    ipv4_enabled=False,
                    private_network=args.network_id,
                    ssl_mode="ENCRYPTED_ONLY",
                ),
                backup_configuration=gcp.sql.DatabaseInstanceSettingsBackupConfigurationArgs(
                    enabled=True,
                    point_in_time_recovery_enabled=True,
                    start_time="03:00",
                    transaction_log_retention_days=7,
                    backup_retention_settings=gcp.sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(
                        retained_backups=7, retention_unit="COUNT"
                    ),
                ),
                maintenance_window=gcp.sql.DatabaseInstanceSettingsMaintenanceWindowArgs(
                    day=s.maintenance_day, hour=s.maintenance_hour, update_track="stable"
                ),
                insights_config=gcp.sql.DatabaseInstanceSettingsInsightsConfigArgs(query_insights_enabled=True),
                database_flags=[gcp.sql.DatabaseInstanceSettingsDatabaseFlagArgs(name=n, value=v) for n, v in CIS_DATABASE_FLAGS.items()],
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=args.depends_on, protect=True)),
        )
