"""What every benchmark shares: timing a command as its own process, where the corpora are,
motif's train/eval split and the example-set files ``modeling.train`` reads.

Every benchmark runs as a module from the project root (``python -m bench.NAME``) and imports
these helpers from here, never from ``tests/``. Nothing here imports Beam or torch, so a
baseline process that uses them times only what it measures.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def default_data_root() -> str:
    """``$MOTIF_SHARED_DATA``, else ``../shared/data`` beside the project (as the tests)."""
    return os.environ.get("MOTIF_SHARED_DATA", str(REPO.parent / "shared" / "data"))


def split_of(notesequence_id: str, seed: int, eval_ratio: float) -> str:
    """motif's seeded per-source-file split (``pipelines.examples.split_of``, ``split_by`` file),
    restated without Beam so a baseline process does not pay for importing it."""
    unit = notesequence_id.split("#", 1)[0]
    digest = hashlib.sha256(f"{seed}\x00{unit}".encode()).digest()
    return "eval" if int.from_bytes(digest[:8], "big") / 2.0**64 < eval_ratio else "train"


def example_row(example_id: str, source_id: str, split: str, events: list[int]) -> dict[str, Any]:
    """One ``EXAMPLE_SCHEMA`` row of an event sequence without chords, untransposed."""
    return {
        "example_id": example_id,
        "source_id": source_id,
        "split": split,
        "transposition": 0,
        "stretch": 1.0,
        "num_events": len(events),
        "events": [int(e) for e in events],
        "chord_root": None,
        "chord_bass": None,
        "chord_quality": None,
        "chord_pitches": None,
    }


def write_example_set(
    out: Path, rows: dict[str, list[dict[str, Any]]], meta: dict[str, Any]
) -> None:
    """``{split}-00000-of-00001.parquet`` per split plus ``meta.json``: the example-set layout
    ``modeling.train`` reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.schema import EXAMPLE_SCHEMA

    out.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        table = pa.Table.from_pylist(items, schema=EXAMPLE_SCHEMA)
        pq.write_table(table, out / f"{split}-00000-of-00001.parquet")
    (out / "meta.json").write_text(json.dumps(meta, indent=2))


@dataclass
class Run:
    """One timed process: wall seconds, CPU seconds of it and its children, and what it made."""

    wall_s: float
    cpu_s: float
    result: dict[str, Any]


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run ``command`` from the project root; (wall s, CPU s incl. children, the process).

    Interpreter start and imports count, as in Magenta's anchor figures; a failure stops the
    benchmark with the command's last error lines.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[1:5])} failed: {done.stderr.strip()[-500:]}")
    return elapsed, cpu, done
