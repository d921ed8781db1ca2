"""The one CLI idiom (:mod:`modeling.cli`), the training hooks of the family protocol and the
shared musical constants (:mod:`modeling.music`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from modeling.cli import ArgumentParser, UsageError, command
from modeling.families import FAMILY_MODULES, load_family

REPO = Path(__file__).resolve().parents[1]


@command("demo")
def _demo(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="demo")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--n", type=int, required=True)
    args = parser.parse_args(argv)
    if args.n < 1:
        raise UsageError(f"--n must be >= 1 (got {args.n})\nsecond line never shown")
    return 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "demo: argument cmd: invalid choice: 'nope'"),
        (["run", "--n", "x"], "demo: argument --n: invalid int value: 'x' (see --help)"),
        (["run", "--n", "0"], "demo: --n must be >= 1 (got 0)"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _demo(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(message), err


def test_good_input_runs_and_other_ranks_stay_silent(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _demo(["run", "--n", "3"]) == 0
    monkeypatch.setenv("RANK", "1")  # a torchrun group: rank 0 alone reports
    assert _demo(["run", "--n", "0"]) == 2
    assert capsys.readouterr().err == ""


def test_ingest_usage_error_is_the_shared_one() -> None:
    from pipelines.ingest import config

    assert config.UsageError is UsageError


def test_converted_clis_answer_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines import profile, stagedeps

    assert stagedeps.main(["nope"]) == 2
    assert profile.main(["use"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["stagedeps", "profile"], lines


@pytest.mark.parametrize("family", sorted(FAMILY_MODULES))
def test_every_family_provides_the_training_hooks(family: str) -> None:
    from modeling.variants import VARIANTS

    module = load_family(family)
    assert isinstance(module.NEUTRAL_PAD, int) and isinstance(module.STEP_UNIT, str)
    events = torch.tensor([[0, 1, 2, 300]])
    units = module.event_units(events)
    assert units.shape == events.shape and units.dtype == torch.float64
    for cfg in (v for v in VARIANTS.values() if v.family == family):
        label = module.default_event_label(cfg.encoding)
        assert 0 <= label < cfg.encoding.num_classes, cfg.name


def test_training_names_no_family() -> None:
    """Training asks the family protocol; it never branches on a family name."""
    pattern = re.compile(
        r"family *(==|!=|in) *[(\"']|\.family *(==|!=|in) |\"(melody|improv|polyphony|performance)\""
    )
    files = [REPO / "modeling" / "train.py", *sorted((REPO / "modeling" / "training").glob("*.py"))]
    hits = [
        f"{f.name}:{n}"
        for f in files
        for n, line in enumerate(f.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits
    long = [f.name for f in files if len(f.read_text().splitlines()) > 500]
    assert not long, long


def test_music_constants_are_note_seqs() -> None:
    from note_seq import constants

    from modeling import music

    assert music.STEPS_PER_BAR == constants.DEFAULT_STEPS_PER_BAR
    assert music.DEFAULT_QPM == constants.DEFAULT_QUARTERS_PER_MINUTE
    assert len(set(music.PITCH_CLASS_NAMES)) == 12 and music.PITCH_CLASS_NAMES[1] == "C#"
