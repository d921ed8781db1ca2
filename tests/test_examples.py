"""The example-set pipeline end to end on a tiny ingested corpus.

Checks the promises of ``pipelines/examples.py``: the split is decided per source (file, or tune
when asked) before extraction, so no source lands on both sides; augmentation touches the
training split only; the same inputs and seed give byte-identical shards; a NoteSequence that
breaks extraction is counted and written to ``rejects.parquet`` while the run goes on; bad set
names and params exit 2 with one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import _ingest_fixtures as fx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from apache_beam.options.pipeline_options import DirectOptions

from pipelines import examples, ingest
from pipelines.beam_io import pipeline_options
from pipelines.params import ParamsError
from pipelines.schema import EXAMPLE_SCHEMA, REJECT_SCHEMA
from tests.conftest import REPO

NUM_TUNES = 24


@pytest.fixture(scope="module")
def ingest_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ingested corpus ``mix`` of NUM_TUNES tunes, plus one row whose NoteSequence is corrupt."""
    root = tmp_path_factory.mktemp("examples")
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(NUM_TUNES):
        fx.write_tune(corpus / f"tune{i:02d}.mid", i)
    out = root / "ingest" / "mix"
    config = ingest.IngestConfig(corpus="mix", output=str(out), num_shards=1, progress=False)
    metrics = ingest.run(config, ingest.resolve_input(str(corpus)), [])
    assert metrics["parsed"] == NUM_TUNES
    shard = next(out.glob("notesequences-*.parquet"))
    table = pq.read_table(shard)
    broken = table.slice(0, 1).to_pylist()[0]
    broken.update(id="mix/broken.mid#0", source_path="broken.mid", note_sequence=b"\xff\xff\xff")
    table = pa.concat_tables([table, pa.Table.from_pylist([broken], schema=table.schema)])
    pq.write_table(table, shard)
    return root / "ingest"


def _spec(family: str, **kw) -> examples.ExampleSetSpec:
    item = {"family": family, "corpora": ["mix"], "eval_ratio": 0.3, "seed": 5, **kw}
    return examples.ExampleSetSpec.from_params("s", {"example_sets": {"s": item}})


def _rows(out: Path, split: str) -> list[dict]:
    rows = []
    for path in sorted(out.glob(f"{split}-*.parquet")):
        table = pq.read_table(path)
        assert table.schema.equals(EXAMPLE_SCHEMA)
        rows.extend(table.to_pylist())
    return rows


def _build(spec: examples.ExampleSetSpec, ingest_root: Path, out: Path) -> dict:
    return examples.run(spec, str(ingest_root), str(out), ["--direct_running_mode=in_memory"], {})


@pytest.fixture(scope="module")
def polyphony_set(ingest_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("poly")
    return out, _build(_spec("polyphony"), ingest_root, out)


def test_split_is_per_source_and_augmentation_train_only(polyphony_set: tuple[Path, dict]) -> None:
    out, metrics = polyphony_set
    train, evals = _rows(out, "train"), _rows(out, "eval")
    assert train and evals
    train_src = {r["source_id"] for r in train}
    eval_src = {r["source_id"] for r in evals}
    assert not train_src & eval_src  # no source on both sides
    assert len(train_src | eval_src) == NUM_TUNES
    for src in train_src | eval_src:  # each source's side is the seeded hash's, decided up front
        side = examples.split_of(src, 5, 0.3)
        assert src in (train_src if side == "train" else eval_src)
    assert {r["transposition"] for r in evals} == {0}
    assert {r["transposition"] for r in train} == set(range(-4, 5))
    assert metrics["examples_train"] == len(train) and metrics["examples_eval"] == len(evals)
    assert metrics["events"] == sum(r["num_events"] for r in train + evals)
    assert all(r["num_events"] == len(r["events"]) for r in train)


def test_broken_sequence_is_rejected_with_id_and_reason(polyphony_set: tuple[Path, dict]) -> None:
    out, metrics = polyphony_set
    assert metrics["inputs"] == NUM_TUNES + 1 and metrics["rejected"] == 1
    rejects = pq.read_table(out / "rejects.parquet")
    assert rejects.schema.equals(REJECT_SCHEMA)
    [row] = rejects.to_pylist()
    assert row["source_id"] == "mix/broken.mid#0" and row["reason"] == "DecodeError"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["num_train"] == metrics["examples_train"] and meta["split_by"] == "file"


def test_same_inputs_and_seed_give_byte_identical_shards(
    polyphony_set: tuple[Path, dict], ingest_root: Path, tmp_path: Path
) -> None:
    out, _ = polyphony_set
    _build(_spec("polyphony"), ingest_root, tmp_path)
    names = sorted(p.name for p in out.glob("*.parquet"))
    assert names == sorted(p.name for p in tmp_path.glob("*.parquet"))
    for name in names:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    other_seed = tmp_path / "seed6"
    _build(_spec("polyphony", seed=6), ingest_root, other_seed)
    moved = {r["source_id"] for r in _rows(other_seed, "eval")}
    assert moved != {r["source_id"] for r in _rows(out, "eval")}  # the seed decides the split


def test_melody_set_drops_are_counted(ingest_root: Path, tmp_path: Path) -> None:
    metrics = _build(_spec("melody", extract={"min_bars": 20}), ingest_root, tmp_path)
    # 12-bar tunes cannot give 20-bar melodies: every one is dropped, and counted as such
    assert metrics["examples_train"] + metrics["examples_eval"] == 0
    assert sum(metrics["dropped"].values()) >= NUM_TUNES
    assert "melodies_discarded_too_short" in metrics["dropped"]


def test_split_units() -> None:
    book = [f"c/book.abc#{i}" for i in range(400)]
    assert len({examples.split_of(t, 1, 0.2) for t in book}) == 1  # a file stays whole
    sides = [examples.split_of(t, 1, 0.2, split_by="tune") for t in book]
    assert 0.1 < sides.count("eval") / len(sides) < 0.3  # tunes split on their own, near the ratio
    with pytest.raises(ParamsError, match="split_by"):
        _spec("melody", split_by="bar")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.examples", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"s": {"family": "melody", "corpora": ["mix"]}}, "unknown example set 'nope'"),
        ({"nope": {"family": "melody", "corpora": ["mix"], "extract": {"min_barz": 2}}},
         "min_barz"),
        ({"nope": {"family": "melody", "corpora": ["mix"], "eval_ratoi": 0.1}}, "eval_ratoi"),
        ({"nope": {"family": "melody", "corpora": ["absent"]}}, "absent"),
    ],
)  # fmt: skip
def test_cli_bad_params_exit_2_with_one_line(
    ingest_root: Path, tmp_path: Path, sets: dict, message: str
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"example_sets": sets}))
    proc = _cli("--set", "nope", "--params", str(params), "--ingest-root", str(ingest_root),
                "--output", str(tmp_path / "out"))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()  # a failed run leaves no empty output folder


def test_cli_failing_pipeline_removes_its_new_output_folder(tmp_path: Path) -> None:
    junk = tmp_path / "ingest" / "junk"
    junk.mkdir(parents=True)
    (junk / "notesequences-00000-of-00001.parquet").write_bytes(b"not parquet at all")
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"example_sets": {"s": {"family": "melody", "corpora": ["junk"]}}})
    )
    out = tmp_path / "sets" / "s"
    proc = _cli("--set", "s", "--params", str(params), "--ingest-root", str(tmp_path / "ingest"),
                "--output", str(out), "--direct_running_mode=in_memory")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("examples: failed: "), proc.stderr
    assert not (tmp_path / "sets").exists()  # every folder the run created is gone again


def test_in_memory_examples_run_has_no_worker_count_warning(
    ingest_root: Path, tmp_path: Path
) -> None:
    """params.yaml's shared ``beam`` section asks for 2 workers and the examples stage for
    ``in_memory``: Beam used to warn on every run that the worker count had no effect."""
    shared = {"direct_num_workers": 2, "direct_running_mode": "multi_threading"}
    options = pipeline_options([], {**shared, "direct_running_mode": "in_memory"})
    assert options.view_as(DirectOptions).direct_num_workers == 1  # Beam's in_memory count
    threaded = pipeline_options([], shared)
    assert threaded.view_as(DirectOptions).direct_num_workers == 2  # kept where it matters
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "beam": shared,
                "examples": {"beam": {"direct_running_mode": "in_memory"}},
                "example_sets": {"s": {"family": "melody", "corpora": ["mix"]}},
            }
        )
    )
    proc = _cli("--set", "s", "--params", str(params), "--ingest-root", str(ingest_root),
                "--output", str(tmp_path / "out"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "direct_num_workers" not in proc.stderr
