"""The human-readable plan: resources with the settings that matter, rendered files, cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# For each resource type, the inputs worth a glance in a review. Everything is in --json.
KEY_SETTINGS = {
    "gcp:projects/service:Service": ["service"],
    "gcp:compute/network:Network": ["name", "autoCreateSubnetworks"],
    "gcp:compute/subnetwork:Subnetwork": ["name", "network", "ipCidrRange", "privateIpGoogleAccess"],
    "gcp:compute/firewall:Firewall": ["name", "direction", "priority", "sourceRanges", "allows", "denies", "targetTags"],
    "gcp:compute/address:Address": ["name", "addressType"],
    "gcp:compute/globalAddress:GlobalAddress": ["name", "purpose", "prefixLength"],
    "gcp:servicenetworking/connection:Connection": ["service"],
    "gcp:sql/databaseInstance:DatabaseInstance": ["name", "databaseVersion", "settings.tier", "settings.ipConfiguration", "settings.backupConfiguration.pointInTimeRecoveryEnabled", "deletionProtection"],
    "gcp:sql/database:Database": ["name"],
    "gcp:sql/user:User": ["name", "password"],
    "gcp:secretmanager/secret:Secret": ["secretId", "rotation.rotationPeriod"],
    "gcp:secretmanager/secretVersion:SecretVersion": ["secretData"],
    "gcp:secretmanager/secretIamMember:SecretIamMember": ["secretId", "role", "member"],
    "gcp:serviceaccount/account:Account": ["accountId"],
    "gcp:projects/iAMMember:IAMMember": ["role", "member"],
    "gcp:compute/instance:Instance": ["name", "machineType", "shieldedInstanceConfig", "canIpForward", "metadata"],
    "gcp:compute/disk:Disk": ["name", "type", "size"],
    "gcp:compute/resourcePolicy:ResourcePolicy": ["name"],
    "gcp:compute/instanceIAMMember:InstanceIAMMember": ["role", "member"],
    "gcp:iap/tunnelInstanceIAMMember:TunnelInstanceIAMMember": ["role", "member"],
    "gcp:serviceaccount/iAMMember:IAMMember": ["role", "member"],
    "gcp:oslogin/sshPublicKey:SshPublicKey": ["user"],
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": ["project", "location", "repository", "role", "member"],
    "pulumi-python:dynamic/inngest-kit:StackDeployment": ["host", "user", "proxy_command", "host_key_source"],
}


def _lookup(inputs: dict[str, Any], dotted: str) -> Any:
    value: Any = inputs
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _short(value: Any) -> str:
    if isinstance(value, dict):
        if "startup-script" in value:
            value = {**value, "startup-script": f"<{len(value['startup-script'].splitlines())} lines, see build/>"}
        return "{" + ", ".join(f"{k}={_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def format_plan(document: dict[str, Any], out: Path) -> str:
    lines = [f"Stack {document['stack']}: {len(document['resources'])} resources (offline plan, nothing was created)", ""]
    for note in document.get("notes", []):
        lines += [f"NOTE: {note}", ""]
    reach = document["outputs"].get("database_reach")
    if reach:
        lines += [f"Database: {reach}", ""]
    for resource in document["resources"]:
        kind = resource["type"].split(":")[-1] if resource["options"]["custom"] else resource["type"]
        flags = []
        if resource["options"]["read_only"]:
            flags.append("existing, read only")
        if resource["options"]["protect"]:
            flags.append("protected")
        header = f"+ {kind:<28} {resource['name']}" + (f"  ({', '.join(flags)})" if flags else "")
        lines.append(header)
        for key in KEY_SETTINGS.get(resource["type"], []):
            value = _lookup(resource["inputs"], key)
            if value is not None:
                lines.append(f"      {key}: {_short(value)}")
    lines += ["", "Outputs:"]
    for key, value in document["outputs"].items():
        lines.append(f"  {key}: {_short(value)}")
    lines += ["", f"Rendered files (written to {out}):"]
    for path, content in document["files"].items():
        lines.append(f"  {path}  ({len(content.encode())} bytes)")
    cost = document["cost"]
    lines += ["", f"Estimated monthly cost ({cost['region']} list prices, {cost['currency']}):"]
    for item in cost["items"]:
        amount = item["usd_month"]
        shown = f"{amount:>9.2f}" if isinstance(amount, (int, float)) else f"{amount:>9}"
        note = f"  [{item['note']}]" if item["note"] else ""
        lines.append(f"  {shown}  {item['resource']}: {item['description']}{note}")
    lines.append(f"  {cost['total_usd_month']:>9.2f}  total ({cost['total_note']})")
    return "\n".join(lines)
