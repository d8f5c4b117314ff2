"""VPC, subnet, firewall, static IP and Private Service Access for Cloud SQL's private IP.

With an adopted instance that has a private IP, the subnet and the firewall rules go into the
instance's own VPC instead (`existing_network`; infra/adopted.py says why): the kit then creates
no VPC and no Private Service Access, and its rules apply to its own VM only (target tags)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

WEB_TAG = "kit-web"
SSH_TAG = "kit-ssh"
SUBNET_CIDR = "10.10.0.0/24"
PSA_PREFIX_LENGTH = 20  # a /20 leaves room for Cloud SQL replicas and other managed services


@dataclass(frozen=True)
class NetworkArgs:
    project: str
    region: str
    prefix: str
    ssh_ranges: tuple[str, ...]
    # Not needed when adopting an existing Cloud SQL instance, which brings its own.
    private_service_access: bool = True
    # projects/<p>/global/networks/<n>: an existing VPC the VM joins instead of the kit's own.
    existing_network: str | None = None
    subnet_cidr: str = SUBNET_CIDR


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inngest-kit:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        p = args.prefix
        self.vpc: gcp.compute.Network | None = None
        if args.existing_network:
            self.network_id: pulumi.Input[str] = args.existing_network
        else:
            self.vpc = gcp.compute.Network(
                "vpc",
                name=f"{p}-vpc",
                project=args.project,
                auto_create_subnetworks=False,
                routing_mode="REGIONAL",
                opts=child,
            )
            self.network_id = self.vpc.id
        self.subnet = gcp.compute.Subnetwork(
            "subnet",
            name=f"{p}-subnet",
            project=args.project,
            region=args.region,
            network=self.network_id,
            ip_cidr_range=args.subnet_cidr,
            private_ip_google_access=True,
            # CIS GCP 3.8: flow logs on every subnet, every flow, all metadata, no filter.
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval="INTERVAL_5_SEC", flow_sampling=1.0, metadata="INCLUDE_ALL_METADATA"
            ),
            opts=child,
        )
        self.allow_web = gcp.compute.Firewall(
            "allow-web",
            name=f"{p}-allow-web",
            project=args.project,
            network=self.network_id,
            direction="INGRESS",
            priority=1000,
            source_ranges=["0.0.0.0/0"],
            target_tags=[WEB_TAG],
            allows=[
                gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["80", "443"]),
                # HTTP/3: Caddy answers on 443/udp too.
                gcp.compute.FirewallAllowArgs(protocol="udp", ports=["443"]),
            ],
            opts=child,
        )
        self.allow_ssh = gcp.compute.Firewall(
            "allow-ssh",
            name=f"{p}-allow-ssh",
            project=args.project,
            network=self.network_id,
            direction="INGRESS",
            priority=1000,
            source_ranges=list(args.ssh_ranges),
            target_tags=[SSH_TAG],
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["22"])],
            opts=child,
        )
        # The VPC already denies other ingress implicitly; an explicit, logged rule makes
        # "nothing else" visible in the console and in the plan. Limited to the kit's VM, so that in
        # an adopted instance's VPC it never shadows that network's own rules (a deny wins a tie of
        # priority, and the default network's allow rules sit at 65534).
        self.deny_rest = gcp.compute.Firewall(
            "deny-other-ingress",
            name=f"{p}-deny-other-ingress",
            project=args.project,
            network=self.network_id,
            direction="INGRESS",
            priority=65534,
            source_ranges=["0.0.0.0/0"],
            target_tags=[WEB_TAG, SSH_TAG],
            denies=[gcp.compute.FirewallDenyArgs(protocol="all")],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="EXCLUDE_ALL_METADATA"),
            opts=child,
        )
        self.address = gcp.compute.Address(
            "ip",
            name=f"{p}-ip",
            project=args.project,
            region=args.region,
            address_type="EXTERNAL",
            network_tier="PREMIUM",
            opts=child,
        )
        self.psa_connection: gcp.servicenetworking.Connection | None = None
        if args.private_service_access:
            self._private_service_access(args, child)
        self.register_outputs({"vpc": self.network_id, "address": self.address.address})

    def _private_service_access(self, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        p = args.prefix
        self.psa_range = gcp.compute.GlobalAddress(
            "psa-range",
            name=f"{p}-psa",
            project=args.project,
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            prefix_length=PSA_PREFIX_LENGTH,
            network=self.network_id,
            opts=child,
        )
        self.psa_connection = gcp.servicenetworking.Connection(
            "psa",
            network=self.network_id,
            service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[self.psa_range.name],
            opts=child,
        )
