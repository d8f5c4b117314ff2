"""Recording STAND-INS for the programs the rendered scripts call and that do not exist here:
`gcloud` (Secret Manager access with the VM's service account), `inngest` (the server binary) and
`sleep` (so retries cost no wall time). Each is a small executable written into a test's bin dir.

    gcloud = GcloudStandIn.install(bin_dir, {"acme-inngest-signing-key": {"versions": {"1": "ab"}, "aliases": {"current": "1"}}})
    gcloud.calls()            # [["secrets", "versions", "access", "current", "--secret=...", "--project=..."], ...]
    gcloud.fail_next(2)       # the next two calls fail with UNAVAILABLE, as a transient outage would
    recorder = Recorder.install(bin_dir, "inngest")
    recorder.calls()          # [{"argv": [...], "env": {...}}]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

_GCLOUD = r'''
import json, sys
from pathlib import Path

here = Path(__file__).parent
store = json.loads((here / "gcloud-store.json").read_text())
with open(here / "gcloud-calls.jsonl", "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
failures = here / "gcloud-failures"
if failures.exists() and int(failures.read_text()) > 0:
    failures.write_text(str(int(failures.read_text()) - 1))
    sys.stderr.write("ERROR: (gcloud.secrets.versions.access) UNAVAILABLE: the service is unavailable\n")
    sys.exit(1)
args = sys.argv[1:]
if args[:3] != ["secrets", "versions", "access"] or len(args) != 6:
    sys.stderr.write("stand-in gcloud does not support: %r\n" % args)
    sys.exit(2)
version = args[3]
options = dict(arg[2:].split("=", 1) for arg in args[4:])
if options.get("project") != store["project"]:
    sys.stderr.write("ERROR: (gcloud.secrets.versions.access) PERMISSION_DENIED: wrong project\n")
    sys.exit(1)
secret = store["secrets"].get(options["secret"])
name = "projects/%s/secrets/%s/versions/%s" % (store["project"], options["secret"], version)
if secret is None:
    sys.stderr.write("ERROR: (gcloud.secrets.versions.access) NOT_FOUND: Secret [%s] not found.\n" % options["secret"])
    sys.exit(1)
number = secret.get("aliases", {}).get(version, version)
if number not in secret["versions"]:
    sys.stderr.write("ERROR: (gcloud.secrets.versions.access) NOT_FOUND: Secret Version [%s] not found.\n" % name)
    sys.exit(1)
sys.stdout.write(secret["versions"][number])
'''

_RECORDER = r'''
import json, os, sys
from pathlib import Path

log = Path(__file__).with_name(Path(__file__).name + "-calls.jsonl")
with open(log, "a") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ)}) + "\n")
'''


def _install(path: Path, source: str) -> None:
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)


class GcloudStandIn:
    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir

    @classmethod
    def install(cls, bin_dir: Path, project: str, secrets: dict) -> GcloudStandIn:
        bin_dir.mkdir(parents=True, exist_ok=True)
        _install(bin_dir / "gcloud", _GCLOUD)
        stand_in = cls(bin_dir)
        stand_in.set_secrets(project, secrets)
        return stand_in

    def set_secrets(self, project: str, secrets: dict) -> None:
        (self.bin_dir / "gcloud-store.json").write_text(json.dumps({"project": project, "secrets": secrets}))

    def fail_next(self, times: int) -> None:
        (self.bin_dir / "gcloud-failures").write_text(str(times))

    def calls(self) -> list[list[str]]:
        log = self.bin_dir / "gcloud-calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def clear_calls(self) -> None:
        (self.bin_dir / "gcloud-calls.jsonl").unlink(missing_ok=True)


class Recorder:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def install(cls, bin_dir: Path, name: str) -> Recorder:
        bin_dir.mkdir(parents=True, exist_ok=True)
        _install(bin_dir / name, _RECORDER)
        return cls(bin_dir / name)

    def calls(self) -> list[dict]:
        log = self.path.with_name(self.path.name + "-calls.jsonl")
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
