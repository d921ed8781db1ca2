"""Generation speed against Magenta's figures on this machine class.

    .venv/bin/python -m bench.generate [--out bench/out] [--train-steps 10] [--repeats 3]
        [--melody-model PATH|models:/..] [--performance-model PATH|models:/..]

Measures, with ``modeling.generate`` itself:

* ``melody_10x128``: 10 attention_rnn melodies x 128 steps (Magenta's hparams: [128, 128],
  attention over 40 steps, default primer) sampled as one batch: the engine alone; plus the MIDI
  files (what Magenta's 33 s covers, so the speed-up is taken there); plus piano rolls; plus
  audio; and the whole CLI in a fresh process (imports, load, generation, MIDI + PNG files).
  Magenta: 33 s for the 10 after a 20 s load.
* ``beam``: one 128-step melody by beam search (beam 4, branch 2), including loading the model.
  Magenta: 26.6 s including load.
* ``performance``: events per second of performance_with_dynamics ([512, 512, 512]) generating
  10 x 10 s, with 1 and 2 torch threads.

Models: unless given, attention_rnn is trained here for ``--train-steps`` steps on the OpenEWLD
melody set that ``bench/train.py`` builds (reused if present), and performance_with_dynamics for 2
steps on eight POP909 pieces (PIANO track) extracted with the performance family's rules; speed
depends on the architecture, not on how long the weights were trained. Runs are cached under
``--out/generate`` (training resumes / returns at once when already done).

The last line printed is one JSON object with every figure and the speed-ups over Magenta.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, default_data_root, example_row, write_example_set
from bench.train import build_openewld_set
from modeling.cli import ArgumentParser, command

MAGENTA = {
    "melody_10x128_seconds": 33.0,
    "melody_load_seconds": 20.0,
    "beam_4x2_with_load_seconds": 26.6,
}
MELODY_HPARAMS = "batch_size=128,rnn_layer_sizes=[128,128]"
PERFORMANCE_HPARAMS = "batch_size=16,rnn_layer_sizes=[512,512,512]"


def _train(variant: str, examples: Path, run: Path, hparams: str, steps: int) -> Path:
    """``modeling.train`` in a subprocess (resumes, so a finished run returns at once)."""
    cmd = [
        sys.executable,
        "-m",
        "modeling.train",
        "--variant",
        variant,
        "--examples",
        str(examples),
        "--output",
        str(run),
        "--hparams",
        hparams,
        "--num-steps",
        str(steps),
        "--eval-every",
        str(steps),
        "--no-mlflow",
        "--quiet",
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: training {variant} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
        )
    return run


def melody_model(out: Path, steps: int) -> str:
    examples = out / "openewld_melody"
    if not (examples / "meta.json").is_file():
        print("bench: building the OpenEWLD melody set", file=sys.stderr)
        build_openewld_set(examples)
    return str(
        _train("attention_rnn", examples, out / "generate" / "attention_rnn", MELODY_HPARAMS, steps)
    )


def performance_model(out: Path) -> str:
    """performance_with_dynamics trained 2 steps on 8 POP909 pieces (family extraction rules)."""
    examples = out / "generate" / "pop909_performance"
    if not (examples / "meta.json").is_file():
        import note_seq
        import numpy as np

        from modeling.families import performance as pf
        from modeling.families.base import Extracted
        from modeling.families.performance.config import PerformanceExtractConfig

        root = Path(default_data_root()) / "pop909" / "POP909"
        files = sorted(root.glob("*/*.mid"))[:8]
        if not files:
            raise SystemExit(f"bench: no POP909 files under {root}")
        cfg = PerformanceExtractConfig(num_velocity_bins=32, instrument_names=("PIANO",))
        seqs: list[np.ndarray] = []
        for f in files:
            ns = note_seq.midi_file_to_note_sequence(str(f))
            seqs += [
                x.events for x in pf.extract(ns, cfg, augment=False) if isinstance(x, Extracted)
            ]
        cut = max(1, len(seqs) // 10)
        splits = {"train": seqs[cut:], "eval": seqs[:cut]}
        rows = {
            split: [
                example_row(f"{split}-{i:04d}", f"synthetic/{split}{i}#0", split, list(events))
                for i, events in enumerate(items)
            ]
            for split, items in splits.items()
        }
        meta = {
            "name": "pop909_performance",
            "family": "performance",
            "event_space": "performance:v32",
            "num_train": len(splits["train"]),
            "num_eval": len(splits["eval"]),
            "eval_ratio": 0.2,
            "seed": 0,
            "extract": {},
        }
        write_example_set(examples, rows, meta)
    return str(
        _train(
            "performance_with_dynamics",
            examples,
            out / "generate" / "performance_with_dynamics",
            PERFORMANCE_HPARAMS,
            2,
        )
    )


def _load(uri: str):
    """(model, meta) of a checkpoint path or a registry URI."""
    from modeling import generate as G

    return G.load_model(None, uri, None) if Path(uri).exists() else G.load_model(uri, None, None)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


@command("bench")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--melody-model", default=None)
    parser.add_argument("--performance-model", default=None)
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")
    import torch

    from modeling import generate as G

    mel_uri = args.melody_model or melody_model(args.out, args.train_steps)
    perf_uri = args.performance_model or performance_model(args.out)
    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
    }

    # ---------------------------------------------------------------- 10 x 128 melodies
    t0 = time.perf_counter()
    model, meta = _load(mel_uri)
    load_s = time.perf_counter() - t0
    from modeling import render

    engine_s, midi_s, png_s, wav_s = [], [], [], []
    for i in range(args.repeats):
        req = G.Request(num_outputs=10, num_steps=128, seed=i)
        t0 = time.perf_counter()
        plan, _, notes = G.generate(model, req)
        engine_s.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            for k, ns in enumerate(notes):
                render.write_midi(ns, Path(tmp) / f"{k}.mid")
            midi_s.append(engine_s[-1] + time.perf_counter() - t1)
            stems = [G.output_stem(model.variant, i, k + 1) for k in range(10)]
            for folder, audio, seconds in (("all", "none", png_s), ("wav", "wav", wav_s)):
                t1 = time.perf_counter()
                G.write_outputs(
                    Path(tmp) / folder,
                    stems,
                    notes,
                    [{} for _ in stems],
                    primer_seconds=plan.primer_seconds,
                    audio=audio,
                    overwrite=False,
                )
                seconds.append(engine_s[-1] + time.perf_counter() - t1)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "modeling.generate",
            "--output_dir",
            tmp,
            "--num_outputs",
            "10",
            "--num_steps",
            "128",
            "--seed",
            "0",
            "--audio",
            "none",
            "--quiet",
        ]
        cmd += ["--checkpoint", mel_uri] if Path(mel_uri).exists() else ["--model", mel_uri]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        cli_s = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"bench: CLI failed: {proc.stderr.strip()}")
        cli = json.loads(proc.stdout.strip().splitlines()[-1])
    engine = _median(engine_s)
    result["melody_10x128"] = {
        "variant": model.variant,
        "hparams": meta["config"]["hparams"],
        "engine_seconds": engine,
        "engine_plus_midi_seconds": _median(midi_s),
        "engine_plus_midi_png_seconds": _median(png_s),
        "engine_plus_midi_png_wav_seconds": _median(wav_s),
        "load_seconds": round(load_s, 3),
        "cli_process_seconds": round(cli_s, 2),
        "cli_generation_seconds": cli["generation_seconds"],
        "steps_per_second_per_melody": round(127 / engine, 1),
        "speedup_vs_magenta": round(MAGENTA["melody_10x128_seconds"] / _median(midi_s), 1),
        "speedup_vs_magenta_engine_only": round(MAGENTA["melody_10x128_seconds"] / engine, 1),
        "speedup_vs_magenta_incl_process_start": round(
            (MAGENTA["melody_10x128_seconds"] + MAGENTA["melody_load_seconds"]) / cli_s, 1
        ),
    }

    # ---------------------------------------------------------------- beam search
    beam_s, search_s = [], []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        m2, _ = _load(mel_uri)
        t1 = time.perf_counter()
        _, beam_samples, _ = G.generate(
            m2, G.Request(num_outputs=1, num_steps=128, seed=i, beam_size=4, branch_factor=2)
        )
        beam_s.append(time.perf_counter() - t0)
        search_s.append(time.perf_counter() - t1)
    result["beam_4x2_1x128"] = {
        "seconds_with_load": _median(beam_s),
        "search_seconds": _median(search_s),
        "log_likelihood": round(beam_samples[0].log_likelihood, 3),
        "speedup_vs_magenta": round(MAGENTA["beam_4x2_with_load_seconds"] / _median(beam_s), 1),
    }

    # ---------------------------------------------------------------- performance events/s
    pmodel, pmeta = _load(perf_uri)
    perf: dict = {"variant": pmodel.variant, "hparams": pmeta["config"]["hparams"]}
    for threads in (1, 2):
        rates = []
        for i in range(max(1, args.repeats - 1)):
            req = G.Request(num_outputs=10, num_seconds=10, seed=i, threads=threads)
            t0 = time.perf_counter()
            _, psamples, _ = G.generate(pmodel, req)
            dt = time.perf_counter() - t0
            events = sum(s.num_sampled + s.num_forced for s in psamples)
            rates.append(events / dt)
        perf[f"events_per_second_threads_{threads}"] = round(statistics.median(rates))
        perf[f"events_per_output_threads_{threads}"] = round(events / 10)
    result["performance_10x10s"] = perf
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
