"""Tiny, musically shaped example sets for the generation tests (written in code, seconds to train).

The melody and lead-sheet sets come from ``tests/_examples.py``. Polyphony and performance sets are
built here from synthetic notes with the families' own encoders (``polyphony.events_from_notes``,
``performance.extract``), so a model trained for a few dozen steps learns the grammar (STEP_END
often, TIME_SHIFTs between notes) and reaches the requested musical length when it generates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from note_seq.protobuf import music_pb2

from pipelines.schema import EXAMPLE_SCHEMA

C_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


def write_events_set(
    root: Path,
    *,
    name: str,
    family: str,
    event_space: str,
    train: list[np.ndarray],
    eval_: list[np.ndarray],
) -> Path:
    """EXAMPLE_SCHEMA Parquet (train/eval) + meta.json holding the given event sequences."""
    root.mkdir(parents=True, exist_ok=True)
    for split, seqs in (("train", train), ("eval", eval_)):
        rows = [
            {
                "example_id": f"{split}-{i:04d}",
                "source_id": f"synthetic/{split}{i}#0",
                "split": split,
                "transposition": 0,
                "stretch": 1.0,
                "num_events": len(ev),
                "events": [int(e) for e in ev],
                "chord_root": None,
                "chord_bass": None,
                "chord_quality": None,
                "chord_pitches": None,
            }
            for i, ev in enumerate(seqs)
        ]
        pq.write_table(
            pa.Table.from_pylist(rows, schema=EXAMPLE_SCHEMA),
            root / f"{split}-00000-of-00001.parquet",
        )
    meta = {
        "name": name,
        "family": family,
        "event_space": event_space,
        "num_train": len(train),
        "num_eval": len(eval_),
        "eval_ratio": 0.2,
        "seed": 0,
        "extract": {},
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def polyphony_sequences(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Chorale-like C-major chords of 2-4 steps, 1-3 notes each, 24-40 steps per piece."""
    from modeling.families.polyphony.extract import events_from_notes

    out = []
    for _ in range(n):
        total = int(rng.integers(24, 41))
        starts, ends, pitches = [], [], []
        t = 0
        while t < total:
            dur = int(min(rng.integers(2, 5), total - t))
            chord = 60 + rng.choice(C_MAJOR, size=int(rng.integers(1, 4)), replace=False)
            for p in chord:
                starts.append(t)
                ends.append(t + dur)
                pitches.append(int(p))
            t += dur
        out.append(events_from_notes(np.array(starts), np.array(ends), np.array(pitches), total))
    return out


def performance_sequences(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Performances of C-major notes every 0.2-0.4 s with varied velocity (note-seq encoded)."""
    from modeling.families import performance as pf
    from modeling.families.performance.config import PerformanceExtractConfig

    cfg = PerformanceExtractConfig(num_velocity_bins=32, min_events=8, split_hop_seconds=0.0)
    out = []
    while len(out) < n:
        ns = music_pb2.NoteSequence()
        ns.tempos.add().qpm = 120
        t = 0.0
        for _ in range(int(rng.integers(8, 16))):
            dur = float(rng.uniform(0.15, 0.35))
            ns.notes.add(
                pitch=int(60 + rng.choice(C_MAJOR)),
                velocity=int(rng.integers(40, 110)),
                start_time=t,
                end_time=t + dur,
            )
            t += float(rng.uniform(0.2, 0.4))
        ns.total_time = max(n.end_time for n in ns.notes)
        out.extend(x.events for x in pf.extract(ns, cfg, augment=False) if hasattr(x, "events"))
    return out[:n]
