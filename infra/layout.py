"""Where things live on the VM. The startup script, the deploy and the operator commands share it."""

DATA_MOUNT = "/srv/kit"  # the persistent data disk; everything that must survive lives below it
DATA_DISK_DEVICE = "/dev/disk/by-id/google-data"  # GCE names an attached disk by its device_name
RELEASES_DIR = f"{DATA_MOUNT}/releases"
CURRENT_LINK = f"{DATA_MOUNT}/current"  # symlink to the live release directory
PREVIOUS_LINK = f"{DATA_MOUNT}/previous"
REDIS_DIR = f"{DATA_MOUNT}/redis"
CADDY_DATA_DIR = f"{DATA_MOUNT}/caddy/data"
CADDY_CONFIG_DIR = f"{DATA_MOUNT}/caddy/config"
AUDIT_LOG = f"{DATA_MOUNT}/audit.log"
LOCK_DIR = f"{DATA_MOUNT}/lock"  # held by every mutating operation (infra/remote/lock.py)
# tmpfs: secret values never touch a disk. Not below /run, which holds the host's runtime state
# (sockets, the system bus): a container mounts its own directory of this tmpfs and nothing near it.
SECRETS_DIR = "/var/lib/inngest-kit/secrets"
# Docker's client config (DOCKER_CONFIG) for pulls: registry credentials, on the /run tmpfs.
DOCKER_CONFIG_DIR = "/run/inngest-kit/docker"
SYSTEMD_UNIT = "inngest-kit.service"
SECRETS_UNIT = "inngest-kit-secrets.service"  # fills SECRETS_DIR at boot, before docker.service
# Written last by the startup script: its version and completion time. Under /run, so a reboot clears it.
STARTUP_RECORD = "/run/inngest-kit-startup-complete"
# The guest agent's unit that runs the metadata startup script (GoogleCloudPlatform/guest-agent,
# google-startup-scripts.service: Type=oneshot, so `systemctl start` runs the script again once it has ended).
STARTUP_SCRIPT_UNIT = "google-startup-scripts.service"
COMPOSE_PROJECT = "kit"
INNGEST_PORT = 8288
