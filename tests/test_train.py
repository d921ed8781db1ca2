"""The training loop: hparams parsing, bucketed batches, padding invariance, Magenta's metrics,
outputs, exact resume after ``kill -9``, fine-tuning and one-line refusals of bad input."""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _examples import PYTHON, TINY_HPARAMS, write_example_set

from modeling import checkpoint as ckpt
from modeling import train
from modeling.cli import UsageError
from modeling.data import Batch, BatchSchedule, ExampleSet, epoch_batches
from modeling.families import load_family
from modeling.families.base import HParams, VariantConfig
from modeling.hparams import HParamsError, format_hparams, parse_hparams
from modeling.model import EventRNN
from modeling.training.spec import check_init_compatible
from modeling.variants import get_variant

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


# ----------------------------------------------------------------------------- hparams


def test_parse_hparams_magenta_syntax() -> None:
    hp = parse_hparams(
        "batch_size=64, rnn_layer_sizes=[64,32,16],dropout_keep_prob=0.75,"
        "learning_rate=1e-4,attn_length=40",
        HParams(),
    )
    assert hp.batch_size == 64 and hp.rnn_layer_sizes == (64, 32, 16)
    assert hp.dropout_keep_prob == 0.75 and hp.learning_rate == 1e-4 and hp.attn_length == 40
    assert parse_hparams("", HParams(batch_size=7)).batch_size == 7
    assert parse_hparams(format_hparams(hp)) == hp


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("batch_sise=64", r"unknown hparam\(s\) batch_sise; valid: attn_length, batch_size"),
        ("batch_size=6.5", "batch_size: cannot read '6.5' as int"),
        ("rnn_layer_sizes=64", "expected a list"),
        ("batch_size=1,batch_size=2", "given twice"),
        ("batch_size", "cannot parse hparams"),
        ("dropout_keep_prob=0", r"dropout_keep_prob must be in \(0, 1\]"),
        ("rnn_layer_sizes=[]", "non-empty list"),
    ],
)
def test_parse_hparams_errors(text: str, match: str) -> None:
    with pytest.raises(HParamsError, match=match):
        parse_hparams(text, HParams())


# ----------------------------------------------------------------------------- batches


def test_epoch_batches_bucketed_deterministic_and_complete() -> None:
    lengths = np.random.default_rng(0).integers(2, 300, 1000)
    a = epoch_batches(lengths, 16, seed=5, epoch=3, chunk_batches=8)
    b = epoch_batches(lengths, 16, seed=5, epoch=3, chunk_batches=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(
        np.concatenate(a),
        np.concatenate(epoch_batches(lengths, 16, seed=5, epoch=4, chunk_batches=8)),
    )
    flat = np.concatenate(a)
    assert len(flat) == len(set(flat.tolist())) == 1000 // 16 * 16  # each at most once, full
    assert all(len(x) == 16 for x in a)
    for batch in a:  # sorted chunks: a batch spans a narrow length range
        assert np.all(np.diff(lengths[batch]) >= 0)
    spread = np.mean([np.ptp(lengths[x]) for x in a])
    assert spread < 0.25 * np.ptp(lengths)


def test_schedule_is_a_function_of_seed_and_step() -> None:
    lengths = np.random.default_rng(1).integers(2, 50, 37)
    s1, s2 = BatchSchedule(lengths, 8, seed=3), BatchSchedule(lengths, 8, seed=3)
    order = [s1.batch(i) for i in range(12)]
    for i in (11, 3, 7, 0):  # any access order, e.g. after a resume
        assert np.array_equal(s2.batch(i), order[i])
    assert s1.per_epoch == 4


# ----------------------------------------------------------------------------- metrics


def _scorer(name: str, sizes: tuple[int, ...] = (8, 8)) -> tuple[train.Scorer, EventRNN]:
    cfg = get_variant(name)
    hp = cfg.hparams.override(rnn_layer_sizes=sizes, dropout_keep_prob=1.0)
    cfg = VariantConfig(cfg.name, cfg.family, cfg.encoding, hp)
    torch.manual_seed(0)
    return train.Scorer.for_variant(cfg), EventRNN(cfg, hp).eval()


def test_default_event_labels_follow_note_seq() -> None:
    expect = {
        "basic_rnn": 0,
        "lookback_rnn": 0,
        "attention_rnn": 36,
        "basic_improv": 0,
        "polyphony": 2,
        "performance": 355,
        "performance_with_dynamics": 355,
    }
    for name, label in expect.items():
        assert train.default_event_label(get_variant(name)) == label, name


@pytest.mark.parametrize(
    "name",
    [
        "basic_rnn",
        "lookback_rnn",
        "attention_rnn",
        "chord_pitches_improv",
        "polyphony",
        "multiconditioned_performance_with_dynamics",
    ],
)
def test_padding_changes_nothing(tmp_path: Path, name: str) -> None:
    """Loss and every metric sum are the same however much padding a batch carries."""
    cfg = get_variant(name)
    family = cfg.family
    chords = family == "improv"
    space = cfg.encoding.event_space
    n = 38 if family in ("melody", "improv") else cfg.encoding.num_classes
    if family == "polyphony":  # START, then steps of notes closed by STEP_END
        n = 6
    write_example_set(
        tmp_path,
        family=family,
        event_space=space,
        num_classes=n,
        chords=chords,
        num_train=6,
        num_eval=2,
        min_len=9,
        max_len=30,
    )
    split = ExampleSet.load(tmp_path).train
    scorer, model = _scorer(name)
    pad = load_family(family).NEUTRAL_PAD
    idx = np.arange(6)
    tight = split.batch(idx, pad)
    extra = 13
    junk = torch.randint(0, n, (6, extra))  # garbage in padded slots must not matter either
    stored = {
        k: torch.cat([v, v[:, :1].expand(-1, extra)], 1)
        for k, v in tight.stored.items()
        if k != "mask"
    }
    mask = torch.cat([tight.mask, torch.zeros(6, extra, dtype=torch.bool)], 1)
    wide = Batch(torch.cat([tight.events, junk], 1), mask, {**stored, "mask": mask})
    with torch.no_grad():
        loss_a, stats_a = scorer(model, tight)
        loss_b, stats_b = scorer(model, wide)
    torch.testing.assert_close(stats_a, stats_b, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-6, atol=1e-6)
    assert float(stats_a[1]) == float((split.lengths[idx] - 1).sum())


def test_metric_definitions_by_hand() -> None:
    """accuracy / event / no-event accuracy and loss per STEP_END, counted by hand."""
    cfg = get_variant("polyphony")
    scorer = train.Scorer.for_variant(cfg)
    events = torch.tensor([[0, 3, 2, 3, 2, 1], [0, 2, 2, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    predicted = torch.tensor([[3, 2, 3, 9, 1], [2, 5, 0, 0, 0]])  # class at each input row

    def fake_model(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(predicted, cfg.encoding.num_classes).float() * 5.0

    _, stats = scorer(fake_model, Batch(events, mask, {"mask": mask}))
    m = train.summarize(stats)
    labels = [3, 2, 3, 2, 1, 2, 2]
    preds = [3, 2, 3, 9, 1, 2, 5]
    assert m["accuracy"] == pytest.approx(5 / 7)
    ev = [(p == y) for p, y in zip(preds, labels, strict=True) if y != 2]
    ne = [(p == y) for p, y in zip(preds, labels, strict=True) if y == 2]
    assert m["event_accuracy"] == pytest.approx(sum(ev) / len(ev))
    assert m["no_event_accuracy"] == pytest.approx(sum(ne) / len(ne))
    assert m["perplexity"] == pytest.approx(np.exp(m["loss"]))
    assert m["loss_per_step"] == pytest.approx(m["loss"] * 7 / 4)  # 4 STEP_END labels


def test_lookback_scores_the_event_not_the_label() -> None:
    """A repeated event's probability sums its pitch class and its "repeat 1 bar ago" class
    (the likelihood an n-gram over the same events is compared with); a guess of either counts
    as correct."""
    cfg = get_variant("lookback_rnn")
    enc, scorer = cfg.encoding, train.Scorer.for_variant(cfg)
    bar = [2 + p for p in (12, 14, 16, 17, 19, 21, 23, 24)] + [0] * 8  # 16 steps
    events = torch.tensor([bar + bar + [5]])  # bar 2 repeats bar 1
    mask = torch.ones_like(events, dtype=torch.bool)
    torch.manual_seed(0)
    logits = torch.randn(1, events.shape[1] - 1, enc.num_classes)
    predicted = logits.argmax(-1)

    _, stats = scorer(lambda x: logits, Batch(events, mask, {"mask": mask}))
    m = train.summarize(stats)

    p = logits.softmax(-1)[0]
    labels = enc.labels(events, {})[0, 1:]
    rep16 = enc.num_events  # first repeat class: 16 steps
    want_loss, want_correct = 0.0, 0
    for t in range(1, events.shape[1]):
        e = int(events[0, t])
        ok = {e}
        for i, d in enumerate((16, 32)):  # before step d a repeat class plays a rest (0)
            if int(events[0, t - d]) == e if t >= d else e == 0:
                ok.add(rep16 + i)
        assert int(labels[t - 1]) in ok
        want_loss -= float(torch.log(sum(p[t - 1, c] for c in ok)))
        want_correct += int(predicted[0, t - 1]) in ok
    n = events.shape[1] - 1
    assert m["loss"] == pytest.approx(want_loss / n, rel=1e-5)
    assert m["accuracy"] == pytest.approx(want_correct / n)
    label_loss = torch.nn.functional.cross_entropy(logits[0], labels).item()
    assert m["loss"] < label_loss  # never above Magenta's label loss


def test_loss_per_second_for_performance() -> None:
    cfg = get_variant("performance")
    scorer = train.Scorer.for_variant(cfg)
    shift = 256  # TIME_SHIFT of 1 step (10 ms): index 255 + steps
    events = torch.tensor([[60, shift + 49, 188, shift + 99, 60]])  # 0.5 s + 1.0 s of shifts
    mask = torch.ones_like(events, dtype=torch.bool)

    def uniform(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*x.shape[:2], cfg.encoding.num_classes)

    _, stats = scorer(uniform, Batch(events, mask, {"mask": mask}))
    m = train.summarize(stats)
    assert m["loss"] == pytest.approx(np.log(356))
    assert m["loss_per_step"] == pytest.approx(4 * np.log(356) / 1.5)


# ----------------------------------------------------------------------------- CLI runs


def _run(
    args: list[str], cwd: Path, **kw: object
) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlruns/mlflow.db",
    }
    cmd = [PYTHON, "-m", "modeling.train", *args]
    if kw.pop("background", False):
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_kill9_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    """SIGKILL mid-run, re-run the same command: final weights equal an uninterrupted run's."""
    ex = write_example_set(tmp_path / "ex", num_train=40, num_eval=6, min_len=60, max_len=120)
    common = [
        "--variant",
        "basic_rnn",
        "--examples",
        str(ex),
        "--hparams",
        "batch_size=8,rnn_layer_sizes=[48,48]",
        "--num-steps",
        "30",
        "--eval-every",
        "10",
        "--save-every",
        "2",
        "--keep-last",
        "3",
        "--seed",
        "7",
        "--no-mlflow",
        "--quiet",
    ]
    full = _run([*common, "--output", str(tmp_path / "full")], tmp_path)
    assert full.returncode == 0, full.stderr

    out = tmp_path / "killed"
    proc = _run([*common, "--output", str(out)], tmp_path, background=True)
    cdir = ckpt.CheckpointDir(out / "checkpoints")
    deadline = time.time() + 180
    while time.time() < deadline and not any(s >= 6 for s, _ in cdir.steps()):
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    killed_at = cdir.steps()[-1][0]
    assert killed_at < 30, "run finished before the kill; the test proved nothing"
    assert not (out / "metrics.json").exists()

    resumed = _run([*common, "--output", str(out)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from ckpt-{killed_at:08d}.pt" in resumed.stderr

    a = ckpt.load(tmp_path / "full" / "checkpoints" / "ckpt-00000030.pt")
    b = ckpt.load(out / "checkpoints" / "ckpt-00000030.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for pid, st in a["optimizer"]["state"].items():
        for k, v in st.items():
            assert torch.equal(v, b["optimizer"]["state"][pid][k])
    assert (
        json.loads((out / "metrics.json").read_text())["eval"]
        == json.loads((tmp_path / "full" / "metrics.json").read_text())["eval"]
    )

    # outputs of a finished run
    full_dir = tmp_path / "full"
    assert [s for s, _ in ckpt.CheckpointDir(full_dir / "checkpoints").steps()] == [26, 28, 30]
    best = torch.load(full_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["kind"] == "model" and "optimizer" not in best
    metrics = json.loads((full_dir / "metrics.json").read_text())
    assert set(metrics["eval"]) == set(train.METRICS)
    assert metrics["eval"]["perplexity"] == pytest.approx(np.exp(metrics["eval"]["loss"]))
    rows = (full_dir / "loss_curve.csv").read_text().splitlines()
    assert rows[0].startswith("step,split,loss,perplexity,accuracy")
    assert len(rows) == 1 + 2 * 3  # train + eval rows at steps 10, 20, 30
    first, last = float(rows[1].split(",")[2]), float(rows[-2].split(",")[2])
    assert last < first  # it learns
    # time-to-quality: the first eval from which the loss stays within 2 % of its final value
    curve = list(csv.DictReader(rows))
    evals = [(int(r["step"]), float(r["loss"])) for r in curve if r["split"] == "eval"]
    seconds = {int(r["step"]): float(r["seconds"]) for r in curve if r["split"] == "train"}
    final = evals[-1][1]
    settled = [
        s for s, _ in evals if all(abs(v - final) <= 0.02 * final for t, v in evals if t >= s)
    ]
    ttq = metrics["time_to_quality"]
    assert ttq["final_eval_loss"] == pytest.approx(final)
    assert ttq["step"] == settled[0]
    assert ttq["train_s"] == pytest.approx(seconds[settled[0]])
    assert (full_dir / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((full_dir / "config.json").read_text())
    assert config["variant"] == "basic_rnn" and config["hparams"]["rnn_layer_sizes"] == [48, 48]
    assert not (tmp_path / "mlruns").exists()


def _train_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = train.main([*args, "--quiet"])
    err = capsys.readouterr().err
    return code, err


def _train_run(
    capsys: pytest.CaptureFixture[str], variant: str, examples: Path, output: Path, *more: str
) -> tuple[int, str]:
    """Train ``variant`` on ``examples`` into ``output``, with ``more`` arguments."""
    argv = ["--variant", variant, "--examples", str(examples), "--output", str(output)]
    return _train_main([*argv, *more], capsys)


def _assert_one_line_refusal(code: int, err: str, match: str) -> None:
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("train: "), err
    assert match in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    return tmp_path


def test_bad_input_one_line_exit_2_nothing_written(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = write_example_set(in_tmp / "ex")
    base = ["--examples", str(ex), "--output", str(in_tmp / "out"), "--num-steps", "2"]
    cases = [
        (["--variant", "basic_rnnn", *base], "unknown variant 'basic_rnnn'; valid: "),
        (
            ["--variant", "basic_rnn", *base, "--hparams", "batchsize=3"],
            "unknown hparam(s) batchsize; valid: attn_length, batch_size",
        ),
        (["--variant", "mono_rnn", *base], "stores events in melody:48-84; variant mono_rnn needs"),
        (["--variant", "polyphony", *base], "is a melody set; variant polyphony needs a polyphony"),
        (
            ["--variant", "basic_rnn", *base, "--init-from", str(in_tmp / "nope.pt")],
            "checkpoint not found",
        ),
        (
            ["--variant", "basic_rnn", *base, "--init-from", "models:/basic_rnn@champion"],
            "--init-from models:/basic_rnn@champion",
        ),
    ]
    noch = write_example_set(in_tmp / "noch", family="improv")  # lead sheets without chords
    cases.append(
        (
            ["--variant", "basic_improv", "--examples", str(noch), "--output", str(in_tmp / "out")],
            "does not fit variant basic_improv: triad+onehot needs stored chord",
        )
    )
    empty = write_example_set(in_tmp / "empty", num_train=0)
    cases.append(
        (
            ["--variant", "basic_rnn", "--examples", str(empty), "--output", str(in_tmp / "out")],
            "is empty",
        )
    )
    cases.append(
        (
            [
                "--variant",
                "basic_rnn",
                "--examples",
                str(in_tmp / "missing"),
                "--output",
                str(in_tmp / "out"),
            ],
            "example set not found",
        )
    )
    for args, match in cases:
        code, err = _train_main(args, capsys)
        _assert_one_line_refusal(code, err, match)
        assert not (in_tmp / "out").exists(), args
        assert not list((in_tmp / "mlruns").glob("*/*")), args  # no experiment or run written
    code, err = _train_main(["--variant", "nope", *base], capsys)
    assert "attention_rnn" in err and "performance_with_dynamics" in err


def test_refuses_foreign_checkpoints_and_incompatible_init(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = write_example_set(in_tmp / "ex")
    ex2 = write_example_set(in_tmp / "ex2", seed=1)
    tiny = ["--hparams", TINY_HPARAMS, "--num-steps", "2", "--eval-every", "2", "--no-mlflow"]

    train = functools.partial(_train_run, capsys)

    code, err = train("lookback_rnn", ex, in_tmp / "lookback", *tiny)
    assert code == 0, err
    before = sorted(p.name for p in (in_tmp / "lookback" / "checkpoints").iterdir())

    # an output directory holding another variant's checkpoints
    code, err = train("basic_rnn", ex, in_tmp / "lookback", *tiny)
    _assert_one_line_refusal(code, err, "holds a checkpoint of variant lookback_rnn")
    assert sorted(p.name for p in (in_tmp / "lookback" / "checkpoints").iterdir()) == before

    # same variant, other hparams
    code, err = train("lookback_rnn", ex, in_tmp / "lookback", *tiny[:1], "batch_size=5", *tiny[2:])
    _assert_one_line_refusal(code, err, "holds a run with other settings")

    # init from another encoding with the same event space: refused
    code, err = train(
        "basic_rnn", ex2, in_tmp / "b", "--init-from", str(in_tmp / "lookback"), *tiny
    )
    _assert_one_line_refusal(code, err, "a lookback_rnn checkpoint (encoding")
    assert not (in_tmp / "b").exists()

    # same variant, other layer sizes: shape mismatch refused
    code, err = train(
        "lookback_rnn",
        ex2,
        in_tmp / "c",
        "--init-from",
        str(in_tmp / "lookback"),
        "--hparams",
        "batch_size=4,rnn_layer_sizes=[10,12]",
        "--num-steps",
        "2",
        "--no-mlflow",
    )
    _assert_one_line_refusal(code, err, "has shape")
    assert not (in_tmp / "c").exists()


def test_unreadable_checkpoint_never_advised_to_load_unsafely(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch's refusal advises ``weights_only=False`` (or allow-listing classes): both execute
    what the file holds. The one-line message says what is wrong with the file instead."""
    from modeling import generate

    good = tmp_path / "good.pt"
    ckpt.atomic_save({"format": ckpt.FORMAT_VERSION, "model": {"w": torch.ones(256)}}, good)
    files = {
        "random.pt": np.random.default_rng(0).bytes(4096),
        "empty.pt": b"",
        "truncated.pt": good.read_bytes()[: good.stat().st_size // 2],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"args": argparse.Namespace(a=1)}, tmp_path / "object.pt")  # a pickled class
    for name in (*files, "object.pt"):
        path = tmp_path / name
        with pytest.raises(ckpt.CheckpointError) as caught:
            ckpt.load(path)
        message = str(caught.value)
        assert message.startswith(f"cannot read checkpoint {path}: ") and "\n" not in message
        for advice in ("weights_only", "arbitrary code", "safe_globals", "trusted source"):
            assert advice not in message, (name, message)

    capsys.readouterr()
    code = generate.main(
        ["--checkpoint", str(tmp_path / "random.pt"), "--output_dir", str(tmp_path / "gen")]
    )
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"generate: cannot read checkpoint {tmp_path / 'random.pt'}: ")
    assert "weights_only" not in err and "Traceback" not in err


def test_fine_tune_starts_from_given_weights(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = write_example_set(in_tmp / "ex")
    edm = write_example_set(in_tmp / "edm", seed=3)
    tiny = ["--num-steps", "3", "--eval-every", "3", "--no-mlflow"]
    attention = ["--hparams", TINY_HPARAMS + ",attn_length=4"]
    code, err = _train_run(capsys, "attention_rnn", ex, in_tmp / "att", *attention, *tiny)
    assert code == 0, err
    # edm_rnn shares attention_rnn's encoding: accepted; a near-zero learning rate keeps weights
    init = ["--init-from", str(in_tmp / "att" / "checkpoints" / "best.pt")]
    frozen = ["--hparams", TINY_HPARAMS + ",attn_length=4,learning_rate=1e-12"]
    code, err = _train_run(capsys, "edm_rnn", edm, in_tmp / "edm_run", *init, *frozen, *tiny)
    assert code == 0, err
    src = ckpt.load(in_tmp / "att" / "checkpoints" / "best.pt")["model"]
    dst = ckpt.load(in_tmp / "edm_run" / "checkpoints" / "ckpt-00000003.pt")["model"]
    for k, v in src.items():
        torch.testing.assert_close(dst[k], v, atol=1e-8, rtol=0)
    config = json.loads((in_tmp / "edm_run" / "config.json").read_text())
    assert config["init_from"].endswith("best.pt") and config["variant"] == "edm_rnn"


def test_conditioned_performance_starts_as_its_unconditioned_source(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Warm start with added controls: the widened model computes the source's logits whatever
    the controls; the CLI accepts it and refuses a source with other events."""
    hp = HParams(rnn_layer_sizes=(8, 8))
    src = EventRNN(get_variant("performance_with_dynamics"), hp)
    dst = EventRNN(get_variant("multiconditioned_performance_with_dynamics"), hp)
    controls = check_init_compatible(src.describe(), dst, "src")
    assert controls == dst.encoding.control_size == dst.input_size - src.input_size > 0
    ckpt.load_state(dst, ckpt.with_control_inputs(src.state_dict(), controls), "src")
    events = torch.randint(0, src.num_classes, (3, 20))
    x = src.encoding.inputs(events, {})  # the event one-hot and the sounding notes
    noise = torch.rand(3, 20, controls)  # any control values
    with torch.no_grad():
        torch.testing.assert_close(dst(torch.cat([noise, x], -1)), src(x), rtol=0, atol=1e-6)
    with pytest.raises(UsageError, match="event space"):  # other events: refused
        check_init_compatible(EventRNN(get_variant("performance"), hp).describe(), dst, "src")
    # end to end: a conditioned run from a trained unconditioned checkpoint
    enc = src.encoding
    ex = write_example_set(
        in_tmp / "ex",
        family="performance",
        event_space=enc.event_space,
        num_classes=src.num_classes,
    )
    tiny = ["--hparams", "batch_size=4,rnn_layer_sizes=[8,8]", "--num-steps", "2", "--no-mlflow"]
    code, err = _train_run(capsys, "performance_with_dynamics", ex, in_tmp / "base", *tiny)
    assert code == 0, err
    init = ["--init-from", str(in_tmp / "base")]
    variant = "density_conditioned_performance_with_dynamics"
    code, err = _train_run(capsys, variant, ex, in_tmp / "dens", *init, *tiny)
    assert code == 0, err
    assert json.loads((in_tmp / "dens" / "config.json").read_text())["init_from"].endswith("base")


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("polyphony", "STEP_END step"),
        ("performance_with_dynamics", "second"),
        ("chord_pitches_improv", "16th-note step"),
        ("attention_rnn", "16th-note step"),
    ],
)
def test_trains_every_family(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], name: str, unit: str
) -> None:
    """The one loop runs each family's real encoding end to end (tiny sets)."""
    cfg = get_variant(name)
    n = {"polyphony": 6, "performance": cfg.encoding.num_classes}.get(cfg.family, 38)
    ex = write_example_set(
        in_tmp / "ex",
        family=cfg.family,
        event_space=cfg.encoding.event_space,
        num_classes=n,
        chords=cfg.family == "improv",
    )
    tiny = [
        "--hparams",
        "batch_size=4,rnn_layer_sizes=[8,8]",
        "--num-steps",
        "3",
        "--eval-every",
        "3",
    ]
    code, err = _train_run(capsys, name, ex, in_tmp / "run", *tiny, "--no-mlflow")
    assert code == 0, err
    metrics = json.loads((in_tmp / "run" / "metrics.json").read_text())
    assert np.isfinite(metrics["eval"]["loss"]) and metrics["eval"]["loss_per_step"] is not None
    assert json.loads((in_tmp / "run" / "config.json").read_text())["step_unit"] == unit


def test_params_file_defaults_and_dvc_outputs(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--params supplies seed, the train section and the variant's entry; flags win; --metrics
    and --plots copy metrics.json / loss_curve.csv where DVC expects them."""
    ex = write_example_set(in_tmp / "ex")
    (in_tmp / "params.yaml").write_text(
        "seed: 5\n"
        "train: {eval_every: 2, keep_last: 1, num_steps: 50}\n"
        "variants:\n"
        "  basic_rnn: {example_set: tiny, num_steps: 4,"
        " hparams: {batch_size: 4, rnn_layer_sizes: [10, 10]}}\n"
        "finetunes:\n"
        "  edm_rnn: {example_set: edm, init_from: attention_rnn, colour: blue}\n"
    )
    code, err = _train_main(
        [
            "--variant",
            "basic_rnn",
            "--params",
            "params.yaml",
            "--examples",
            str(ex),
            "--output",
            "run",
            "--hparams",
            "rnn_layer_sizes=[6,6]",
            "--no-mlflow",
            "--metrics",
            "m/basic.json",
            "--plots",
            "p/basic.csv",
        ],
        capsys,
    )
    assert code == 0, err
    config = json.loads((in_tmp / "run" / "config.json").read_text())
    assert config["seed"] == 5
    assert config["hparams"]["batch_size"] == 4 and config["hparams"]["rnn_layer_sizes"] == [6, 6]
    steps = [s for s, _ in ckpt.CheckpointDir(in_tmp / "run" / "checkpoints").steps()]
    assert steps == [4]  # num_steps 4 from the entry, keep_last 1 from the train section
    assert (in_tmp / "m" / "basic.json").read_text() == (
        in_tmp / "run" / "metrics.json"
    ).read_text()
    assert (in_tmp / "p" / "basic.csv").read_text().count("\n") == 1 + 2 * 2  # evals at 2 and 4

    code, err = _train_main(
        [
            "--variant",
            "edm_rnn",
            "--params",
            "params.yaml",
            "--examples",
            str(ex),
            "--output",
            "edm",
        ],
        capsys,
    )
    _assert_one_line_refusal(code, err, "finetunes.edm_rnn: unknown key(s) colour; valid:")
    assert not (in_tmp / "edm").exists()


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected",
    [(False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")],
)
def test_auto_precision_follows_the_cpu(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, expected: str
) -> None:
    """``auto`` takes bf16 only where the CPU computes it natively; explicit values are kept."""
    from modeling.training.metrics import resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == expected
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
