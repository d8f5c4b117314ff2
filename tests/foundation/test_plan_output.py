"""`plan --out DIR` never deletes a file it did not write; stack names are checked as Pulumi checks
them; `--config-file` errors name `--config-file`. (Before: the plan wiped DIR with rmtree, and
`--stack ..` made the default DIR the checkout itself.)"""

from __future__ import annotations

import json

import pytest
import yaml

from infra.cli import main
from infra.plan.evaluate import PROJECT_ROOT, stack_name_problems
from infra.plan.output import MANIFEST, OutputError, write_plan_files
from tests.foundation.plan_helpers import example_raw


def plan(*args: str) -> int:
    return main(["plan", "--json", *args])


def test_a_second_plan_replaces_its_own_files_and_leaves_everything_else(tmp_path, capsys):
    out = tmp_path / "out"
    assert plan("--out", str(out)) == 0
    written = json.loads((out / MANIFEST).read_text())["files"]
    assert "docker-compose.yml" in written and (out / "docker-compose.yml").is_file()
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "keep.txt").write_text("mine too")
    assert plan("--out", str(out)) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "mine" / "keep.txt").read_text() == "mine too"
    assert (out / "docker-compose.yml").is_file()


def test_a_file_no_longer_rendered_is_removed_only_if_the_plan_wrote_it(tmp_path):
    out = tmp_path / "out"
    write_plan_files(out, {"a.txt": "1", "sub/b.txt": "2", "c.txt": "3"})
    (out / "sub" / "user.txt").write_text("user")
    write_plan_files(out, {"a.txt": "1 again"})
    assert not (out / "c.txt").exists() and not (out / "sub" / "b.txt").exists()
    assert (out / "sub" / "user.txt").read_text() == "user"  # so sub/ stays too
    assert (out / "a.txt").read_text() == "1 again"
    write_plan_files(out, {"a.txt": "1"})
    assert (out / "sub").is_dir()
    (out / "sub" / "user.txt").unlink()
    write_plan_files(out, {"a.txt": "1"})
    assert not (out / "sub").exists()  # created by the plan, left empty: removed


def test_a_directory_the_plan_did_not_write_is_refused_and_left_untouched(tmp_path, capsys):
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (checkout / "README.md").write_text("readme")
    assert plan("--out", str(checkout)) == 2
    err = capsys.readouterr().err
    assert f"--out: {checkout} is not empty and holds no plan manifest" in err
    assert sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*")) == [".git", ".git/HEAD", "README.md"]


def test_a_file_of_the_same_name_that_the_plan_did_not_write_is_not_overwritten(tmp_path):
    out = tmp_path / "out"
    write_plan_files(out, {"a.txt": "1"})
    (out / "Caddyfile").write_text("the user's own")
    with pytest.raises(OutputError, match="--out: .*Caddyfile exists and was not written by the plan"):
        write_plan_files(out, {"a.txt": "1", "Caddyfile": "rendered"})
    assert (out / "Caddyfile").read_text() == "the user's own" and (out / "a.txt").read_text() == "1"


def test_a_tampered_manifest_cannot_reach_outside_the_directory(tmp_path):
    out = tmp_path / "out"
    write_plan_files(out, {"a.txt": "1"})
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (out / "link.txt").symlink_to(outside)
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] += ["../outside.txt", str(outside), "link.txt"]
    manifest["directories"] += ["..", "/"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    write_plan_files(out, {"a.txt": "1"})
    assert outside.read_text() == "precious"


def test_out_as_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(OutputError, match="--out: .* is a file"):
        write_plan_files(target, {"a.txt": "1"})
    assert target.read_text() == "x"


@pytest.mark.parametrize("stack", ["..", ".", "../..", "a/../b", "bad name", "x" * 101, "", "a/b/c/d", "prod/", "-org/prod", "tab\tname"])
def test_stack_names_pulumi_would_refuse_or_that_name_a_path_are_refused(stack, capsys, tmp_path):
    assert plan(f"--stack={stack}", "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "--stack: " in err and "Fix: use letters, digits, -, _ and ." in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stack", ["prod", "acme/prod", "acme/inngest-kit/prod", "dev.eu_1-b", "A" * 100])
def test_stack_names_pulumi_accepts_are_accepted(stack):
    assert stack_name_problems(stack) == []


def test_twice_with_dot_dot_deletes_nothing(tmp_path, capsys, monkeypatch):
    # The review's case: the default --out is <checkout>/build/<stack>, so `--stack ..` named the
    # checkout itself. A stand-in checkout, so a regression cannot touch this one.
    import infra.plan.cli as plan_cli

    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "README.md").write_text("readme")
    monkeypatch.setattr(plan_cli, "PROJECT_ROOT", checkout)
    stack_file = PROJECT_ROOT / "Pulumi.example.yaml"
    for _ in range(2):
        assert plan("--stack", "..", "--config-file", str(stack_file)) == 2
    assert "--stack: '..' is not a stack name Pulumi accepts" in capsys.readouterr().err
    assert sorted(p.name for p in checkout.iterdir()) == [".git", "README.md"]


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing.yaml", "--config-file: {path} is not a file"),
        (lambda d: d, "--config-file: {path} is not a file"),
        (lambda d: write(d / "bad.yaml", "config: [unclosed"), "--config-file: bad.yaml is not valid YAML"),
        (lambda d: write(d / "empty.yaml", ""), "--config-file: empty.yaml has no `config:` map"),
        (lambda d: write(d / "list.yaml", "- 1\n- 2\n"), "--config-file: list.yaml has no `config:` map"),
        (lambda d: write(d / "latin1.yaml", "").parent / "latin1.yaml", None),
        (lambda d: write(d / "huge.yaml", "config:\n  gcp:project: " + "9" * 5000 + "\n"), "--config-file: huge.yaml is not valid YAML (Exceeds the limit"),
        (lambda d: write(d / "deep.yaml", "config:\n  inngest-kit:vm: " + "[" * 20000 + "]" * 20000 + "\n"), "--config-file: deep.yaml is not valid YAML (maximum recursion depth"),
    ],
)
def test_config_file_errors_name_config_file(tmp_path, capsys, make, expected):
    path = make(tmp_path)
    if expected is None:
        path.write_bytes(b"config:\n  inngest-kit:domain: caf\xe9\n")
        expected = "--config-file: latin1.yaml cannot be read (UnicodeDecodeError)"
    assert plan("--config-file", str(path), "--out", str(tmp_path / "out")) == 2
    assert expected.format(path=path) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_qualified_stack_reads_its_short_name_file(tmp_path, capsys):
    stack_file = PROJECT_ROOT / "Pulumi.example.yaml"
    assert stack_file.exists()
    assert plan("--stack", "acme/inngest-kit/example", "--out", str(tmp_path / "o")) == 0
    assert json.loads(capsys.readouterr().out)["stack"] == "acme/inngest-kit/example"


def test_the_plan_prints_the_config_warnings(tmp_path, capsys):
    raw = example_raw()
    raw["inngest-kit:app"]["env"]["GITHUB_TOKEN"] = "ghp_not_really"
    path = tmp_path / "Pulumi.warn.yaml"
    path.write_text(yaml.safe_dump({"config": raw}))
    assert plan("--stack", "warn", "--config-file", str(path), "--out", str(tmp_path / "o")) == 0
    captured = capsys.readouterr()
    assert "warning: inngest-kit:app.env.GITHUB_TOKEN: looks like a secret" in captured.err
    assert json.loads(captured.out)["warnings"][0].startswith("inngest-kit:app.env.GITHUB_TOKEN: looks like a secret")
