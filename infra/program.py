"""The Pulumi program: builds one component per logical piece from a validated StackConfig.

The resource graph lets Cloud SQL (about ten minutes to create) and the VM come up in
parallel: the VM needs the network and its service account, never the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra import naming
from infra.adopted import DatabaseReach, adopted_budget, choose_reach, new_instance_reach
from infra.components.access import AccessArgs, OperatorAccess
from infra.components.apis import ApisArgs, ProjectApis, api_dependencies, services_for
from infra.components.database import Database, DatabaseArgs, read_adopted_instance
from infra.components.network import Network, NetworkArgs
from infra.components.registry import ImagePullAccess, ImagePullArgs
from infra.components.secrets import Secrets, SecretsArgs
from infra.components.vm import Vm, VmArgs, VmIdentity, VmIdentityArgs
from infra.config import StackConfig
from infra.deploy.provider import StackDeployment, StackDeploymentArgs
from infra.images import artifact_repository
from infra.remote.target import iap_proxy_command
from infra.render import RenderInputs, SecretRef, render_stack
from infra.startup import render_startup_script, startup_script_version


@dataclass
class Stack:
    apis: ProjectApis
    network: Network
    identity: VmIdentity
    secrets: Secrets
    database: Database
    vm: Vm
    access: OperatorAccess
    pull_access: ImagePullAccess
    deployment: StackDeployment
    outputs: dict[str, pulumi.Input]
    reach: DatabaseReach


def build(config: StackConfig, app_secret_values: dict[str, pulumi.Input[str]], registry_token: pulumi.Input[str] | None = None) -> Stack:
    names = naming.names_for(config)
    # Each resource, children included, waits for the APIs it calls (infra/components/apis.py).
    after_apis = lambda apis: pulumi.ResourceOptions(depends_on=apis.services, transformations=[api_dependencies(apis)])  # noqa: E731
    # An adopted instance is read first: its networking decides where the VM goes, and its real tier
    # the connection budget (infra/adopted.py). Raises ConfigError, naming the fix, before any registration.
    adopted = read_adopted_instance(config.project, config.database.existing_instance) if config.database.adopted else None
    if adopted is not None:
        reach = choose_reach(adopted, config.project)
        budget = adopted_budget(adopted, config.app.db_pool_size, config.inngest.postgres_max_open_conns)
    else:
        reach, budget = new_instance_reach(), config.connection_budget
    apis = ProjectApis("apis", ApisArgs(project=config.project, services=services_for(artifact_registry=artifact_repository(config.app.image) is not None)))
    network = Network(
        "network",
        NetworkArgs(
            project=config.project,
            region=config.region,
            prefix=config.name,
            ssh_ranges=config.ssh_ranges,
            private_service_access=not config.database.adopted,
            existing_network=reach.network or None,
            subnet_cidr=config.vm.subnet_cidr,
        ),
        opts=after_apis(apis),
    )
    identity = VmIdentity("identity", VmIdentityArgs(project=config.project, prefix=config.name), opts=after_apis(apis))
    secrets = Secrets(
        "secrets",
        SecretsArgs(
            project=config.project,
            prefix=config.name,
            accessor_email=identity.email,
            app_secret_values=app_secret_values,
            registry_token=registry_token if config.app.registry_username else None,
        ),
        opts=after_apis(apis),
    )
    database = Database(
        "database",
        DatabaseArgs(
            project=config.project,
            region=config.region,
            instance_name=names.sql_instance,
            settings=config.database,
            network_id=network.network_id,
            passwords=secrets.db_passwords,
            depends_on=[network.psa_connection] if network.psa_connection else [],
            adopted=adopted,
        ),
        opts=after_apis(apis),
    )
    vm = Vm(
        "vm",
        VmArgs(
            project=config.project,
            zone=config.zone,
            prefix=config.name,
            settings=config.vm,
            subnet_id=network.subnet.id,
            nat_ip=network.address.address,
            service_account_email=identity.email,
            startup_script=render_startup_script(),
        ),
        opts=after_apis(apis),
    )
    access = OperatorAccess(
        "access",
        AccessArgs(
            project=config.project,
            zone=config.zone,
            instance_name=vm.instance.name,
            vm_service_account=identity.account.name,
            ssh_user=config.ssh_user,
        ),
        opts=after_apis(apis),
    )
    pull_access = ImagePullAccess("image-pull", ImagePullArgs(images=(config.app.image,), vm_service_account_email=identity.email), opts=after_apis(apis))
    deployment = _deployment(config, apis, network, secrets, database, vm, access, pull_access, reach)
    outputs: dict[str, pulumi.Input] = {
        "project": config.project,
        "zone": config.zone,
        "vm_name": vm.instance.name,
        "external_ip": network.address.address,
        "url": f"https://{config.domain}",
        "sql_connection_name": database.connection_name,
        "sql_private_ip": database.private_ip,
        "secret_ids": secrets.secret_ids,
        "connection_budget": budget,
        "database_reach": reach.description,
        "ssh_user_email": access.email,
        "ssh_user": access.ssh_user,
        "ssh_via": config.ssh_via,
        "ssh_private_key": access.private_key,
        "release_id": deployment.release_id,
    }
    return Stack(apis, network, identity, secrets, database, vm, access, pull_access, deployment, outputs, reach)


def release_files(
    config: StackConfig,
    sql_private_ip: str,
    secret_ids: dict[str, str],
    initial_versions: dict[str, str],
    server_ca_pem: str = "",
    sql_proxy_instance: str = "",
    sql_proxy_private_ip: bool = False,
) -> dict[str, str]:
    secrets = {logical: SecretRef(secret_ids[logical], initial_versions[logical]) for logical in secret_ids}
    inputs = RenderInputs(
        project=config.project,
        sql_private_ip="" if sql_proxy_instance else sql_private_ip,
        secrets=secrets,
        server_ca_pem=server_ca_pem,
        sql_proxy_instance=sql_proxy_instance,
        sql_proxy_private_ip=sql_proxy_private_ip,
    )
    return render_stack(config, inputs)


def _deployment(
    config: StackConfig,
    apis: ProjectApis,
    network: Network,
    secrets: Secrets,
    database: Database,
    vm: Vm,
    access: OperatorAccess,
    pull_access: ImagePullAccess,
    reach: DatabaseReach,
) -> StackDeployment:
    """The Compose stack pushed over SSH. It waits for everything the running stack touches: the VM,
    the database objects, the secrets the VM reads, the image read grants, and the deploy identity's
    key and roles."""
    files = pulumi.Output.all(
        database.private_ip, pulumi.Output.all(**secrets.secret_ids), pulumi.Output.all(**secrets.initial_versions), database.server_ca_pem
    ).apply(lambda values: release_files(config, values[0], values[1], values[2], values[3], reach.proxy_instance, reach.proxy_private_ip))
    via_iap = config.ssh_via == "iap"
    vm_name = vm.instance.name
    return StackDeployment(
        "stack",
        StackDeploymentArgs(
            files=files,
            host=vm_name if via_iap else network.address.address,
            user=access.ssh_user,
            private_key=access.private_key,
            machine_id=vm.instance.instance_id,
            host_key_source={"project": config.project, "zone": config.zone, "instance": vm_name},
            proxy_command=vm_name.apply(lambda name: list(iap_proxy_command(name, config.zone, config.project))) if via_iap else None,
            # The first remote step waits for the startup script in the VM's metadata to have completed.
            startup={"version": startup_script_version(), "timeout": config.vm.ready_timeout_seconds},
            identity=access.email,
        ),
        opts=pulumi.ResourceOptions(
            depends_on=[
                vm.instance,
                *database.databases.values(),
                *database.users.values(),
                *(m.accessor for m in secrets.managed.values()),
                access.ssh_key,
                access.os_admin,
                access.tunnel,
                access.act_as,
                *pull_access.readers,
            ],
            transformations=[api_dependencies(apis)],
        ),
    )
