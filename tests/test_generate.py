"""Generation end to end: tiny models trained here, every family, the CLI and its error paths.

The models are trained once per session with ``modeling.train`` on tiny sets built in code
(``tests/_examples.py``, ``tests/_generate_sets.py``); attention_rnn is also registered in a
throw-away MLflow store so ``--model models:/...`` is exercised for real.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling import generate as G
from modeling import motif as cli
from modeling.families import melody as mfam
from modeling.families.melody.extract import melody_events_to_indices
from modeling.families.polyphony.extract import END, START
from modeling.families.polyphony.primers import prepare_primer, primer_from_melody
from modeling.scales import resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _examples import TWINKLE
from _models import tracking_store, train_tiny, write_family_sets
from _python import REPO, run_python

TRAIN = ("attention_rnn", "basic_rnn", "lookback_rnn", "attention_improv", "chord_pitches_improv",
         "polyphony", "multiconditioned_performance_with_dynamics")  # fmt: skip
REGISTERED = "attention_rnn"


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Run dirs of tiny trained models (+ ``"_uri"``: the MLflow store holding attention_rnn)."""

    root = tmp_path_factory.mktemp("generate_models")
    write_family_sets(root, np.random.default_rng(0))
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    with tracking_store(uri):
        runs = train_tiny(TRAIN, root, root / "runs", register={REGISTERED})
    return {"_uri": uri, **runs}


def load(trained: dict, variant: str):
    model, _ = G.load_model(None, str(trained[variant]), None)
    return model


def teacher_forced_logp(
    model, plan: G.Plan, events: np.ndarray, req: G.Request | None = None
) -> torch.Tensor:
    """log-probabilities (T - 1, C) of a whole sequence by the training path: ``enc.inputs`` on
    the full sequence, the family's own conditioning (chord columns; performance controls from
    ``control_from_request`` over the events) and one ``forward`` pass."""
    e = torch.as_tensor(events, dtype=torch.long)[None]
    enc = model.encoding
    if hasattr(enc, "control_from_request"):
        req = req or G.Request()
        cond = enc.control_from_request(
            e[:, :-1],
            notes_per_second=req.notes_per_second,
            pitch_class_histogram=req.pitch_class_histogram,
            total_steps=plan.target_units,
        )
    else:
        cond = {k: v[:, : e.shape[1]] for k, v in plan.cond.items()}
    with torch.no_grad():
        logits = model(enc.inputs(e[:, :-1], cond).float())[0].double()
    if plan.class_mask is not None:
        logits = logits.masked_fill(~plan.class_mask, float("-inf"))
    return torch.log_softmax(logits, dim=-1)


# ============================================================================ the engine


CASES = {
    "basic_rnn": {"num_steps": 40, "primer_melody": [62, -2, 66, -2, 69]},
    "lookback_rnn": {"num_steps": 48},
    "attention_rnn": {"num_steps": 56, "primer_melody": [62, -2, 66, -2, 69, -2, -1]},
    "attention_improv": {"backing_chords": "C G Am F", "steps_per_chord": 8},
    "chord_pitches_improv": {"backing_chords": "C7#9 Bbmaj7/D N.C. Am", "steps_per_chord": 8},
    "polyphony": {
        "num_steps": 24,
        "primer_melody": [60, -2, 64, -2],
        "condition_on_primer": True,
        "inject_primer_during_generation": True,
    },
    "multiconditioned_performance_with_dynamics": {
        "num_seconds": 3,
        "notes_per_second": [2.0, 8.0],
        "pitch_class_histogram": [[1] * 12, [2, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1]],
    },
}


@pytest.mark.parametrize("variant", list(CASES))
def test_stepping_matches_training_forward(trained: dict, variant: str) -> None:
    """Every sampled step's distribution equals the one the training forward pass gives for the
    finished sequence: incremental features, carried LSTM/attention state, priming, chord and
    control alignment and masks all agree with the training contract."""
    assert_stepping_matches_forward(load(trained, variant), CASES[variant])


@pytest.mark.parametrize("variant", ["multiconditioned_performance_with_dynamics", "polyphony"])
def test_stepping_past_the_extra_input_window(trained: dict, variant: str) -> None:
    """Past its window the engine feeds a performance (held notes) or polyphony (step context)
    only the newest events: the extra columns, controls and logits still equal the training
    path's over the whole sequence."""
    model = load(trained, variant)
    model.encoding = dataclasses.replace(model.encoding, window=6)
    assert G._feature_window(model.encoding, model.family) == 6
    assert_stepping_matches_forward(model, CASES[variant])


def assert_stepping_matches_forward(model, case: dict) -> None:
    req = G.Request(num_outputs=3, seed=11, temperature=1.0, **case)
    plan = G.build_plan(model, req)
    trace: list[dict] = []
    samples = G.Engine(model, plan).run(3, seed=11, trace=trace)
    p = len(plan.primer)
    logp = torch.stack([t["logp"] for t in trace])  # (steps, rows, C)
    active = torch.stack([t["active"] for t in trace])
    sampled = active & ~torch.stack([t["forced"] for t in trace])
    choice = torch.stack([t["choice"] for t in trace])
    checked = 0
    for r, s in enumerate(samples):
        assert s.reached_length
        steps = torch.nonzero(active[:, r]).squeeze(1)
        ref = teacher_forced_logp(model, plan, s.events, req)[p - 1 + steps]
        torch.testing.assert_close(logp[steps, r], ref, atol=2e-4, rtol=1e-4)
        for k in torch.nonzero(sampled[:, r]).squeeze(1).tolist():
            history = torch.as_tensor(s.events[None, : p + k])
            assert (
                model.encoding.decode_label(choice[k, r : r + 1], history).item() == s.events[p + k]
            )
            checked += 1
    assert checked > 20


def test_forced_events_do_not_count(trained: dict) -> None:
    """Injected primer notes are not sampled: they add nothing to the log-likelihood."""
    model = load(trained, "polyphony")
    req = G.Request(num_outputs=2, seed=3, num_steps=48, primer_melody=TWINKLE[:16])
    plan = G.build_plan(model, req)
    trace: list[dict] = []
    samples = G.Engine(model, plan).run(2, seed=3, trace=trace)
    for r, s in enumerate(samples):
        total = sum(
            float(t["logp"][r, t["choice"][r]])
            for t in trace
            if bool(t["active"][r]) and not bool(t["forced"][r])
        )
        assert s.log_likelihood == pytest.approx(total)
        prepared = prepare_primer(primer_from_melody(TWINKLE[:16]))
        assert s.num_forced == sum(len(x) for x in prepared.inject_steps) == 16


# ============================================================================ primers


def test_melody_primer_kept_through_key_normalisation(trained: dict) -> None:
    """A D-major primer is moved to C for the key-normalised model and comes back exactly."""
    model = load(trained, "attention_rnn")
    primer = [62, -2, 66, -2, 69, -2, 74, -2, 73, -2, -1]
    plan, samples, notes = G.generate(
        model, G.Request(num_outputs=2, seed=5, num_steps=64, primer_melody=primer)
    )
    assert plan.info["key_transposition"] != 0
    want = mfam.to_note_sequence(melody_events_to_indices(primer), qpm=120.0)
    for s, ns in zip(samples, notes, strict=True):
        assert len(s.events) == 64
        got = [(n.pitch, n.start_time, n.end_time) for n in ns.notes][: len(want.notes)]
        assert got == [(n.pitch, n.start_time, n.end_time) for n in want.notes]


def polyphony_generate(trained: dict, req: G.Request, *, condition: bool, inject: bool) -> tuple:
    """The tiny polyphony model's ``generate`` of ``req`` under one of Magenta's two primer modes
    (``condition_on_primer``, ``inject_primer_during_generation``)."""
    modes = {"condition_on_primer": condition, "inject_primer_during_generation": inject}
    return G.generate(load(trained, "polyphony"), dataclasses.replace(req, **modes))


def test_polyphony_conditioned_primer_kept(trained: dict) -> None:
    req = G.Request(num_outputs=2, seed=2, num_steps=32, primer_pitches=[67, 64, 60])
    _, _, notes = polyphony_generate(trained, req, condition=True, inject=False)
    for ns in notes:
        first = sorted(n.pitch for n in ns.notes if n.start_time == 0.0)
        assert first == [60, 64, 67]
        assert ns.total_time == pytest.approx(32 * 0.125)


def test_performance_primer_kept(trained: dict) -> None:
    model = load(trained, "multiconditioned_performance_with_dynamics")
    plan, samples, notes = G.generate(
        model, G.Request(num_outputs=2, seed=2, num_seconds=4, primer_pitches=[60, 64])
    )
    for s, ns in zip(samples, notes, strict=True):
        np.testing.assert_array_equal(s.events[: len(plan.primer)], plan.primer)
        first = sorted(n.pitch for n in ns.notes if n.start_time == 0.0)
        assert first == [60, 64]
        assert ns.total_time == pytest.approx(4.0)


def test_polyphony_injected_melody_appears(trained: dict) -> None:
    """Seed 001's Twinkle harmonisation: the primer plays first, then again under new notes."""
    req = G.Request(num_outputs=3, seed=1, num_steps=64, primer_melody=TWINKLE)
    _, samples, notes = polyphony_generate(trained, req, condition=False, inject=True)
    sps = 0.125
    melody = [(v, i * sps) for i, v in enumerate(TWINKLE) if v >= 0]
    for s, ns in zip(samples, notes, strict=True):
        assert s.reached_length
        onsets = {(n.pitch, round(n.start_time, 6)) for n in ns.notes}
        for pitch, t in melody:
            assert (pitch, round(t, 6)) in onsets  # the primer itself
            assert (pitch, round(t + 32 * sps, 6)) in onsets  # injected while generating
        assert ns.total_time == pytest.approx(64 * sps)
        assert len(ns.notes) > 2 * len(melody)  # the model added harmony


# ============================================================================ improv


def test_improv_follows_chord_grid(trained: dict) -> None:
    from note_seq.protobuf import music_pb2

    chord_type = music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL
    model = load(trained, "chord_pitches_improv")
    chords = "C7#9 Bbmaj7/D N.C. Am Dm7b5 G7"
    _, samples, notes = G.generate(
        model,
        G.Request(
            num_outputs=2, seed=4, backing_chords=chords, steps_per_chord=8, render_chords=True
        ),
    )
    for s, ns in zip(samples, notes, strict=True):
        assert len(s.events) == 6 * 8
        assert ns.total_time == pytest.approx(6 * 8 * 0.125)
        annotations = [
            (round(t.time, 6), t.text)
            for t in ns.text_annotations
            if t.annotation_type == chord_type
        ]
        assert [round(i * 1.0, 6) for i in range(6)] == [t for t, _ in annotations]
        assert annotations[2][1] == "N.C."
        assert any(n.instrument == 1 for n in ns.notes)  # chords rendered as instrument 1
    # --num_bars repeats the progression to the requested length.
    _, samples, _ = G.generate(
        model,
        G.Request(num_outputs=1, seed=4, backing_chords="C G", steps_per_chord=16, num_bars=5),
    )
    assert len(samples[0].events) == 80


# ============================================================================ scales


def _pcs(notes, start: float) -> set[int]:
    return {n.pitch % 12 for n in notes if n.start_time >= start - 1e-9 and n.instrument == 0}


@pytest.mark.parametrize(
    "variant,kwargs",
    [
        ("attention_rnn", {"primer_melody": [62, -2, 66, -2, 69, -2, 66], "num_steps": 96}),
        ("lookback_rnn", {"primer_melody": [54, -2, 66, -2, 54, -2, 66, -2] * 4, "num_steps": 96}),
        ("attention_improv", {"backing_chords": "C F G C", "steps_per_chord": 16}),
        ("polyphony", {"num_steps": 48}),
        ("multiconditioned_performance_with_dynamics", {"num_seconds": 6}),
    ],
)
def test_scale_mask_holds(trained: dict, variant: str, kwargs: dict) -> None:
    """No generated note leaves the scale, even when the primer does (lookback repeats of the
    out-of-scale primer are masked after decoding) and the model is key-normalised."""
    model = load(trained, variant)
    scale = (
        resolve("Eb minor_pentatonic", None) if variant != "lookback_rnn" else resolve("C", None)
    )
    allowed = set(scale.pitch_classes)
    plan, _, notes = G.generate(
        model, G.Request(num_outputs=4, seed=9, temperature=1.5, scale=scale, **kwargs)
    )
    generated = set()
    for ns in notes:
        generated |= _pcs(ns.notes, plan.primer_seconds)
    assert generated, "no notes generated"
    assert generated <= allowed
    # Without the mask the same seed does leave the scale (the test can fail).
    _, _, free = G.generate(model, G.Request(num_outputs=4, seed=9, temperature=1.5, **kwargs))
    assert set().union(*(_pcs(ns.notes, plan.primer_seconds) for ns in free)) - allowed


# ============================================================================ beam search


def test_beam_search_finds_brute_force_best(trained: dict) -> None:
    """Two steps over the 5 classes a one-pitch-class scale leaves: every one of the 25
    sequences is scored by the training forward pass; beam search (25 x 16 sampled branches,
    one iteration) must return the best of them with its exact log-likelihood."""
    model = load(trained, "basic_rnn")
    scale = resolve(None, "0")
    req = G.Request(
        num_outputs=1,
        seed=0,
        num_steps=3,
        primer_melody=[60],
        scale=scale,
        beam_size=25,
        branch_factor=16,
        steps_per_iteration=2,
    )
    plan = G.build_plan(model, req)
    allowed = torch.nonzero(plan.class_mask).squeeze(1).tolist()
    assert len(allowed) == 5
    best, best_ll = None, -float("inf")
    for a in allowed:
        for b in allowed:
            events = np.array([*plan.primer, a, b])
            lp = teacher_forced_logp(model, plan, events)
            ll = float(lp[0, a] + lp[1, b])
            if ll > best_ll:
                best, best_ll = events, ll
    [sample] = G.Engine(model, plan).run(
        1, seed=0, beam_size=25, branch_factor=16, steps_per_iteration=2
    )
    np.testing.assert_array_equal(sample.events, best)
    assert sample.log_likelihood == pytest.approx(best_ll, abs=1e-4)


def test_beam_search_scores_are_sequence_log_likelihoods(trained: dict) -> None:
    """Beam 4 x branch 2, pruned every step, for 3 outputs in one batch: each returned score is
    the summed log-likelihood of the returned sequence (training forward pass), and the beams
    score higher than plain samples of the same seed."""
    model = load(trained, "basic_rnn")
    req = G.Request(num_outputs=3, seed=2, num_steps=33, beam_size=4, branch_factor=2)
    plan, samples, _ = G.generate(model, req)
    for s in samples:
        assert len(s.events) == 33 and s.num_sampled == 32
        lp = teacher_forced_logp(model, plan, s.events)
        ll = float(lp[torch.arange(32), torch.as_tensor(s.events[1:])].sum())
        assert s.log_likelihood == pytest.approx(ll, abs=1e-3)
    plain = G.generate(model, G.Request(num_outputs=8, seed=2, num_steps=33))[1]
    assert min(s.log_likelihood for s in samples) > np.mean([s.log_likelihood for s in plain])


# ============================================================================ CLI


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_cli_registry_model_outputs_and_reproducible_bytes(
    trained: dict, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(trained["_uri"]))
    args = [
        "--model",
        f"models:/{REGISTERED}@champion",
        "--num_outputs",
        "2",
        "--num_steps",
        "32",
        "--seed",
        "7",
        "--primer_melody",
        "[60, -2, 62, -2]",
        "--quiet",
    ]
    assert G.main([*args, "--output_dir", str(tmp_path / "a")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["seed"] == 7 and len(summary["outputs"]) == 2
    names = _files(tmp_path / "a")
    assert names == sorted(
        f"attention_rnn_7_00{i}.{e}" for i in (1, 2) for e in ("mid", "png", "wav", "json")
    )
    rec = json.loads((tmp_path / "a" / "attention_rnn_7_001.json").read_text())
    assert rec["model"]["name"] == "attention_rnn" and rec["model"]["version"] == 1
    assert rec["seed"] == 7 and rec["flags"]["primer_melody"] == "[60, -2, 62, -2]"
    assert rec["log_likelihood"] < 0 and rec["files"]["audio_renderer"] in ("fluidsynth", "synth")
    assert (tmp_path / "a" / "attention_rnn_7_001.wav").stat().st_size > 1000
    # Same seed -> same bytes; another seed -> other music.
    assert G.main([*args, "--output_dir", str(tmp_path / "b")]) == 0
    for ext in ("mid", "wav"):
        assert (tmp_path / "a" / f"attention_rnn_7_001.{ext}").read_bytes() == (
            tmp_path / "b" / f"attention_rnn_7_001.{ext}"
        ).read_bytes()
    other = [a if a != "7" else "8" for a in args]
    assert G.main([*other, "--output_dir", str(tmp_path / "c"), "--audio", "none"]) == 0
    assert (tmp_path / "a" / "attention_rnn_7_001.mid").read_bytes() != (
        tmp_path / "c" / "attention_rnn_8_001.mid"
    ).read_bytes()
    # --config alone means models:/<config>@champion.
    assert (
        G.main(
            [
                "--config",
                REGISTERED,
                "--num_outputs",
                "1",
                "--seed",
                "7",
                "--num_steps",
                "32",
                "--primer_melody",
                "[60, -2, 62, -2]",
                "--audio",
                "none",
                "--quiet",
                "--output_dir",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    assert (tmp_path / "d" / "attention_rnn_7_001.mid").read_bytes() == (
        tmp_path / "a" / "attention_rnn_7_001.mid"
    ).read_bytes()


def test_sample_does_not_depend_on_batch_size(trained: dict) -> None:
    model = load(trained, "attention_rnn")
    one = G.generate(model, G.Request(num_outputs=1, seed=21, num_steps=48))[1][0]
    three = G.generate(model, G.Request(num_outputs=3, seed=21, num_steps=48))[1][0]
    np.testing.assert_array_equal(one.events, three.events)


BAD = [
    (["--backing_chords", "C G Hmaj7 F"], "chord_pitches_improv", ["'Hmaj7'", "position 3"]),
    (["--primer_melody", "[60, -2, 30]"], "basic_rnn", ["MIDI 30", "event 3", "C3 to B5"]),
    (
        ["--pitch_class_histogram", "[1, 2, 3]"],
        "multiconditioned_performance_with_dynamics",
        ["3 values", "12"],
    ),
    (["--notes_per_second", "[2, -1]"], "multiconditioned_performance_with_dynamics", ["negative"]),
    (["--num_steps", "100000"], "attention_rnn", ["cap", "4096"]),
    (
        ["--num_steps", "4", "--primer_melody", "[60, -2, 62, -2, 64]"],
        "basic_rnn",
        ["primer is 5 steps"],
    ),
    (["--notes_per_second", "3"], "basic_rnn", ["performance"]),
    (["--hparams", "rnn_layer_sizes=[64,64]"], "basic_rnn", ["rnn_layer_sizes", "differs"]),
    (["--key", "H minor"], "basic_rnn", ["--key"]),
    (["--primer_pitches", "[67, 64, 60]"], "basic_rnn", ["--primer_pitches"]),
]


SHORT = ("--num_steps", "24", "--audio", "none")
"""A short, silent sample: the CLI tests check files and messages, not music."""


def cli_argv(run: Path | str, output: Path, *flags: str) -> list[str]:
    """``generate`` arguments: the model of the run dir ``run`` into ``output``, quietly, + ``flags``."""
    return ["--checkpoint", str(run), "--output_dir", str(output), "--quiet", *flags]


@pytest.mark.parametrize(
    "flags,variant,words", BAD, ids=[b[0][0] + f"-{i}" for i, b in enumerate(BAD)]
)
def test_cli_bad_input_one_line_exit_2(
    trained: dict, tmp_path: Path, capsys, flags: list, variant: str, words: list
) -> None:
    out = tmp_path / "out"
    code = G.main(cli_argv(trained[variant], out, "--num_outputs", "2", "--seed", "1", *flags))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("generate: ")
    for w in words:
        assert w in err
    assert _files(out) == []


def test_cli_unknown_registry_model_lists_registered(
    trained: dict, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(trained["_uri"]))
    code = G.main(
        [
            "--model",
            "models:/no_such_model@champion",
            "--output_dir",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "'no_such_model' is not in the registry" in err and REGISTERED in err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_to_overwrite(trained: dict, tmp_path: Path, capsys) -> None:
    args = cli_argv(trained["basic_rnn"], tmp_path, "--num_outputs", "1", "--seed", "3", *SHORT)
    assert G.main(args) == 0
    midi = tmp_path / "basic_rnn_3_001.mid"
    before = midi.read_bytes(), midi.stat().st_mtime_ns
    capsys.readouterr()
    assert G.main([*args, "--temperature", "2.0"]) == 2
    err = capsys.readouterr().err
    assert "basic_rnn_3_001.mid exists" in err and "--overwrite" in err
    assert (midi.read_bytes(), midi.stat().st_mtime_ns) == before
    assert G.main([*args, "--temperature", "2.0", "--overwrite"]) == 0
    assert midi.stat().st_mtime_ns != before[1]


def test_no_partial_files_when_rendering_fails(trained: dict, tmp_path: Path, monkeypatch) -> None:
    from modeling import render

    calls = {"n": 0}
    real = render.piano_roll_png

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(*a, **kw)

    monkeypatch.setattr(render, "piano_roll_png", flaky)
    with pytest.raises(OSError, match="disk full"):
        G.main(
            cli_argv(trained["basic_rnn"], tmp_path, "--num_outputs", "3", "--seed", "3", *SHORT)
        )
    assert _files(tmp_path) == []  # neither sample files nor the temporary directory


def test_module_entry_point_exit_code_and_single_line(trained: dict, tmp_path: Path) -> None:
    """``python -m modeling.generate`` in a fresh process: exit 2, one stderr line, no files."""
    proc = run_python(
        [
            "-m",
            "modeling.generate",
            "--checkpoint",
            str(trained["chord_pitches_improv"]),
            "--output_dir",
            str(tmp_path / "o"),
            "--backing_chords",
            "C G7 Xb9 F",
        ],
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "generate: --backing_chords: chord symbol 'Xb9' at position 3 of 4 is not a chord "
        "note-seq can read (Unable to parse chord symbol: Xb9)"
    ]
    assert not (tmp_path / "o").exists()


def test_motif_console_command(trained: dict, monkeypatch, capsys) -> None:
    assert cli.main(["generate", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--primer_melody", "--backing_chords", "--beam_size", "--key", "--model"):
        assert flag in text
    assert cli.main(["bogus"]) == 2
    assert "unknown command" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(trained["_uri"]))
    assert cli.main(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == [REGISTERED] and "champion" in rows[0]["aliases"]


def test_polyphony_never_samples_start_or_end(trained: dict) -> None:
    model = load(trained, "polyphony")
    _, samples, _ = G.generate(
        model, G.Request(num_outputs=4, seed=8, num_steps=32, temperature=3.0)
    )
    for s in samples:
        body = s.events[1:]
        assert not np.isin(body, [START, END]).any()
