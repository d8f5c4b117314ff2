"""Release planning: which files changed, what the new release is called, what must restart.

Pure. A release is named by the hash of its manifest (path -> sha256 of content), so the same
files always make the same release, and a rerun after an interruption finds and finishes it.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from infra.remote.commands import MANIFEST_FILE

RELEASE_ID_LENGTH = 16  # hex chars of the manifest hash: short enough to read, far from colliding

RestartedBy = Callable[[str], tuple[str, ...]]


class ReleaseFilesError(ValueError):
    """The files handed to the deploy cannot form a release; lists every problem at once."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class ReleasePlan:
    release_id: str
    manifest: dict[str, str]  # relative path -> sha256 hex of the content
    changed: tuple[str, ...]  # new or different since the previous release: to upload
    unchanged: tuple[str, ...]  # identical: copied on the VM from the previous release
    removed: tuple[str, ...]  # in the previous release only: deleted from the copy
    recreate: tuple[str, ...]  # services compose cannot see a change for, to recreate explicitly
    previous_release_id: str | None

    @property
    def is_first(self) -> bool:
        return self.previous_release_id is None

    @property
    def is_unchanged(self) -> bool:
        return self.release_id == self.previous_release_id

    @property
    def subdirs(self) -> tuple[str, ...]:
        """Directories inside the release that the changed files need."""
        dirs = {posixpath.dirname(path) for path in self.changed} - {""}
        with_parents = set()
        for directory in dirs:
            while directory:
                with_parents.add(directory)
                directory = posixpath.dirname(directory)
        return tuple(sorted(with_parents))


def sha256_hex(content: str | bytes) -> str:
    data = content.encode() if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


def fingerprint(content: str | bytes) -> str:
    """What may be shown of a value: the first 8 hex chars of its sha256."""
    return sha256_hex(content)[:8]


def file_manifest(files: Mapping[str, str]) -> dict[str, str]:
    return {path: sha256_hex(content) for path, content in sorted(files.items())}


def release_id_for(manifest: Mapping[str, str]) -> str:
    canonical = json.dumps(dict(sorted(manifest.items())), separators=(",", ":"))
    return sha256_hex(canonical)[:RELEASE_ID_LENGTH]


def check_files(files: Mapping[str, str]) -> None:
    """Raise ReleaseFilesError unless every path is a plain relative path inside the release."""
    problems = []
    if not files:
        problems.append("files: no files to deploy. Fix: pass the rendered stack (render_stack) as `files`.")
    for path, content in sorted(files.items()):
        setting = f"files[{path!r}]"
        parts = path.split("/")
        if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
            problems.append(f"{setting}: is not a plain relative path inside the release. Fix: use a path such as 'caddy/Caddyfile', without '..', '.', empty parts or a leading '/'.")
        elif path == MANIFEST_FILE:
            problems.append(f"{setting}: the name is reserved for the release manifest. Fix: rename the file.")
        if not isinstance(content, str):
            problems.append(f"{setting}: content must be text, got {type(content).__name__}. Fix: pass the rendered file's text.")
    if problems:
        raise ReleaseFilesError(problems)


def plan_release(files: Mapping[str, str], previous_manifest: Mapping[str, str] | None, restarted_by: RestartedBy) -> ReleasePlan:
    """Compare the files to the previous release's manifest (None on a first deploy)."""
    check_files(files)
    manifest = file_manifest(files)
    previous = dict(previous_manifest or {})
    changed = tuple(path for path, digest in manifest.items() if previous.get(path) != digest)
    unchanged = tuple(path for path in manifest if path not in changed)
    removed = tuple(sorted(set(previous) - set(manifest)))
    recreate: set[str] = set()
    if previous_manifest is not None:
        # On a first deploy `compose up` creates everything; afterwards, a changed or removed file
        # that compose cannot see still needs its services recreated.
        for path in changed:
            recreate.update(restarted_by(path))
        for path in removed:
            try:
                recreate.update(restarted_by(path))
            except ValueError:
                pass  # a file this version of the kit no longer renders: no service mounts it any more
    return ReleasePlan(
        release_id=release_id_for(manifest),
        manifest=manifest,
        changed=changed,
        unchanged=unchanged,
        removed=removed,
        recreate=tuple(sorted(recreate)),
        previous_release_id=None if previous_manifest is None else release_id_for(previous),
    )


def manifest_document(plan: ReleasePlan) -> bytes:
    return (json.dumps({"release": plan.release_id, "files": plan.manifest}, indent=1, sort_keys=True) + "\n").encode()


def parse_manifest(text: str, expected_release_id: str | None = None) -> dict[str, str] | None:
    """The files of a release manifest, or None when it is unreadable or does not match its release.

    A manifest whose hash does not give its own release id (a copy from another release, a partial
    write) is not trusted, so an interrupted release is rebuilt instead of being switched to.
    """
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        return None
    files = document["files"]
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in files.items()):
        return None
    release_id = release_id_for(files)
    if document.get("release") != release_id or (expected_release_id is not None and release_id != expected_release_id):
        return None
    return files
