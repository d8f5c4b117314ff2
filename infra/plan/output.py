"""Writes the plan's rendered files to a directory, and never deletes a file it did not write.

A manifest (.inngest-kit-plan.json) records what the plan wrote there. A later plan removes only the
files that manifest lists, and only directories it lists as created by the plan and left empty. A
directory that holds anything else and no manifest is refused, so `--out` can never wipe a checkout.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

MANIFEST = ".inngest-kit-plan.json"
MANIFEST_KIND = "inngest-kit plan output"


class OutputError(Exception):
    """The directory cannot take the plan's files; the message names --out and the fix."""


def _safe_relative(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and ".." not in parts and "." not in parts and path == str(PurePosixPath(path))


def _read_manifest(out: Path) -> dict | None:
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        return None
    files = [f for f in manifest.get("files", []) if isinstance(f, str) and _safe_relative(f)]
    directories = [d for d in manifest.get("directories", []) if isinstance(d, str) and _safe_relative(d)]
    return {"files": files, "directories": directories}


def write_plan_files(out: Path, files: dict[str, str]) -> None:
    """Writes `files` under `out`, replacing what an earlier plan wrote there and nothing else."""
    for relative in files:
        if not _safe_relative(relative) or relative == MANIFEST:
            raise OutputError(f"--out: the plan would write {relative!r}, outside the directory. Fix: this is a bug in the plan; report it.")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out: {out} is a file, not a directory. Fix: give a new or empty directory.")
    created_out = not out.exists()
    previous = _read_manifest(out) if out.exists() else None
    if out.exists() and previous is None and any(out.iterdir()):
        raise OutputError(
            f"--out: {out} is not empty and holds no plan manifest ({MANIFEST}), so the plan did not write it. "
            "Fix: give a new or empty directory; the plan never deletes files it did not write."
        )
    previous = previous or {"files": [], "directories": []}
    earlier = set(previous["files"])
    for relative in files:
        target = out / relative
        if (target.exists() or target.is_symlink()) and relative not in earlier:
            raise OutputError(f"--out: {target} exists and was not written by the plan. Fix: move it away, or give another directory.")
    _remove_previous(out, previous)
    directories = set(previous["directories"]) if not created_out else set()
    out.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = out / relative
        for parent in reversed(PurePosixPath(relative).parents[:-1]):  # a, a/b for a/b/file; not "."
            if not (out / parent).exists():
                directories.add(str(parent))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if content.startswith("#!"):
            path.chmod(0o755)
    manifest = {"kind": MANIFEST_KIND, "files": sorted(files), "directories": sorted(directories)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def _remove_previous(out: Path, previous: dict) -> None:
    root = out.resolve()
    for relative in previous["files"]:
        path = out / relative
        # Only a plain file the manifest names, inside the directory; never through a link.
        if path.is_file() and not path.is_symlink() and root in path.resolve().parents:
            path.unlink()
    for relative in sorted(previous["directories"], key=lambda d: -len(PurePosixPath(d).parts)):
        path = out / relative
        if path.is_dir() and not path.is_symlink() and root in path.resolve().parents and not any(path.iterdir()):
            path.rmdir()
