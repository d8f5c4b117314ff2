"""0 tracebacks on any input: parse_config only ever returns a StackConfig or raises ConfigError, on
both paths (the offline plan's file reading and `pulumi up`'s engine config), over a corpus of 1,500
malformed configs of our own (tests/foundation/config_corpus.py). Before the pydantic model, the
parser of the time raised 173 tracebacks on this corpus (TypeError from sorting mixed keys, ValueError
from int('²') and from a 5,000-digit string)."""

from __future__ import annotations

import json

import pulumi
import pytest

from infra.config import ConfigError, StackConfig, parse_config
from infra.plan.evaluate import _mask_config
from infra.pulumi_config import read_raw_config
from tests.foundation.config_corpus import SIZE, corpus

CORPUS = corpus()


def outcome(raw) -> StackConfig | list[str]:
    try:
        result = parse_config(raw)
    except ConfigError as error:
        return error.problems
    assert isinstance(result, StackConfig)
    return result


def assert_well_formed(problems: list[str]) -> None:
    assert problems, "a refusal names at least one problem"
    for problem in problems:
        assert isinstance(problem, str)
        setting, _, rest = problem.partition(": ")
        assert setting and rest, problem
        assert ". Fix: " in problem and problem.endswith("."), problem
        # A 5,000-digit value is never echoed back whole.
        assert len(problem) < 1200, problem[:200]


def test_the_corpus_is_large_and_mostly_refused():
    assert len(CORPUS) == SIZE >= 1000
    refused = sum(isinstance(outcome(raw), list) for raw in CORPUS)
    assert refused > SIZE * 0.8


@pytest.mark.parametrize("chunk", range(10))
def test_parse_config_never_raises_anything_but_config_error(chunk):
    for raw in CORPUS[chunk::10]:
        result = outcome(raw)
        if isinstance(result, list):
            assert_well_formed(result)
        else:
            # Whatever it accepts keeps its promises: typed, frozen, warnings as text.
            assert isinstance(result.app.command, tuple) and all(isinstance(w, str) for w in result.warnings)


def test_the_plan_path_never_raises_anything_but_config_error():
    for raw in CORPUS[::3]:
        masked, _ = _mask_config({k: v for k, v in raw.items()})
        result = outcome(masked)
        if isinstance(result, list):
            assert_well_formed(result)


def _engine_config(raw: dict) -> dict[str, str] | None:
    """The config as the engine hands it to `pulumi up`: string keys, top-level strings, objects as JSON."""
    try:
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    except (ValueError, RecursionError):  # values no stack file can hold (a 5,000-digit int)
        return None


def test_the_pulumi_up_path_never_raises_anything_but_config_error():
    checked = 0
    for raw in CORPUS[1::3]:
        engine = _engine_config(raw)
        if engine is None:
            continue
        pulumi.runtime.set_all_config(engine, [])
        result = outcome(read_raw_config())
        if isinstance(result, list):
            assert_well_formed(result)
        checked += 1
    assert checked > 400


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        "config",
        {1: "x"},
        {None: None},
        {"inngest-kit:app": {"image": "ghcr.io/a/b:1", "command": ["x"], "cpus": 10**5000}},
        {"inngest-kit:inngest": {"cpus": "9" * 5000}},
        {"inngest-kit:inngest": {"memoryMb": "²"}},
        {"inngest-kit:vm": {"bootDiskGb": float("nan")}},
        {"gcp:project": 10**5000},
    ],
)
def test_named_inputs_from_the_review_are_refused_cleanly(raw):
    result = outcome(raw)
    assert isinstance(result, list)
    assert_well_formed(result)


def test_what_the_config_accepts_the_program_plans():
    """A sample of the accepted configs runs through the whole offline plan: a setting the model
    accepts must not fail later in the program (as a 300-character app secret name once did, at the
    Secret Manager id). The whole accepted set takes about a minute: `python -m tests.foundation.config_corpus`
    prints the figures for the parse alone."""
    from infra.plan.evaluate import PlanInputError, evaluate

    accepted = [raw for raw in CORPUS if isinstance(outcome(raw), StackConfig)]
    sample = accepted[:: max(1, len(accepted) // 12)]
    assert len(sample) >= 10
    for raw in sample:
        try:
            evaluate("fuzz", raw=raw)
        except PlanInputError:
            pass  # a refusal the program found (an adopted instance's budget), said as a problem list
