"""scripts/tunnel.sh, driven as a user would, with recording stand-ins for `gcloud` and `pulumi`
first (and alone, with the few tools the script needs) on PATH."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "tunnel.sh"
# What the script may call besides gcloud and pulumi; anything else missing from PATH fails the test.
TOOLS = ("bash", "cat", "python3", "mktemp", "rm", "tail", "ss", "sed", "head", "pgrep", "sleep")
OUTPUTS = {"project": "acme-web-prod", "zone": "us-central1-a", "vm_name": "acme-vm", "ssh_private_key": "[secret]"}
AUTH_LIST = ["auth", "list", "--filter=status:ACTIVE", "--format=value(account)"]

# One stand-in program for both tools: records argv, then answers as told by files beside it.
STANDIN = """#!{python}
# Recording stand-in for `{tool}` (tests only): logs argv, answers from the files next to it.
import json, os, subprocess, sys, time
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "calls.jsonl"), "a") as log:
    log.write(json.dumps({{"tool": "{tool}", "argv": sys.argv[1:]}}) + "\\n")
def answer(name, default=""):
    path = os.path.join(here, "{tool}." + name)
    return open(path).read() if os.path.exists(path) else default
if "{tool}" == "gcloud" and sys.argv[1:3] == ["compute", "ssh"]:
    if answer("ssh-mode") == "hold":
        # Like gcloud: the tunnel is a child process (ssh) that outlives a careless kill of its parent.
        ssh = subprocess.Popen(["sleep", "300"])
        with open(os.path.join(here, "pids"), "w") as pids:
            pids.write(f"{{os.getpid()}} {{ssh.pid}}")
        ssh.wait()
    sys.exit(int(answer("ssh-exit", "255")))
sys.stdout.write(answer("stdout"))
sys.stderr.write(answer("stderr"))
sys.exit(int(answer("exit", "0")))
"""


class Machine:
    """A PATH holding the stand-ins and the tools the script needs, and nothing else."""

    def __init__(self, root: Path):
        self.standins = root / "standins"
        self.tools = root / "tools"
        self.standins.mkdir()
        self.tools.mkdir()
        for tool in TOOLS:
            # python3 may be a version manager's shim that needs more of PATH; link a real interpreter.
            found = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
            if found is None:
                pytest.skip(f"{tool} is not installed (the tunnel script uses it): run `sudo make test-deps`")
            (self.tools / tool).symlink_to(found)
        self.env = {"PATH": f"{self.standins}:{self.tools}", "HOME": str(root), "LANG": "C.UTF-8"}

    def install(self, tool: str, **answers: str) -> None:
        program = self.standins / tool
        program.write_text(STANDIN.format(python=sys.executable, tool=tool))
        program.chmod(0o755)
        for name, value in answers.items():
            (self.standins / f"{tool}.{name.replace('_', '-')}").write_text(value)

    def logged_in_gcloud(self, **answers: str) -> None:
        self.install("gcloud", stdout="ops@acme-example.com\n", **answers)

    def pulumi_with(self, outputs: dict) -> None:
        self.install("pulumi", stdout=json.dumps(outputs))

    def calls(self, tool: str | None = None) -> list[list[str]]:
        log = self.standins / "calls.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return [record["argv"] for record in records if tool in (None, record["tool"])]

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), *args], env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.fixture
def machine(tmp_path) -> Machine:
    return Machine(tmp_path)


def ssh_call(vm="acme-vm", zone="us-central1-a", project="acme-web-prod", port=8288, iap=True) -> list[str]:
    return ["compute", "ssh", vm, "--zone", zone, "--project", project, *(["--tunnel-through-iap"] if iap else []), "--", "-N", "-L", f"{port}:localhost:8288"]


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so other tests' bind(0) calls do not take it meanwhile."""
    for _ in range(100):
        port = random.randint(20000, 32000)
        if port_is_free(port):
            return port
    raise RuntimeError("no free port found between 20000 and 32000")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_help_documents_every_option_and_variable(machine):
    result = machine.run("--help")
    assert result.returncode == 0
    for word in ("--stack", "--vm", "--zone", "--project", "--port", "--no-iap", "KIT_STACK", "KIT_VM", "KIT_ZONE", "KIT_PROJECT", "KIT_PORT", "KIT_NO_IAP"):
        assert word in result.stdout
    assert machine.calls() == []


def test_with_no_arguments_everything_comes_from_the_stack_outputs(machine):
    if not port_is_free(8288):
        pytest.skip("port 8288 is taken on this machine, and this test is about the default port")
    machine.logged_in_gcloud()
    machine.pulumi_with(OUTPUTS)
    result = machine.run()
    assert machine.calls("pulumi") == [["stack", "output", "--json"]]
    assert machine.calls("gcloud") == [AUTH_LIST, ssh_call()]
    assert "Inngest dashboard: http://localhost:8288" in result.stdout
    # The stand-in's ssh exits 255 at once: the script says the tunnel closed and fails.
    assert result.returncode == 1
    assert "the tunnel closed: gcloud compute ssh exited with status 255" in result.stderr


def test_flags_override_outputs_and_choose_the_stack(machine):
    machine.logged_in_gcloud()
    machine.pulumi_with(OUTPUTS)
    port = free_port()
    machine.run("--stack", "prod", "--vm", "other-vm", f"--port={port}")
    assert machine.calls("pulumi") == [["stack", "output", "--json", "--stack", "prod"]]
    assert machine.calls("gcloud")[-1] == ssh_call(vm="other-vm", port=port)


def test_environment_variables_override_outputs(machine):
    machine.logged_in_gcloud()
    machine.pulumi_with(OUTPUTS)
    port = free_port()
    machine.run(env={"KIT_STACK": "staging", "KIT_ZONE": "europe-west1-b", "KIT_PORT": str(port)})
    assert machine.calls("pulumi") == [["stack", "output", "--json", "--stack", "staging"]]
    assert machine.calls("gcloud")[-1] == ssh_call(zone="europe-west1-b", port=port)


def test_pulumi_is_not_needed_when_every_value_is_given(machine):
    machine.logged_in_gcloud()  # and no pulumi on PATH at all
    port = free_port()
    result = machine.run("--vm", "v1", "--zone", "us-east1-b", "--project", "p-123456", "--port", str(port), "--no-iap")
    assert result.returncode == 1  # the stand-in's ssh ended; no check failed
    assert machine.calls("gcloud")[-1] == ssh_call("v1", "us-east1-b", "p-123456", port, iap=False)


def test_no_iap_from_the_environment(machine):
    machine.logged_in_gcloud()
    machine.pulumi_with(OUTPUTS)
    port = free_port()
    machine.run("--port", str(port), env={"KIT_NO_IAP": "1"})
    assert machine.calls("gcloud")[-1] == ssh_call(port=port, iap=False)


def assert_refused(result: subprocess.CompletedProcess, machine: Machine, *messages: str) -> None:
    assert result.returncode == 2
    assert result.stderr.startswith("error: the tunnel was not opened:\n")
    for message in messages:
        assert f"  - {message}" in result.stderr
    assert result.stderr.count("\n  - ") == len(messages)
    assert all(call[:2] != ["compute", "ssh"] for call in machine.calls("gcloud"))


def test_gcloud_missing(machine):
    machine.pulumi_with(OUTPUTS)
    result = machine.run("--port", str(free_port()))
    assert_refused(result, machine, "gcloud is not installed: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then run 'gcloud auth login'")


def test_gcloud_not_logged_in(machine):
    machine.install("gcloud", stdout="")
    machine.pulumi_with(OUTPUTS)
    result = machine.run("--port", str(free_port()))
    assert_refused(result, machine, "gcloud is not logged in: run 'gcloud auth login'")
    assert machine.calls("gcloud") == [AUTH_LIST]


def test_pulumi_missing_when_an_output_is_needed(machine):
    machine.logged_in_gcloud()
    result = machine.run("--vm", "acme-vm", "--port", str(free_port()))
    assert_refused(
        result,
        machine,
        "pulumi is not installed, and it is needed to read the VM's name, zone and project from the selected stack: "
        "install it (https://www.pulumi.com/docs/install/), or pass --vm, --zone and --project",
    )


def test_stack_without_outputs(machine):
    machine.logged_in_gcloud()
    machine.pulumi_with({})
    result = machine.run("--stack", "dev", "--port", str(free_port()))
    assert_refused(result, machine, "dev has no outputs: run 'pulumi up' first")


def test_stack_missing_some_outputs(machine):
    machine.logged_in_gcloud()
    machine.pulumi_with({"project": "acme-web-prod"})
    result = machine.run("--port", str(free_port()))
    assert_refused(result, machine, "the selected stack has no output(s): vm_name zone. Run 'pulumi up', or pass --vm, --zone and --project")


def test_pulumi_failure_shows_its_message(machine):
    machine.logged_in_gcloud()
    machine.install("pulumi", stderr="error: no stack named 'nope' found\n", exit="255")
    result = machine.run("--stack", "nope", "--port", str(free_port()))
    assert_refused(result, machine, "pulumi stack output failed for nope (exit status 255): error: no stack named 'nope' found. Pass --stack NAME or run 'pulumi stack select'")


def test_busy_port_names_the_process_holding_it(machine):
    machine.logged_in_gcloud()
    machine.pulumi_with(OUTPUTS)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = machine.run("--port", str(port))
    assert_refused(result, machine, f"local port {port} is in use by")
    assert f"(pid {os.getpid()}, found with ss): stop that process or choose another port with --port" in result.stderr


def test_every_problem_is_reported_at_once(machine):
    machine.install("gcloud", stdout="")
    machine.pulumi_with({})
    result = machine.run("--port", "80", env={"KIT_NO_IAP": "yes"})
    assert_refused(
        result,
        machine,
        "KIT_NO_IAP is 'yes': set it to 1 (connect directly) or leave it unset",
        "local port 80 is out of range: pass --port with a number from 1024 to 65535",
        "gcloud is not logged in: run 'gcloud auth login'",
        "the selected stack has no outputs: run 'pulumi up' first",
    )


@pytest.mark.parametrize(("args", "message"), [(["--port"], "--port needs a value"), (["--zone="], "--zone needs a value"), (["-x"], "unknown option '-x'")])
def test_bad_options(machine, args, message):
    result = machine.run(*args)
    assert (result.returncode, result.stderr.splitlines()[0]) == (2, f"error: {message}")
    assert machine.calls() == []


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left


def test_ctrl_c_closes_the_tunnel_and_leaves_no_process_behind(machine):
    machine.logged_in_gcloud(ssh_mode="hold")
    machine.pulumi_with(OUTPUTS)
    # Files, not pipes: a process left behind would hold a pipe open and hide the real failure.
    out_file, err_file = machine.standins / "script.out", machine.standins / "script.err"
    with open(out_file, "w") as out_handle, open(err_file, "w") as err_handle:
        script = subprocess.Popen(["bash", str(SCRIPT), "--port", str(free_port())], env=machine.env, stdin=subprocess.DEVNULL, stdout=out_handle, stderr=err_handle)
    gcloud_pid = ssh_pid = None
    try:
        pids_file = machine.standins / "pids"
        for _ in range(200):  # the stand-in writes its pids once "connected"
            if pids_file.exists() and pids_file.read_text():
                break
            time.sleep(0.05)
        gcloud_pid, ssh_pid = (int(pid) for pid in pids_file.read_text().split())
        assert running(gcloud_pid) and running(ssh_pid)
        script.send_signal(signal.SIGINT)
        script.wait(timeout=10)
        for _ in range(50):  # the killed processes may need a moment to be gone
            if not running(gcloud_pid) and not running(ssh_pid):
                break
            time.sleep(0.05)
        left_behind = [pid for pid in (gcloud_pid, ssh_pid) if running(pid)]
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
        for pid in (gcloud_pid, ssh_pid):
            if pid and running(pid):
                os.kill(pid, signal.SIGKILL)  # this test started them; never leave them to the next one
    assert script.returncode == 0
    assert "http://localhost:" in out_file.read_text()
    assert "Tunnel closed." in err_file.read_text()
    assert left_behind == []
