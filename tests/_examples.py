"""Tiny example sets written in code (the format of ``pipelines/examples.py``), for training tests.

Events follow learnable patterns (a repeated random motif with a little noise per sequence), so a
few optimiser steps measurably lower the loss, which the tests use as a liveness check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.schema import EXAMPLE_SCHEMA

PYTHON = sys.executable  # the interpreter running the tests, wherever its venv is

TWINKLE: list[int] = [  # a primer melody in note-seq's events (-2: hold), two bars per line
    *(60, -2, 60, -2, 67, -2, 67, -2, 69, -2, 69, -2, 67, -2, -2, -2),
    *(65, -2, 65, -2, 64, -2, 64, -2, 62, -2, 62, -2, 60, -2, -2, -2),
]


def melody_events(rng: np.random.Generator, length: int, num_classes: int = 38) -> np.ndarray:
    """A 4-step motif over pitch classes 2.. repeated with no-event holds and rare noise."""
    motif = rng.integers(2, num_classes, 4)
    seq = np.zeros(length, dtype=np.int16)
    for i in range(length):
        seq[i] = motif[(i // 2) % 4] if i % 2 == 0 else 0
    noise = rng.random(length) < 0.05
    seq[noise] = rng.integers(0, num_classes, int(noise.sum()))
    return seq


def write_example_set(
    root: Path,
    *,
    name: str = "tiny",
    family: str = "melody",
    event_space: str = "melody:48-84",
    num_train: int = 24,
    num_eval: int = 6,
    min_len: int = 12,
    max_len: int = 40,
    num_classes: int = 38,
    chords: bool = False,
    seed: int = 0,
) -> Path:
    """Write ``train-00000-of-00001.parquet``, ``eval-...`` and ``meta.json`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", num_train), ("eval", num_eval)):
        rows = []
        for i in range(n):
            length = int(rng.integers(min_len, max_len + 1))
            events = melody_events(rng, length, num_classes)
            row = {
                "example_id": f"{split}-{i:04d}",
                "source_id": f"src/{split}{i}.mid#0",
                "split": split,
                "transposition": 0,
                "stretch": 1.0,
                "num_events": length,
                "events": events.tolist(),
                "chord_root": None,
                "chord_bass": None,
                "chord_quality": None,
                "chord_pitches": None,
            }
            if chords:
                root_pc = np.repeat(rng.integers(-1, 12, -(-length // 8)), 8)[:length]
                row["chord_root"] = root_pc.tolist()
                row["chord_bass"] = root_pc.tolist()
                row["chord_quality"] = np.where(root_pc < 0, -1, 0).tolist()
                mask = np.where(
                    root_pc < 0,
                    0,
                    (1 << root_pc) | (1 << ((root_pc + 4) % 12)) | (1 << ((root_pc + 7) % 12)),
                )
                row["chord_pitches"] = mask.tolist()
            rows.append(row)
        table = pa.Table.from_pylist(rows, schema=EXAMPLE_SCHEMA)
        pq.write_table(table, root / f"{split}-00000-of-00001.parquet")
    meta = {
        "name": name,
        "family": family,
        "event_space": event_space,
        "num_train": num_train,
        "num_eval": num_eval,
        "eval_ratio": num_eval / (num_train + num_eval),
        "seed": seed,
        "extract": {},
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


TINY_HPARAMS = "batch_size=4,rnn_layer_sizes=[12,12]"
