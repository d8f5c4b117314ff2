"""A recording STAND-IN for the `docker` client, for tests (no Docker engine runs on test machines).

It is the only stand-in the remote tests use: everything else (sshd, caddy, curl) is real.

Use it:

    fake = FakeDocker.install(tmp_path / "docker")   # writes an executable `docker` there
    vm = Vm(tools=VmTools(sudo=(), docker=(fake.executable,)), paths=VmPaths(root=...))
    ... run remote commands that call `docker compose ...` over a real sshd ...
    fake.calls()              # every invocation: {"argv": [...], "cwd": "...", "time": 1.0}
    fake.compose_calls("up")  # only `docker compose ... up ...` invocations, as argv lists
    fake.services()           # {"app": {"config_hash", "state", "created", "restarts", ...}}
    fake.events()             # [{"action": "create"|"recreate"|"start"|"restart"|"stop"|"remove", "service", "project"}]
    fake.set_health("app", "unhealthy")     # what `ps` reports (also "healthy", "starting", or None to clear)
    fake.fail("up", stderr="boom", exit_status=1, times=1)  # the next `compose up` fails (times=None: always)
    fake.set_exec_result("redis", ["redis-cli", "ping"], stdout="PONG\n")
    fake.fail("pull", stderr="denied", exit_status=1)  # the next `docker pull` fails
    fake.pulled()             # images `docker pull` fetched, in order

What it understands (the subset the kit uses), for `docker compose [-p P] [-f FILE]... [--project-directory D] SUB`:
- `up [-d] [--remove-orphans] [--force-recreate] [--no-deps] [SERVICE...]`: a service is created when new,
  recreated when its resolved config hash changed (as real compose does: the service's config with
  `env_file` contents folded into `environment` and relative paths resolved against the project
  directory, which is NOT symlink-resolved), left alone otherwise. Bind-mounted file *contents* are not
  part of the hash, exactly as with real compose. A missing env_file fails like real compose.
- `ps [-a] [--format json]`: one JSON object per line (Name, Service, State, Health, Status, ...), the
  shape of compose v2.21+.
- `down [--remove-orphans] [-v]`, `restart [SERVICE...]`, `stop [SERVICE...]`, `logs [...] [SERVICE...]`,
  `exec [-T] SERVICE CMD...`.
And outside compose: `pull [-q] IMAGE` (recorded; steered by `fail("pull", ...)`) and `image inspect
[--format F] IMAGE` (exits 0 for an image pulled before, 1 otherwise).
Anything else exits 1 with "stand-in does not support ...", so a test notices a command it did not expect.
Each call's log entry also holds the DOCKER_CONFIG it ran with (None when unset).

State lives in `<directory>/state/` (one JSON file per compose project, plus control files), the call log
in `<directory>/calls.jsonl`. The executable is a small launcher that loads this very file, so the logic
below is ordinary, linted Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

CALL_LOG = "calls.jsonl"
STATE_DIR = "state"
HEALTH_FILE = "health.json"
FAILURES_FILE = "failures.json"
EXEC_FILE = "exec.json"
IMAGES_FILE = "images.json"


@dataclass(frozen=True)
class FakeDocker:
    """Test-side handle on an installed stand-in: where it is, what it recorded, how to steer it."""

    directory: Path

    @classmethod
    def install(cls, directory: Path | str) -> FakeDocker:
        directory = Path(directory)
        (directory / STATE_DIR).mkdir(parents=True, exist_ok=True)
        launcher = directory / "docker"
        launcher.write_text(
            f"#!{sys.executable}\n"
            "# Recording stand-in for the docker client (tests only); the logic is in the file loaded below.\n"
            "import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('fake_docker_standin', {str(Path(__file__).resolve())!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules[spec.name] = module\n"
            "spec.loader.exec_module(module)\n"
            f"sys.exit(module.main(sys.argv[1:], {str(directory.resolve())!r}))\n"
        )
        launcher.chmod(0o755)
        return cls(directory.resolve())

    @property
    def executable(self) -> str:
        return str(self.directory / "docker")

    @property
    def state_dir(self) -> Path:
        return self.directory / STATE_DIR

    def calls(self) -> list[dict]:
        log = self.directory / CALL_LOG
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def compose_calls(self, subcommand: str | None = None) -> list[list[str]]:
        """argv of every `compose` call, optionally only those whose sub-command is `subcommand`."""
        found = []
        for call in self.calls():
            argv = call["argv"]
            if argv[:1] != ["compose"]:
                continue
            try:
                _, _, _, sub, _ = _parse_compose_args(argv[1:])
            except UsageError:
                continue
            if subcommand is None or sub == subcommand:
                found.append(argv)
        return found

    def services(self, project: str = "kit") -> dict[str, dict]:
        return _load_project(self.directory, project)["services"]

    def events(self, project: str = "kit") -> list[dict]:
        return _load_project(self.directory, project)["events"]

    def set_health(self, service: str, health: str | None) -> None:
        health_map = _read_json(self.state_dir / HEALTH_FILE, {})
        if health is None:
            health_map.pop(service, None)
        else:
            health_map[service] = health
        _write_json(self.state_dir / HEALTH_FILE, health_map)

    def fail(self, subcommand: str, *, stderr: str = "stand-in failure", exit_status: int = 1, times: int | None = 1) -> None:
        failures = _read_json(self.state_dir / FAILURES_FILE, {})
        failures[subcommand] = {"stderr": stderr, "exit_status": exit_status, "times": times}
        _write_json(self.state_dir / FAILURES_FILE, failures)

    def pulled(self) -> list[str]:
        return _read_json(self.state_dir / IMAGES_FILE, [])

    def set_exec_result(self, service: str, command: list[str], *, stdout: str = "", stderr: str = "", exit_status: int = 0) -> None:
        results = _read_json(self.state_dir / EXEC_FILE, {})
        results[_exec_key(service, command)] = {"stdout": stdout, "stderr": stderr, "exit_status": exit_status}
        _write_json(self.state_dir / EXEC_FILE, results)


# ---------------------------------------------------------------------------------------------
# The stand-in itself, run by the launcher on the "VM" side.


class UsageError(Exception):
    pass


def main(argv: list[str], directory: str) -> int:
    root = Path(directory)
    with open(root / CALL_LOG, "a") as log:
        log.write(json.dumps({"argv": argv, "cwd": os.getcwd(), "time": time.time(), "docker_config": os.environ.get("DOCKER_CONFIG")}) + "\n")
    try:
        if argv[:1] == ["pull"] or argv[:2] == ["image", "inspect"]:
            return _image(root, argv)
        if argv[:1] != ["compose"]:
            raise UsageError(f"stand-in does not support `docker {' '.join(argv[:1])}`")
        project, files, project_dir, sub, rest = _parse_compose_args(argv[1:])
        failure = _take_failure(root, sub)
        if failure:
            sys.stderr.write(failure["stderr"] + "\n")
            return failure["exit_status"]
        return _compose(root, project, files, project_dir, sub, rest)
    except UsageError as error:
        sys.stderr.write(f"{error}\n")
        return 1


def _parse_compose_args(args: list[str]) -> tuple[str, list[str], str | None, str, list[str]]:
    project, files, project_dir = None, [], None
    index = 0
    while index < len(args) and args[index].startswith("-"):
        flag = args[index]
        if flag in ("-p", "--project-name", "-f", "--file", "--project-directory") and index + 1 < len(args):
            value = args[index + 1]
            if flag in ("-p", "--project-name"):
                project = value
            elif flag in ("-f", "--file"):
                files.append(value)
            else:
                project_dir = value
            index += 2
        else:
            raise UsageError(f"stand-in does not support compose option {flag}")
    if index >= len(args):
        raise UsageError("compose needs a sub-command")
    return project or "", files, project_dir, args[index], args[index + 1:]


def _image(root: Path, argv: list[str]) -> int:
    """`docker pull IMAGE` and `docker image inspect IMAGE`, over the list of images pulled so far."""
    path = root / STATE_DIR / IMAGES_FILE
    pulled = _read_json(path, [])
    image = argv[-1]
    if argv[0] == "image":
        if image in pulled:
            sys.stdout.write(f"sha256:{hashlib.sha256(image.encode()).hexdigest()}\n")
            return 0
        sys.stderr.write(f"Error response from daemon: No such image: {image}\n")
        return 1
    failure = _take_failure(root, "pull")
    if failure:
        sys.stderr.write(failure["stderr"] + "\n")
        return failure["exit_status"]
    _write_json(path, [*pulled, image])
    return 0


def _take_failure(root: Path, sub: str) -> dict | None:
    path = root / STATE_DIR / FAILURES_FILE
    failures = _read_json(path, {})
    failure = failures.get(sub)
    if not failure:
        return None
    if failure["times"] is not None:
        failure["times"] -= 1
        if failure["times"] <= 0:
            del failures[sub]
        _write_json(path, failures)
    return failure


def _compose(root: Path, project: str, files: list[str], project_dir: str | None, sub: str, rest: list[str]) -> int:
    if not files:
        raise UsageError("stand-in needs -f FILE (the kit always names its compose file)")
    if not project_dir:
        project_dir = os.path.dirname(os.path.abspath(files[0]))
    project = project or os.path.basename(project_dir)
    state = _load_project(root, project)
    flags = [arg for arg in rest if arg.startswith("-")]
    names = [arg for arg in rest if not arg.startswith("-")]
    if sub == "up":
        config = _load_compose(files, project_dir)
        code = _up(state, project, config, flags, names)
    elif sub == "ps":
        code = _ps(root, state, project, flags)
    elif sub == "down":
        for service in sorted(state["services"]):
            _event(state, project, "stop", service)
            _event(state, project, "remove", service)
        state["services"] = {}
        code = 0
    elif sub in ("restart", "stop"):
        code = _restart_or_stop(state, project, sub, names)
    elif sub == "logs":
        code = _logs(state, project, names)
    elif sub == "exec":
        code = _exec(root, state, rest)
    else:
        raise UsageError(f"stand-in does not support `docker compose {sub}`")
    _save_project(root, project, state)
    return code


def _load_compose(files: list[str], project_dir: str) -> dict:
    merged: dict = {"services": {}}
    for file in files:
        try:
            with open(file) as handle:
                document = yaml.safe_load(handle)
        except FileNotFoundError:
            raise UsageError(f"open {file}: no such file or directory") from None
        except yaml.YAMLError as error:
            raise UsageError(f"{file}: {error}") from None
        if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
            raise UsageError(f"{file}: services must be a mapping")
        merged["services"].update(document["services"])
    return {name: _resolve_service(dict(service or {}), project_dir) for name, service in merged["services"].items()}


def _resolve_service(service: dict, project_dir: str) -> dict:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    resolved_env: dict[str, str] = {}
    env_files = service.pop("env_file", None) or []
    for entry in [env_files] if isinstance(env_files, (str, dict)) else env_files:
        path, required = (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        full = os.path.join(project_dir, path)
        if not os.path.exists(full):
            if required:
                raise UsageError(f"env file {full} not found: stat {full}: no such file or directory")
            continue
        for line in Path(full).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                resolved_env[key.strip()] = value
    resolved_env.update({str(k): str(v) for k, v in environment.items()})
    if resolved_env:
        service["environment"] = resolved_env
    volumes = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str) and volume.startswith("."):
            source, _, target = volume.partition(":")
            volume = os.path.normpath(os.path.join(project_dir, source)) + ":" + target
        elif isinstance(volume, dict) and str(volume.get("source", "")).startswith("."):
            volume = {**volume, "source": os.path.normpath(os.path.join(project_dir, volume["source"]))}
        volumes.append(volume)
    if volumes:
        service["volumes"] = volumes
    return service


def _config_hash(service: dict) -> str:
    return hashlib.sha256(json.dumps(service, sort_keys=True, default=str).encode()).hexdigest()


def _up(state: dict, project: str, config: dict, flags: list[str], names: list[str]) -> int:
    unknown = [name for name in names if name not in config]
    if unknown:
        raise UsageError(f"no such service: {unknown[0]}")
    force = "--force-recreate" in flags
    for name in names or sorted(config):
        wanted = _config_hash(config[name])
        current = state["services"].get(name)
        if current is None:
            action = "create"
        elif current["config_hash"] != wanted or force:
            action = "recreate"
        elif current["state"] != "running":
            action = "start"
        else:
            sys.stderr.write(f" Container {project}-{name}-1  Running\n")
            continue
        sys.stderr.write(f" Container {project}-{name}-1  {action.capitalize()}d\n")
        previous = current or {"created": 0, "restarts": 0}
        state["services"][name] = {
            "config_hash": wanted,
            "state": "running",
            "image": config[name].get("image", ""),
            "has_healthcheck": "healthcheck" in config[name],
            "created": previous["created"] + (action != "start"),
            "restarts": previous["restarts"],
        }
        _event(state, project, action, name)
    if "--remove-orphans" in flags and not names:
        for orphan in sorted(set(state["services"]) - set(config)):
            del state["services"][orphan]
            _event(state, project, "remove", orphan)
    return 0


def _ps(root: Path, state: dict, project: str, flags: list[str]) -> int:
    health_map = _read_json(root / STATE_DIR / HEALTH_FILE, {})
    show_all = "-a" in flags or "--all" in flags
    for name, service in sorted(state["services"].items()):
        if service["state"] != "running" and not show_all:
            continue
        health = health_map.get(name, "healthy" if service["has_healthcheck"] else "")
        if service["state"] != "running":
            health = ""
        row = {
            "Command": "",
            "CreatedAt": "",
            "ExitCode": 0,
            "Health": health,
            "ID": service["config_hash"][:12],
            "Image": service["image"],
            "Labels": f"com.docker.compose.project={project},com.docker.compose.service={name}",
            "Name": f"{project}-{name}-1",
            "Project": project,
            "Publishers": [],
            "Service": name,
            "State": service["state"],
            "Status": "Up 1 second" + (f" ({health})" if health else "") if service["state"] == "running" else "Exited (0)",
        }
        sys.stdout.write(json.dumps(row) + "\n")
    return 0


def _restart_or_stop(state: dict, project: str, sub: str, names: list[str]) -> int:
    for name in names or sorted(state["services"]):
        service = state["services"].get(name)
        if service is None:
            raise UsageError(f"no such service: {name}")
        if sub == "restart":
            service["state"] = "running"
            service["restarts"] += 1
        else:
            service["state"] = "exited"
        _event(state, project, sub, name)
    return 0


def _logs(state: dict, project: str, names: list[str]) -> int:
    for event in state["events"]:
        if not names or event["service"] in names:
            sys.stdout.write(f"{event['service']}-1  | stand-in: {event['action']}\n")
    return 0


def _exec(root: Path, state: dict, rest: list[str]) -> int:
    args = [arg for arg in rest if arg not in ("-T", "--no-TTY")]
    if not args:
        raise UsageError("exec needs a service")
    service, command = args[0], args[1:]
    if state["services"].get(service, {}).get("state") != "running":
        sys.stderr.write(f"service \"{service}\" is not running\n")
        return 1
    result = _read_json(root / STATE_DIR / EXEC_FILE, {}).get(_exec_key(service, command), {"stdout": "", "stderr": "", "exit_status": 0})
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    return result["exit_status"]


def _exec_key(service: str, command: list[str]) -> str:
    return json.dumps([service, *command])


def _event(state: dict, project: str, action: str, service: str) -> None:
    state["events"].append({"action": action, "service": service, "project": project, "time": time.time()})


def _load_project(root: Path, project: str) -> dict:
    return _read_json(root / STATE_DIR / f"project-{project}.json", {"services": {}, "events": []})


def _save_project(root: Path, project: str, state: dict) -> None:
    _write_json(root / STATE_DIR / f"project-{project}.json", state)


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def _write_json(path: Path, value) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(temporary, path)
