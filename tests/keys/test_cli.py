"""The `keys` command line: help on every level, and refusals that need no stack at all."""

from __future__ import annotations

import argparse

import pytest

from infra.keys import cli


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m infra")
    cli.register(root.add_subparsers(dest="command"), environment=lambda: pytest.fail("no command should run"))
    return root


@pytest.mark.parametrize("argv", [["keys"], ["keys", "rotate"], ["keys", "status"], ["keys", "prune"]])
def test_help_on_every_level(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m infra " + " ".join(argv) in capsys.readouterr().out


def test_rotate_help_explains_the_grace_period_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["keys", "rotate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exits with code 4, and the same command run after the deadline finishes the rotation" in text
    assert "3 a step failed and was rolled back" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keys", "rotate", "tls", "--stack", "prod"], "invalid choice: 'tls'"),
        (["keys", "rotate", "signing"], "the following arguments are required: --stack"),
        (["keys", "rotate", "signing", "--stack", "prod", "--grace", "soon"], "'soon' is not a duration"),
        (["keys", "prune", "--stack", "prod", "--retention", "30"], "'30' is not a duration"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
