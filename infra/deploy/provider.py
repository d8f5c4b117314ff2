"""The deploy as a Pulumi resource: a dynamic provider, a thin edge over `infra.deploy.deploy`.

`diff` compares content hashes only (no SSH), so a `pulumi up` that changes nothing opens no
connection; `create`/`update` deploy over one connection; `delete` stops the stack and keeps its data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ResourceProvider, UpdateResult

from infra import layout
from infra.deploy.deploy import DeployResult, DeploySettings, DeployState, deploy, stop_stack
from infra.deploy.ready import ReadySettings, Where, wait_until_ready
from infra.deploy.release import ReleaseFilesError, check_files, file_manifest, release_id_for
from infra.remote.commands import VmEndpoints
from infra.remote.vm import Vm, VmPaths, VmTools

# Inputs whose change means another machine (a recreated VM or data disk): the deploy is replaced,
# so the new machine gets a full first deploy.
REPLACE_ON = ("machine_id",)
# Inputs that change where or how the stack is laid out on the VM: a change redeploys.
LAYOUT_INPUTS = ("vm",)
OUTPUTS = ("release_id", "manifest")  # set by the provider; present (as None) in the inputs only to declare them
# A booting VM takes a minute or two to answer; a freshly granted OS Login role or imported key takes
# minutes to be honoured (IAM: "typically" 2, sometimes 7 or more), so a refused login is retried as long.
CONNECT_DEFAULTS = {"attempts": 20, "backoff": 2.0, "max_wait": 300.0, "auth_wait": 420.0}
HOST_KEY_SOURCE_FIELDS = ("project", "zone", "instance")


@dataclass
class StackDeploymentArgs:
    """Inputs of `StackDeployment`. Give exactly one of `host_keys` (pinned lines) or `host_key_source`."""

    files: pulumi.Input[Mapping[str, str]]  # render_stack(config, inputs): relative path -> content
    host: pulumi.Input[str]  # the instance name when going through IAP, else the external IP
    user: pulumi.Input[str]  # the OS Login POSIX user
    private_key: pulumi.Input[str]  # the deploy key (kept secret in the state)
    machine_id: pulumi.Input[str]  # e.g. the instance's id: a new machine replaces the deploy
    host_keys: pulumi.Input[Sequence[str]] | None = None  # "ssh-ed25519 AAAA..." lines
    host_key_source: pulumi.Input[Mapping[str, str]] | None = None  # {"project", "zone", "instance"}: read GCE guest attributes hostkeys/
    proxy_command: pulumi.Input[Sequence[str]] | None = None  # infra.remote.target.iap_proxy_command(...), or None for direct
    port: pulumi.Input[int] = 22
    connect: Mapping[str, Any] | None = None  # {"attempts", "backoff", "max_wait", "timeout"}
    vm: Mapping[str, Any] | None = None  # {"sudo", "docker", "curl": argv lists, "root", "compose_project"}: for tests
    settings: Mapping[str, Any] | None = None  # DeploySettings fields plus "inngest_health_url", "app_sync_url"
    # {"version": infra.startup.startup_script_version(), "timeout", "poll_interval"}: the first remote
    # step waits for the startup script's record of this version (infra/deploy/ready.py); None: no wait.
    startup: pulumi.Input[Mapping[str, Any]] | None = None
    identity: pulumi.Input[str] | None = None  # the Pulumi provider's email: gcloud and ADC must be the same account

    def to_props(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "host": self.host,
            "user": self.user,
            "private_key": pulumi.Output.secret(self.private_key),
            "machine_id": self.machine_id,
            "host_keys": self.host_keys,
            "host_key_source": self.host_key_source,
            "proxy_command": self.proxy_command,
            "port": self.port,
            "connect": dict(self.connect or {}),
            "vm": dict(self.vm or {}),
            "settings": dict(self.settings or {}),
            "startup": self.startup,
            "identity": self.identity,
        }


class StackDeployProvider(ResourceProvider):
    """Pulumi dynamic provider for the Compose stack on the VM.

    The constructor's arguments exist for tests; production passes none and gets the render
    module's `services_restarted_by` / `EXECUTABLE_FILES`, the SSH layer's `connect` and the
    guest-attributes host key reader.
    """

    def __init__(
        self,
        *,
        restarted_by: Callable[[str], tuple[str, ...]] | None = None,
        executable_files: frozenset[str] | None = None,
        fetch_host_keys: Callable[..., tuple[str, ...]] | None = None,
        sleep: Callable[[float], None] | None = None,
        identity_readers: Any = None,  # infra.remote.identity.IdentityReaders: stand-ins for gcloud and ADC
        progress: Callable[[str], None] | None = None,
    ):
        super().__init__()
        self.restarted_by = restarted_by
        self.executable_files = executable_files
        self.fetch_host_keys = fetch_host_keys
        self.sleep = sleep
        self.identity_readers = identity_readers
        self.progress = progress

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [CheckFailure(prop, reason) for prop, reason in input_problems(news)])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [name for name in REPLACE_ON if olds.get(name) != news.get(name)]
        wanted = files_release_id(news.get("files"))
        # "__provider" is the pickled provider: a code change there is no change on the VM.
        changed_inputs = any(olds.get(name) != news.get(name) for name in news if not name.startswith("__") and name not in OUTPUTS)
        changes = bool(replaces) or wanted is None or wanted != olds.get("release_id") or changed_inputs
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        result = self._deploy(props, previous_state=None)
        return CreateResult(id_=f"{props['host']}/{_vm(props).compose_project}", outs=_outputs(props, result))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not needs_deploy(olds, news):
            # The VM already runs this release. A changed startup script is rerun on it, no reboot needed.
            if _startup_version(olds) != _startup_version(news):
                with self._ready_session(news):
                    pass  # waiting until the rerun has recorded the new version is the whole job
            return UpdateResult(outs={**news, "release_id": olds["release_id"], "manifest": olds["manifest"]})
        previous = DeployState(olds["release_id"], olds.get("manifest") or {}) if olds.get("release_id") else None
        return UpdateResult(outs=_outputs(news, self._deploy(news, previous_state=previous)))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self._require_one_identity(props)
        stop_stack(self._session_factory(props), _vm(props), settings=_settings(props))

    def _deploy(self, props: dict[str, Any], previous_state: DeployState | None) -> DeployResult:
        problems = input_problems(props)
        if problems:
            raise ValueError("; ".join(f"{prop}: {reason}" for prop, reason in problems))
        restarted_by, executable_files = self.restarted_by, self.executable_files
        if restarted_by is None or executable_files is None:
            from infra import render  # late: the provider is pickled into the state, the renderer need not be

            restarted_by = restarted_by or render.services_restarted_by
            executable_files = executable_files if executable_files is not None else render.EXECUTABLE_FILES
        with self._ready_session(props) as (ready, fresh):
            result = self._deploy_over(ready, fresh, props, previous_state, restarted_by, executable_files)
        if result.drift:
            pulumi.log.warn(f"the VM was running release {result.previous_release_id}, not the one the state remembered; deployed over it")
        return result

    def _deploy_over(self, ready, fresh, props, previous_state, restarted_by, executable_files) -> DeployResult:
        """The deploy proper, over the connection the readiness step opened (a rollback may open a fresh one)."""
        handed_over = []

        @contextmanager
        def session_factory():
            if not handed_over:
                handed_over.append(ready)
                yield ready
            else:
                with fresh() as session:
                    yield session

        return deploy(
            session_factory,
            props["files"],
            previous_state,
            _vm(props),
            owner=props["user"],
            restarted_by=restarted_by,
            executable_files=frozenset(executable_files),
            settings=_settings(props),
            **({"sleep": self.sleep} if self.sleep else {}),
        )

    @contextmanager
    def _ready_session(self, props: dict[str, Any]) -> Iterator[Any]:
        """The deploy's first remote step: one identity for every edge (checked before anything waits),
        then a connection on which the VM's startup script has recorded completion of this version."""
        self._require_one_identity(props)
        factory = self._session_factory(props)
        with factory() as session:
            version = _startup_version(props)
            if version:
                startup = props.get("startup") or {}
                settings = ReadySettings(
                    timeout=float(startup.get("timeout", ReadySettings.timeout)),
                    poll_interval=float(startup.get("poll_interval", ReadySettings.poll_interval)),
                )
                # A Python dynamic provider has no engine connection: pulumi.log prints to its stderr,
                # which the CLI shows under the resource (pulumi/pulumi#4009, #6065).
                wait_until_ready(
                    session, _vm(props), version, where=_where(props), settings=settings,
                    progress=self.progress or pulumi.log.info, sleep=self.sleep or time.sleep,
                )
            yield session, factory

    def _require_one_identity(self, props: Mapping[str, Any]) -> None:
        proxy = props.get("proxy_command") or ()
        # ADC read the host keys, unless they are pinned or a test reads them its own way.
        uses_gcloud, uses_adc = bool(proxy) and proxy[0] == "gcloud", not props.get("host_keys") and self.fetch_host_keys is None
        if not (uses_gcloud or uses_adc):
            return
        from infra.remote.identity import IdentityError, require_one_identity

        try:
            require_one_identity(props.get("identity") or None, uses_gcloud=uses_gcloud, uses_adc=uses_adc, readers=self.identity_readers)
        except IdentityError as error:
            # Before any wait: a tunnel or a key fetch as another account would only be refused, slowly.
            raise ValueError("the deploy cannot reach the VM as one Google identity; nothing was changed:\n" + "\n".join(f"  - {p}" for p in error.problems)) from None

    def _session_factory(self, props: dict[str, Any]):
        from infra.remote.ssh import SshTarget, connect

        options = {**CONNECT_DEFAULTS, **(props.get("connect") or {})}
        target = SshTarget(
            host=props["host"],
            user=props["user"],
            private_key=props["private_key"],
            host_keys=self._host_keys(props),
            port=int(props.get("port") or 22),
            proxy_command=tuple(props["proxy_command"]) if props.get("proxy_command") else None,
            connect_timeout=float(options.get("timeout", 10.0)),
        )
        sleep = {"sleep": self.sleep} if self.sleep else {}
        waits = {name: float(options[name]) for name in ("backoff", "max_wait", "auth_wait")}
        return lambda: connect(target, attempts=int(options["attempts"]), **waits, **sleep)

    def _host_keys(self, props: dict[str, Any]) -> tuple[str, ...]:
        if props.get("host_keys"):
            return tuple(props["host_keys"])
        source = props["host_key_source"]
        fetch = self.fetch_host_keys
        if fetch is None:
            from infra.remote.hostkeys import fetch_host_keys as fetch
        return tuple(fetch(source["project"], source["zone"], source["instance"]))


class StackDeployment(pulumi.dynamic.Resource, module="inngest-kit", name="StackDeployment"):
    """The Compose stack on the VM. Make it depend on the VM, the database and the secrets."""

    release_id: pulumi.Output[str]
    manifest: pulumi.Output[dict]

    def __init__(self, name: str, args: StackDeploymentArgs, opts: pulumi.ResourceOptions | None = None, provider: StackDeployProvider | None = None):
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["private_key"])
        super().__init__(
            provider or StackDeployProvider(),
            name,
            {**args.to_props(), "release_id": None, "manifest": None},
            pulumi.ResourceOptions.merge(opts, secret_outputs),
        )


def files_release_id(files: Any) -> str | None:
    """The release id the files would make, or None while they are unknown (a preview) or invalid."""
    if not isinstance(files, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None
    return release_id_for(file_manifest(files))


def needs_deploy(olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
    return files_release_id(news.get("files")) != olds.get("release_id") or any(olds.get(name) != news.get(name) for name in LAYOUT_INPUTS)


def input_problems(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every problem with known inputs at once, as (input, what is wrong and how to fix it)."""
    problems: list[tuple[str, str]] = []
    files = props.get("files")
    if isinstance(files, Mapping):
        try:
            check_files(files)
        except ReleaseFilesError as error:
            problems += [("files", problem) for problem in error.problems]
    for name in ("host", "user", "private_key", "machine_id"):
        if name in props and (not isinstance(props[name], str) or not props[name].strip()):
            problems.append((name, f"is empty; pass the {name.replace('_', ' ')} from the VM component"))
    pinned, source = props.get("host_keys"), props.get("host_key_source")
    if not pinned and not source:
        problems.append(("host_keys", "no host key and no host_key_source: the deploy never trusts a key on first use. Pin the VM's key lines, or pass host_key_source={project, zone, instance} to read its guest attributes"))
    elif pinned and source:
        problems.append(("host_key_source", "give host_keys or host_key_source, not both"))
    elif source is not None and isinstance(source, Mapping):
        missing = [name for name in HOST_KEY_SOURCE_FIELDS if not source.get(name)]
        if missing:
            problems.append(("host_key_source", f"lacks {', '.join(missing)}; give project, zone and instance of the VM"))
    port = props.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, (int, float)) or not 1 <= int(port) <= 65535 or int(port) != port:
        problems.append(("port", f"{port!r} is not a TCP port; use a whole number from 1 to 65535 (22 for the VM)"))
    return problems


def _startup_version(props: Mapping[str, Any]) -> str | None:
    startup = props.get("startup")
    return startup.get("version") if isinstance(startup, Mapping) else None


def _where(props: Mapping[str, Any]) -> Where:
    source = props.get("host_key_source") or {}
    return Where(
        vm_name=source.get("instance") or props["host"],
        zone=source.get("zone"),
        project=source.get("project"),
        via_iap=bool(props.get("proxy_command")),
    )


def _vm(props: Mapping[str, Any]) -> Vm:
    overrides = props.get("vm") or {}
    defaults = VmTools()
    tools = VmTools(
        sudo=tuple(overrides.get("sudo", defaults.sudo)),
        docker=tuple(overrides.get("docker", defaults.docker)),
        curl=tuple(overrides.get("curl", defaults.curl)),
        systemctl=tuple(overrides.get("systemctl", defaults.systemctl)),
    )
    return Vm(tools=tools, paths=VmPaths(root=overrides.get("root", "")), compose_project=overrides.get("compose_project", layout.COMPOSE_PROJECT))


def _settings(props: Mapping[str, Any]) -> DeploySettings:
    values = dict(props.get("settings") or {})
    endpoints = VmEndpoints(
        inngest_health=values.pop("inngest_health_url", VmEndpoints.inngest_health),
        app_sync=values.pop("app_sync_url", VmEndpoints.app_sync),
    )
    return DeploySettings(**values, endpoints=endpoints)


def _outputs(props: Mapping[str, Any], result: DeployResult) -> dict[str, Any]:
    return {**props, "release_id": result.release_id, "manifest": result.manifest}
