"""The ingest Beam pipeline: transforms (TestPipeline + assert_that), outputs, accounting, CLI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import _ingest_fixtures as fx
import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from note_seq.protobuf import music_pb2

from pipelines import ingest
from pipelines.beam_io import WriteSortedParquet, shard_path, stable_shard
from pipelines.readers import parse_file
from pipelines.schema import NOTESEQ_SCHEMA, QUARANTINE_SCHEMA, REJECT_SCHEMA

REPO = Path(__file__).resolve().parents[1]
MAX_BYTES = 50_000


def mixed_corpus(root: Path) -> Path:
    """Good files, a duplicate, one of each bad kind, and a file that is not music."""
    xml = fx.musicxml_bytes()
    song = fx.midi_bytes()
    return fx.write_files(
        root,
        {
            "song.mid": song,
            "z_copy/song.mid": song,  # byte-identical: dropped, song.mid kept
            "sheets/sheet.xml": xml,
            "sheets/Don't Stop.mxl": fx.mxl_bytes(xml, "Don't Stop.xml", "Don't Stop.xml"),
            "book.abc": fx.ABC_BOOK.encode(),
            "misnamed/actually_midi.xml": fx.midi_bytes(tempo=120.0),
            "bad/empty.mid": b"",
            "bad/big.mid": song + b"\0" * MAX_BYTES,
            "bad/noise.mid": fx.random_bytes(),
            "bad/cut.mxl": fx.mxl_bytes(xml)[:300],
            "bad/bomb.mxl": fx.zip_bomb_mxl(),
            "bad/fast.mid": fx.midi_bytes(tempo=2000.0),
            "README.txt": b"not music",
        },
    )


EXPECTED_QUARANTINE = {
    "bad/empty.mid": "empty",
    "bad/big.mid": "too_large",
    "bad/noise.mid": "unrecognised_format",
    "bad/cut.mxl": "truncated",
    "bad/bomb.mxl": "zip_bomb",
    "bad/fast.mid": "absurd_tempo",
}
EXPECTED_READERS = {
    "song.mid#0": "note_seq_midi",
    "sheets/sheet.xml#0": "note_seq_musicxml",
    "sheets/Don't Stop.mxl#0": "note_seq_mxl_inner",
    "book.abc#0": "note_seq_abc",
    "book.abc#1": "music21",
    "misnamed/actually_midi.xml#0": "note_seq_midi",
}


def run_ingest(root: Path, out: Path, *beam_args: str, shards: int = 3) -> dict:
    config = ingest.IngestConfig(
        corpus="mix", output=str(out), max_file_bytes=MAX_BYTES, num_shards=shards, progress=False
    )
    return ingest.run(config, ingest.resolve_input(str(root)), list(beam_args))


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = mixed_corpus(tmp_path_factory.mktemp("corpus"))
    out = tmp_path_factory.mktemp("out")
    return root, out, run_ingest(root, out)  # default runner options


def read_rows(out: Path) -> list[dict]:
    rows = []
    for path in sorted(out.glob("notesequences-*.parquet")):
        table = pq.read_table(path)
        assert table.schema.equals(NOTESEQ_SCHEMA)
        rows.extend(table.to_pylist())
    return rows


# ---------------------------------------------------------------- the whole pipeline


def test_outputs_rows_and_accounting(mixed_run: tuple[Path, Path, dict]) -> None:
    _, out, metrics = mixed_run
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["matched"] == 12 and metrics["ignored"] == 1
    assert metrics["matched"] == metrics["parsed"] + metrics["duplicates"] + metrics["quarantined"]
    assert (metrics["parsed"], metrics["duplicates"], metrics["quarantined"]) == (5, 1, 6)
    assert metrics["quarantined_by_reason"] == {
        reason: list(EXPECTED_QUARANTINE.values()).count(reason)
        for reason in EXPECTED_QUARANTINE.values()
    }
    assert metrics["duplicate_examples"] == ["z_copy/song.mid == song.mid"]
    assert metrics["extension_mismatch"] == 1
    assert metrics["tunes_quarantined_by_reason"] == {"no_notes": 1}

    rows = read_rows(out)
    by_id = {row["id"]: row for row in rows}
    assert {i: row["reader"] for i, row in by_id.items()} == {
        f"mix/{k}": v for k, v in EXPECTED_READERS.items()
    }
    assert metrics["tunes"] == len(rows) == 6
    assert metrics["tunes_by_reader"] == {
        r: list(EXPECTED_READERS.values()).count(r) for r in set(EXPECTED_READERS.values())
    }
    assert metrics["notes"] == sum(row["num_notes"] for row in rows)
    assert metrics["hours"] == pytest.approx(
        sum(row["total_time"] for row in rows) / 3600, abs=1e-6
    )
    song = by_id["mix/song.mid#0"]
    ns = music_pb2.NoteSequence.FromString(song["note_sequence"])
    assert (ns.id, ns.filename, ns.collection_name) == ("mix/song.mid#0", "song.mid", "mix")
    assert song["sha256"] and song["source_path"] == "song.mid" and song["tune_index"] == 0
    assert song["has_pedal"] and song["is_polyphonic"] and song["num_instruments"] == 2
    assert song["key"] == "D major" and song["time_signatures"] == ["3/4"]
    assert by_id["mix/sheets/Don't Stop.mxl#0"]["has_chords"]


def test_fallback_hops_are_counted_per_pair(mixed_run: tuple[Path, Path, dict]) -> None:
    assert mixed_run[2]["fallbacks"] == {
        "note_seq_musicxml->note_seq_mxl_inner": 2,  # Don't Stop.mxl and the truncated .mxl
        "note_seq_mxl_inner->music21": 1,  # the truncated .mxl goes on to music21 (and fails)
        "note_seq_abc->music21": 2,  # the block-chord tune and the empty tune
        "note_seq_midi->mido_repair": 1,  # the random bytes named .mid
    }


def test_quarantine_table_has_every_dropped_file_and_tune(
    mixed_run: tuple[Path, Path, dict],
) -> None:
    _, out, metrics = mixed_run
    table = pq.read_table(out / "quarantine.parquet")
    assert table.schema.equals(QUARANTINE_SCHEMA)
    rows = table.to_pylist()
    files = {r["source_path"]: r["reason"] for r in rows if r["source_path"] != "book.abc"}
    assert files == EXPECTED_QUARANTINE
    tunes = [r for r in rows if r["source_path"] == "book.abc"]
    assert [r["reason"] for r in tunes] == ["no_notes"] and "tune 2" in tunes[0]["detail"]
    assert len(rows) == metrics["quarantined"] + metrics["tunes_quarantined"]
    assert all(r["detail"] for r in rows)
    assert [r["source_path"] for r in rows] == sorted(r["source_path"] for r in rows)


def test_shards_are_sorted_hashed_and_byte_identical_across_runners(
    mixed_run: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    root, out, _ = mixed_run
    for index in range(3):
        ids = pq.read_table(shard_path(str(out / "notesequences"), index, 3)).column("id")
        ids = ids.to_pylist()
        assert ids == sorted(ids)
        assert all(stable_shard(i, 3) == index for i in ids)
    again = tmp_path / "again"
    metrics = run_ingest(root, again, "--direct_running_mode=in_memory", "--direct_num_workers=1")
    assert metrics == json.loads((out / "metrics.json").read_text())
    for name in [
        "quarantine.parquet",
        *(f"notesequences-0000{i}-of-00003.parquet" for i in range(3)),
    ]:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    # A rerun with fewer shards replaces the set: no stale shard is left for readers to glob.
    run_ingest(root, again, "--direct_running_mode=in_memory", shards=2)
    assert sorted(p.name for p in again.glob("notesequences-*")) == [
        "notesequences-00000-of-00002.parquet",
        "notesequences-00001-of-00002.parquet",
    ]
    assert not list(again.glob(".*"))  # no temporary files left behind


# ---------------------------------------------------------------- single transforms


def test_match_cap_read_dedupe_transforms(tmp_path: Path) -> None:
    song = fx.midi_bytes()
    root = fx.write_files(
        tmp_path,
        {
            "b.mid": song,
            "a/c.mid": song,
            "d.abc": fx.ABC_BOOK.encode(),
            "e.mid": b"",
            "f.txt": b"x",
        },
    )
    spec = ingest.resolve_input(str(root))
    with test_pipeline.TestPipeline() as p:
        matched = p | "MatchFiles" >> ingest.MatchInputs(spec)
        capped = matched.files | "CapSize" >> ingest.CapSize("t", spec.root, 10_000)
        read = capped.files | "ReadBytes" >> ingest.ReadBytes("t", spec.root, 10_000)
        unique = read.files | "Dedupe" >> ingest.Dedupe()
        assert_that(
            unique.files | beam.Map(lambda f: (f.relpath, f.size)),
            equal_to([("a/c.mid", len(song)), ("d.abc", len(fx.ABC_BOOK.encode()))]),
            label="KeepsFirstOfIdentical",
        )
        assert_that(
            unique.outcomes | beam.Map(lambda o: (o.status, o.note)),
            equal_to([("duplicate", "b.mid == a/c.mid")]),
            label="CountsDuplicate",
        )
        assert_that(
            capped.quarantine | beam.Map(lambda r: (r["source_path"], r["reason"])),
            equal_to([("e.mid", "empty")]),
            label="EmptyFromMetadata",
        )
        assert_that(
            matched.outcomes | beam.Map(lambda o: o.status),
            equal_to(["matched"] * 4 + ["ignored"]),
            label="AccountsEveryFile",
        )


def test_summarise_transform() -> None:
    row = {
        "id": "x/a.mid#0",
        "note_sequence": parse_file(fx.midi_bytes(), "a.mid").tunes[0].sequence,
    }
    with test_pipeline.TestPipeline() as p:
        out = p | beam.Create([row]) | "Summarise" >> ingest.Summarise()
        assert_that(
            out | beam.Map(lambda r: (r["id"], r["num_notes"], r["has_pedal"], r["key"])),
            equal_to([("x/a.mid#0", 4, True, "D major")]),
        )


def test_account_transform_checks_the_identity() -> None:
    good = [
        ingest.Outcome("matched"),
        ingest.Outcome("matched"),
        ingest.Outcome("parsed", fallbacks=("a->b",)),
        ingest.Outcome("quarantined", reason="timeout"),
        ingest.RowStat("a", 10, 3_600_000_000),
    ]
    with test_pipeline.TestPipeline() as p:
        metrics = p | beam.Create(good) | "Account" >> ingest.Account("c")
        assert_that(
            metrics
            | beam.Map(
                lambda m: (m["matched"], m["parsed"], m["quarantined_by_reason"], m["hours"])
            ),
            equal_to([(2, 1, {"timeout": 1}, 1.0)]),
        )
    lost = [ingest.Outcome("matched"), ingest.Outcome("matched"), ingest.Outcome("parsed")]
    with (
        pytest.raises(Exception, match="accounting identity violated"),
        test_pipeline.TestPipeline() as p,
    ):
        _ = p | beam.Create(lost) | "Account" >> ingest.Account("c")


def test_write_sorted_parquet_is_deterministic(tmp_path: Path) -> None:
    rows = [{"source_id": f"s{i:03d}", "reason": "r", "detail": str(i)} for i in range(40)]

    outputs = []
    for attempt in range(2):
        shuffled = rows[:]
        random.Random(attempt).shuffle(shuffled)
        prefix = str(tmp_path / f"run{attempt}" / "rejects")
        with test_pipeline.TestPipeline() as p:
            written = (
                p
                | beam.Create(shuffled, reshuffle=True)
                | WriteSortedParquet(prefix, REJECT_SCHEMA, 5, "source_id")
            )
            assert_that(written, equal_to([shard_path(prefix, i, 5) for i in range(5)]))
        outputs.append([Path(shard_path(prefix, i, 5)).read_bytes() for i in range(5)])
    assert outputs[0] == outputs[1]
    back = [r for i in range(5) for r in pq.read_table(shard_path(prefix, i, 5)).to_pylist()]
    assert sorted(r["source_id"] for r in back) == [r["source_id"] for r in rows]


# ---------------------------------------------------------------- CLI


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.ingest", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_missing_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    done = cli("--corpus", "x", "--input", str(missing), "--output", str(tmp_path / "o"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"ingest: error: input not found: {missing}"]
    assert not (tmp_path / "o").exists()
    done = cli("--corpus", "x", "--input", "music21:noSuchFolder", "--output", str(tmp_path))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    done = cli(
        "--corpus", "x", "--input", str(tmp_path), "--output", str(tmp_path), "--num-shards", "0"
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_cli_quarantines_a_slow_file_and_succeeds(tmp_path: Path) -> None:
    root = fx.write_files(
        tmp_path / "in", {"slow.xml": fx.slow_musicxml(), "ok.mid": fx.midi_bytes()}
    )
    out = tmp_path / "out"
    done = cli(
        "--corpus", "s", "--input", str(root), "--output", str(out), "--timeout-s", "1",
        "--max-file-bytes", "100000000", "--no-progress", "--metrics", str(tmp_path / "m.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "quarantined 1 (timeout 1)" in done.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["parsed"] == 1 and metrics["quarantined_by_reason"] == {"timeout": 1}
    assert metrics["seconds"] > 0
    assert pq.read_table(out / "quarantine.parquet").column("reason").to_pylist() == ["timeout"]


# ---------------------------------------------------------------- held-out corpus details


def test_fallbacks_are_recorded_per_row(mixed_run: tuple[Path, Path, dict]) -> None:
    rows = {row["id"]: row["fallbacks"] for row in read_rows(mixed_run[1])}
    assert rows == {
        "mix/song.mid#0": [],
        "mix/sheets/sheet.xml#0": [],
        "mix/sheets/Don't Stop.mxl#0": ["note_seq_musicxml->note_seq_mxl_inner"],
        "mix/book.abc#0": [],
        "mix/book.abc#1": ["note_seq_abc->music21"],
        "mix/misnamed/actually_midi.xml#0": [],
    }


def test_rows_of_a_run_before_the_fallbacks_column_are_reused(
    mixed_run: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    """Old shards (no ``fallbacks`` column) still read, by column name and via --reuse."""
    root, out, _ = mixed_run
    old_columns = [f.name for f in NOTESEQ_SCHEMA if f.name != "fallbacks"]
    for index in range(3):
        name = f"notesequences-0000{index}-of-00003.parquet"
        pq.write_table(pq.read_table(out / name, columns=old_columns), tmp_path / name)
    assert pq.read_table(tmp_path / name, columns=["id", "note_sequence"]).num_rows >= 0
    config = ingest.IngestConfig(
        corpus="mix", output=str(tmp_path), max_file_bytes=MAX_BYTES, num_shards=3,
        progress=False, reuse=str(tmp_path),
    )  # fmt: skip
    metrics = ingest.run(config, ingest.resolve_input(str(root)), [])
    assert metrics["reused"] == metrics["parsed"] == 5
    rows = read_rows(tmp_path)  # the current schema, unknown fallbacks as null
    assert len(rows) == 6 and all(row["fallbacks"] is None for row in rows)


HUNGRY_NOTES = 160_000  # over the test's 20 MiB memory cap, under its note cap
HELD_OUT_PARAMS = {"ingest": {"max_notes": 200_000, "max_memory_mb": 20, "num_shards": 1}}


@pytest.fixture(scope="module")
def held_out_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, str]:
    """A hand run (no --params) in a folder with its own params.yaml, on a corpus with the
    details the held-out corpora showed: symlinks and a loop, byte-identical files, an ABC book
    full of unknown fields, and MIDI files over the note and memory caps (issue 15, F9)."""
    import yaml

    work = tmp_path_factory.mktemp("held_out")
    (work / "params.yaml").write_text(yaml.safe_dump(HELD_OUT_PARAMS))
    root = work / "corpus"
    song = fx.midi_bytes()
    tune = "X:{i}\nT:t{i}\nE:5\nY:x\nM:4/4\nL:1/8\nK:G\nGABc dedB|]\n"
    fx.write_files(
        root,
        {
            "real/song.mid": song,
            "B.mid": fx.midi_bytes(tempo=90.0),  # four byte-identical files: B.mid sorts first
            "a.mid": fx.midi_bytes(tempo=90.0),
            "a-b/x.mid": fx.midi_bytes(tempo=90.0),
            "a/x.mid": fx.midi_bytes(tempo=90.0),
            "book.abc": "\n".join(tune.format(i=i + 1) for i in range(30)).encode(),
            "notes.mid": fx.many_notes_midi(320_000),  # 1.9 MB: more notes than max_notes
            "hungry.mid": fx.many_notes_midi(HUNGRY_NOTES),  # fewer notes, more than 20 MiB
        },
    )
    (root / "0_link.mid").symlink_to("real/song.mid")  # sorts before its byte-identical target
    (root / "linked_dir").symlink_to("real", target_is_directory=True)
    (root / "loop1.mid").symlink_to("loop2.mid")
    (root / "loop2.mid").symlink_to("loop1.mid")
    (root / "broken.mid").symlink_to("nowhere.mid")
    out = work / "out"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.ingest", "--corpus", "h", "--input", str(root),
         "--output", str(out), "--no-progress"],
        cwd=work, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root, out, json.loads((out / "metrics.json").read_text()), done.stderr


def test_hand_run_reads_params_yaml_by_default(held_out_run: tuple[Path, Path, dict, str]) -> None:
    _, out, metrics, _ = held_out_run
    assert [p.name for p in out.glob("notesequences-*")] == ["notesequences-00000-of-00001.parquet"]
    assert metrics["quarantined_by_reason"] == {"memory": 1, "too_large": 1}  # its caps apply


def test_builtin_defaults_equal_the_shipped_params(tmp_path: Path, monkeypatch) -> None:
    import yaml

    shipped = yaml.safe_load((REPO / "params.yaml").read_text())["ingest"]
    monkeypatch.chdir(tmp_path)  # no params.yaml here: the built-in defaults
    config, *_ = ingest.parse_args(["--corpus", "c", "--input", "x", "--output", "o"])
    assert (config.max_file_bytes, config.timeout_s, config.num_shards) == (
        shipped["max_file_bytes"], shipped["timeout_s"], shipped["num_shards"]
    )  # fmt: skip
    assert (config.limits.max_notes, config.max_memory_mb, config.limits.max_qpm) == (
        shipped["max_notes"], shipped["max_memory_mb"], shipped["max_tempo_qpm"]
    )  # fmt: skip
    (tmp_path / "params.yaml").write_text("ingest: {timeout_s: 7, max_notes: 9}\n")
    config, *_ = ingest.parse_args(["--corpus", "c", "--input", "x", "--output", "o"])
    assert (config.timeout_s, config.limits.max_notes) == (7.0, 9)
    config, *_ = ingest.parse_args(
        ["--corpus", "c", "--input", "x", "--output", "o", "--max-notes", "5"]
    )
    assert config.limits.max_notes == 5  # the command line still wins
    with pytest.raises(ingest.UsageError, match="not found"):
        ingest.parse_args(["--corpus", "c", "--input", "x", "--output", "o", "--params", "no.yaml"])


def test_big_midi_is_quarantined_by_note_and_memory_caps(
    held_out_run: tuple[Path, Path, dict, str],
) -> None:
    """Issue 15, F9: a valid MIDI with too many notes is ``too_large``, one that needs more
    memory than its parse child may take is ``memory``; the rest of the corpus goes on."""
    _, out, metrics, _ = held_out_run
    table = pq.read_table(out / "quarantine.parquet").to_pylist()
    reasons = {row["source_path"]: (row["reason"], row["detail"]) for row in table}
    assert reasons["notes.mid"] == ("too_large", "200001+ note-on events > max_notes 200000")
    assert reasons["hungry.mid"] == ("memory", "reader chain needed more than max_memory_mb 20 MiB")
    assert len(reasons) == 2
    assert metrics["parsed"] == 3  # real/song.mid, B.mid, book.abc


def test_symlinks_and_loops_are_ignored_with_their_reason(
    held_out_run: tuple[Path, Path, dict, str],
) -> None:
    _, out, metrics, _ = held_out_run
    assert metrics["ignored_by_reason"] == {"symlink": 2, "symlink_broken": 1, "symlink_loop": 2}
    assert metrics["ignored"] == 5 and metrics["ignored_by_extension"] == {}
    ids = {row["id"] for row in read_rows(out)}
    assert "h/real/song.mid#0" in ids  # the real file, not the link that sorts before it
    assert not any("link" in i or "loop" in i for i in ids)


def test_of_identical_files_the_first_sorted_path_is_kept(
    held_out_run: tuple[Path, Path, dict, str],
) -> None:
    _, out, metrics, _ = held_out_run
    copies = ["B.mid", "a.mid", "a-b/x.mid", "a/x.mid"]
    kept = sorted(copies)[0]
    assert kept == "B.mid"
    assert metrics["duplicates"] == 3
    assert metrics["duplicate_examples"] == sorted(f"{c} == {kept}" for c in copies[1:])
    ids = {row["id"] for row in read_rows(out)}
    assert f"h/{kept}#0" in ids and not any(f"h/{c}#0" in ids for c in copies[1:])


def test_reader_log_lines_are_counted_not_flooding_stderr(
    held_out_run: tuple[Path, Path, dict, str],
) -> None:
    _, _, metrics, stderr = held_out_run
    assert "Unknown field name" not in stderr
    assert metrics["reader_log_messages"] == {"warning: Unknown field name with content": 60}
