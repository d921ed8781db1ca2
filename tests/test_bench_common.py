"""bench/: the shared helpers agree with the project, and every benchmark starts as a module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.common import example_row, split_of, write_example_set
from pipelines.examples import split_of as pipeline_split_of
from pipelines.schema import EXAMPLE_SCHEMA

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("seed", "ratio"), [(1234, 0.1), (0, 0.5), (7, 0.0), (7, 1.0)])
def test_split_of_is_the_pipelines_rule(seed: int, ratio: float) -> None:
    ids = [f"c/folder{i % 7}/tune{i}.abc#{i % 3}" for i in range(300)]
    ours = [split_of(i, seed, ratio) for i in ids]
    assert ours == [pipeline_split_of(i, seed, ratio) for i in ids]
    # Tunes of one file share a split, as in pipelines.examples' default split_by="file".
    assert split_of("c/a.abc#0", seed, ratio) == split_of("c/a.abc#5", seed, ratio)


def test_write_example_set_writes_the_schema_and_meta(tmp_path: Path) -> None:
    rows = {
        "train": [example_row("t-0", "c/a.mid#0", "train", [2, 3, 0, 1])],
        "eval": [example_row("e-0", "c/b.mid#0", "eval", [5])],
    }
    meta = {"name": "s", "family": "melody", "num_train": 1, "num_eval": 1}
    write_example_set(tmp_path / "set", rows, meta)
    table = pq.read_table(tmp_path / "set" / "train-00000-of-00001.parquet")
    assert table.schema.equals(EXAMPLE_SCHEMA, check_metadata=False)
    assert table.to_pylist()[0]["events"] == [2, 3, 0, 1]
    assert table.to_pylist()[0]["num_events"] == 4
    evals = pq.read_table(tmp_path / "set" / "eval-00000-of-00001.parquet").to_pylist()
    assert [r["source_id"] for r in evals] == ["c/b.mid#0"]
    assert json.loads((tmp_path / "set" / "meta.json").read_text()) == meta


@pytest.mark.parametrize("name", ["ingest", "examples", "train", "generate", "quality"])
def test_every_benchmark_starts_as_a_module(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m bench.{name}"), done.stdout[:200]
