"""Example sets: NoteSequence Parquet -> seeded split -> family extraction -> encoded Parquet.

Stage command (one DVC ``examples`` stage per set in ``params.yaml:example_sets``)::

    python -m pipelines.examples --set NAME --ingest-root data/ingest --output data/examples/NAME

The set's family, source corpora and extraction overrides come from ``params.yaml``. The pipeline:

``ReadNoteSequences`` (Parquet from ``pipelines.ingest``, one read per source corpus)
-> ``AssignSplit`` (a seeded hash of the *source file* decides train/eval before anything else, so
no chunk, transposition or stretch of one file lands on both sides)
-> ``Extract`` (the family's note-seq based rules, :mod:`modeling.families`; augmentation on the
training split only) -> ``WriteTrain`` / ``WriteEval`` / ``WriteRejects`` (sorted shards, so the
same inputs and seed give byte-identical files). Every drop is a ``Metrics.counter``; the counters
become ``metrics.json`` (a DVC metric) and the set's ``meta.json`` names its event space. A run
that fails removes the output folder it created (one line on stderr, no empty folder left).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from modeling.cli import ArgumentParser, UsageError, command
from pipelines.beam_io import (
    WriteSortedParquet,
    pipeline_options,
    removed_on_failure,
    write_json,
)
from pipelines.params import ParamsError, load_params
from pipelines.schema import CHORD_COLUMNS, EXAMPLE_SCHEMA, REJECT_SCHEMA

NAMESPACE = "motif.examples"


@dataclass(frozen=True)
class ExampleSetSpec:
    """One example set as ``params.yaml`` describes it."""

    name: str
    family: str
    corpora: tuple[str, ...]
    extract: dict[str, Any] = field(default_factory=dict)
    extract_by_corpus: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_ratio: float = 0.1
    seed: int = 0
    augment_eval: bool = False
    num_shards: int = 2
    splits: tuple[str, ...] = ("train", "eval")  # ("eval",): an eval-only set (cross-corpus)
    # "file": every tune of one source file on one side (the leak-free default); "tune": each
    # tune of a multi-tune ABC book on its own (books of unrelated tunes; all of one tune's chunks
    # and transpositions still stay on one side)
    split_by: str = "file"

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any]) -> ExampleSetSpec:
        sets = params.get("example_sets") or {}
        if name not in sets:
            raise ParamsError(f"unknown example set {name!r}; valid: {', '.join(sorted(sets))}")
        common = params.get("examples") or {}
        item = dict(sets[name])
        known = {
            "family", "corpora", "extract", "extract_by_corpus", "eval_ratio", "seed",
            "augment_eval", "num_shards", "splits", "split_by",
        }  # fmt: skip
        bad = sorted(set(item) - known)
        if bad:
            raise ParamsError(
                f"example_sets.{name}: unknown key(s) {', '.join(bad)}; valid: {', '.join(sorted(known))}"
            )
        spec = cls(
            name=name,
            family=str(item["family"]),
            corpora=tuple(item.get("corpora") or ()),
            extract=dict(item.get("extract") or {}),
            extract_by_corpus={
                str(k): dict(v or {}) for k, v in (item.get("extract_by_corpus") or {}).items()
            },
            eval_ratio=float(item.get("eval_ratio", common.get("eval_ratio", 0.1))),
            seed=int(item.get("seed", common.get("seed", 0))),
            augment_eval=bool(item.get("augment_eval", common.get("augment_eval", False))),
            num_shards=int(item.get("num_shards", common.get("num_shards", 2))),
            splits=tuple(item.get("splits") or ("train", "eval")),
            split_by=str(item.get("split_by", common.get("split_by", "file"))),
        )
        if spec.split_by not in SPLIT_UNITS:
            raise ParamsError(
                f"example_sets.{name}.split_by: choose from {', '.join(SPLIT_UNITS)}; "
                f"got {spec.split_by!r}"
            )
        if not set(spec.splits) <= {"train", "eval"} or not spec.splits:
            raise ParamsError(
                f"example_sets.{name}.splits: choose from train, eval; got {list(spec.splits)}"
            )
        if not spec.corpora:
            raise ParamsError(f"example_sets.{name}: no corpora listed")
        stray = sorted(set(spec.extract_by_corpus) - set(spec.corpora))
        if stray:
            raise ParamsError(
                f"example_sets.{name}.extract_by_corpus: {', '.join(stray)} not in corpora"
            )
        if not 0.0 <= spec.eval_ratio < 1.0:
            raise ParamsError(
                f"example_sets.{name}: eval_ratio must be in [0, 1), got {spec.eval_ratio}"
            )
        return spec


SPLIT_UNITS = ("file", "tune")


def source_file_id(notesequence_id: str) -> str:
    """The id of the *file* a NoteSequence came from (tunes of one ABC file share a split)."""
    return notesequence_id.split("#", 1)[0]


def split_of(source_id: str, seed: int, eval_ratio: float, split_by: str = "file") -> str:
    """Seeded, order-independent train/eval assignment of a source file (or of one tune)."""
    unit = source_file_id(source_id) if split_by == "file" else source_id
    digest = hashlib.sha256(f"{seed}\x00{unit}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    return "eval" if u < eval_ratio else "train"


class AssignSplit(beam.PTransform):
    """Tag each NoteSequence row with its split, before any extraction or augmentation."""

    def __init__(self, seed: int, eval_ratio: float, split_by: str = "file") -> None:
        super().__init__()
        self.seed, self.eval_ratio, self.split_by = seed, eval_ratio, split_by

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        seed, ratio, unit = self.seed, self.eval_ratio, self.split_by
        return rows | "Tag" >> beam.Map(lambda r: (split_of(r["id"], seed, ratio, unit), r))


class _ExtractFn(beam.DoFn):
    """Run the family's extraction on one NoteSequence; rejects go to a tagged output."""

    REJECTS = "rejects"

    def __init__(self, spec: ExampleSetSpec) -> None:
        self.spec = spec

    def setup(self) -> None:
        from modeling.families import extract_config, load_family

        self.family = load_family(self.spec.family)
        self.cfg = extract_config(self.family, self.spec.extract)
        self.cfg_by_corpus = {
            corpus: extract_config(self.family, {**self.spec.extract, **overrides})
            for corpus, overrides in self.spec.extract_by_corpus.items()
        }
        self.info_counters = frozenset(getattr(self.family, "INFO_COUNTERS", ()))
        self.inputs = Metrics.counter(NAMESPACE, "inputs")
        self.events = Metrics.counter(NAMESPACE, "events")
        self.rejected = Metrics.counter(NAMESPACE, "rejected")

    def process(self, element: tuple[str, dict[str, Any]]) -> Iterator[Any]:
        from note_seq.protobuf import music_pb2

        from modeling.families.base import Dropped

        split, row = element
        self.inputs.inc()
        augment = split == "train" or self.spec.augment_eval
        try:
            ns = music_pb2.NoteSequence.FromString(row["note_sequence"])
            cfg = self.cfg_by_corpus.get(row["id"].split("/", 1)[0], self.cfg)
            results = list(self.family.extract(ns, cfg, augment=augment))
        except Exception as exc:  # a broken sequence must not stop the run: record and go on
            self.rejected.inc()
            yield beam.pvalue.TaggedOutput(
                self.REJECTS,
                {"source_id": row["id"], "reason": type(exc).__name__, "detail": str(exc)[:500]},
            )
            return
        index = 0
        for item in results:
            if isinstance(item, Dropped):
                kind = "counted" if item.reason in self.info_counters else "dropped"
                Metrics.counter(NAMESPACE, f"{kind}_{item.reason}").inc(item.count)
                continue
            events = np.asarray(item.events, dtype=np.int16)
            out = {
                "example_id": f"{row['id']}:{index:04d}:t{item.transposition:+d}:s{item.stretch:.3f}",
                "source_id": row["id"],
                "split": split,
                "transposition": int(item.transposition),
                "stretch": float(item.stretch),
                "num_events": len(events),
                "events": events.tolist(),
            }
            for col in CHORD_COLUMNS:
                value = item.cond.get(col)
                out[col] = None if value is None else np.asarray(value).astype(int).tolist()
            index += 1
            self.events.inc(len(events))
            Metrics.counter(NAMESPACE, f"examples_{split}").inc()
            yield out


class ExtractExamples(beam.PTransform):
    """Family extraction: (split, NoteSequence row) -> example rows (+ ``rejects`` output)."""

    def __init__(self, spec: ExampleSetSpec) -> None:
        super().__init__()
        self.spec = spec

    def expand(self, tagged: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return tagged | "Run" >> beam.ParDo(_ExtractFn(self.spec)).with_outputs(
            _ExtractFn.REJECTS, main="examples"
        )


class ReadNoteSequences(beam.PTransform):
    """Read the NoteSequence Parquet of the set's corpora (only the columns extraction needs)."""

    def __init__(self, ingest_root: str, corpora: tuple[str, ...]) -> None:
        super().__init__()
        self.ingest_root, self.corpora = ingest_root, corpora

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        reads = [
            pbegin
            | f"Read[{c}]"
            >> beam.io.ReadFromParquet(
                FileSystems.join(self.ingest_root, c, "notesequences-*.parquet"),
                columns=["id", "note_sequence"],
            )
            for c in self.corpora
        ]
        return tuple(reads) | "Flatten" >> beam.Flatten()


def build(pipeline: beam.Pipeline, spec: ExampleSetSpec, ingest_root: str, output: str) -> None:
    """Attach the example-set pipeline to ``pipeline``."""
    rows = pipeline | "ReadNoteSequences" >> ReadNoteSequences(ingest_root, spec.corpora)
    tagged = rows | "AssignSplit" >> AssignSplit(spec.seed, spec.eval_ratio, spec.split_by)
    if set(spec.splits) != {"train", "eval"}:
        keep = set(spec.splits)
        tagged = tagged | "KeepSplits" >> beam.Filter(lambda kv: kv[0] in keep)
    outs = tagged | "Extract" >> ExtractExamples(spec)
    examples = outs.examples
    by_split = examples | "BySplit" >> beam.Partition(
        lambda r, n: 0 if r["split"] == "train" else 1, 2
    )
    key = "example_id"
    _ = by_split[0] | "WriteTrain" >> WriteSortedParquet(
        FileSystems.join(output, "train"), EXAMPLE_SCHEMA, spec.num_shards, key
    )
    _ = by_split[1] | "WriteEval" >> WriteSortedParquet(
        FileSystems.join(output, "eval"), EXAMPLE_SCHEMA, spec.num_shards, key
    )
    _ = outs.rejects | "WriteRejects" >> WriteSortedParquet(
        FileSystems.join(output, "rejects"), REJECT_SCHEMA, 1, "source_id", single_file=True
    )


def _counters(result: Any) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    totals: dict[str, int] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return totals


def _event_space(spec: ExampleSetSpec) -> tuple[str, dict[str, Any]]:
    from modeling.families import extract_config, load_family

    family = load_family(spec.family)
    cfg = extract_config(family, spec.extract)
    spaces = {family.event_space(cfg)}
    for overrides in spec.extract_by_corpus.values():
        spaces.add(family.event_space(extract_config(family, {**spec.extract, **overrides})))
    if len(spaces) > 1:
        raise ParamsError(
            f"example_sets.{spec.name}: per-corpus extraction mixes event spaces {sorted(spaces)}"
        )
    cfg_dict = asdict(cfg) if is_dataclass(cfg) else dict(vars(cfg))
    cfg_dict["by_corpus"] = spec.extract_by_corpus
    return spaces.pop(), cfg_dict


def run(
    spec: ExampleSetSpec,
    ingest_root: str,
    output: str,
    beam_args: list[str],
    beam_params: dict[str, Any],
    metrics_path: str | None = None,
) -> dict[str, Any]:
    """Build one example set; returns its metrics (written to ``metrics_path``, default
    ``output/metrics.json``)."""
    event_space, cfg_dict = _event_space(spec)
    missing = [
        c
        for c in spec.corpora
        if not FileSystems.match([FileSystems.join(ingest_root, c, "notesequences-*.parquet")])[
            0
        ].metadata_list
    ]
    if missing:
        raise ParamsError(
            f"no ingested NoteSequences for corpus {', '.join(missing)} under {ingest_root}"
        )
    start = time.perf_counter()
    options = pipeline_options(beam_args, beam_params)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, spec, ingest_root, output)
    result = pipeline.run()
    result.wait_until_finish()
    counters = _counters(result)
    drops = {
        k.removeprefix("dropped_"): v
        for k, v in sorted(counters.items())
        if k.startswith("dropped_")
    }
    metrics = {
        "set": spec.name,
        "family": spec.family,
        "inputs": counters.get("inputs", 0),
        "examples_train": counters.get("examples_train", 0),
        "examples_eval": counters.get("examples_eval", 0),
        "events": counters.get("events", 0),
        "rejected": counters.get("rejected", 0),
        "dropped": drops,
        "counted": {
            k.removeprefix("counted_"): v
            for k, v in sorted(counters.items())
            if k.startswith("counted_")
        },
        "seconds": round(time.perf_counter() - start, 2),
    }
    meta = {
        "name": spec.name,
        "family": spec.family,
        "event_space": event_space,
        "corpora": list(spec.corpora),
        "num_train": metrics["examples_train"],
        "num_eval": metrics["examples_eval"],
        "eval_ratio": spec.eval_ratio,
        "seed": spec.seed,
        "augment_eval": spec.augment_eval,
        "splits": list(spec.splits),
        "split_by": spec.split_by,
        "extract": cfg_dict,
    }
    write_json(FileSystems.join(output, "meta.json"), meta)
    write_json(metrics_path or FileSystems.join(output, "metrics.json"), metrics)
    return metrics


@command("examples")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m pipelines.examples",
        description="Build one example set (split, extract, augment, encode) as Parquet.",
    )
    parser.add_argument(
        "--set", required=True, help="example set name from params.yaml:example_sets"
    )
    parser.add_argument(
        "--ingest-root", default="data/ingest", help="where pipelines.ingest wrote each corpus"
    )
    parser.add_argument(
        "--output", required=True, help="output directory, e.g. data/examples/melody"
    )
    parser.add_argument("--metrics", help="metrics JSON path (default OUTPUT/metrics.json)")
    parser.add_argument(
        "--params", default="params.yaml", help="parameters file (default params.yaml)"
    )
    args, beam_args = parser.parse_known_args(argv)
    try:
        with removed_on_failure(args.output):  # a failed run leaves no (empty) output folder
            params = load_params(args.params)
            spec = ExampleSetSpec.from_params(args.set, params)
            if "://" not in args.output:
                Path(args.output).mkdir(parents=True, exist_ok=True)
            beam_params = {
                **(params.get("beam") or {}),
                **((params.get("examples") or {}).get("beam") or {}),
            }
            metrics = run(spec, args.ingest_root, args.output, beam_args, beam_params, args.metrics)
    except (ParamsError, KeyError) as exc:
        raise UsageError(str(exc.args[0] if exc.args else exc)) from None
    except Exception as exc:
        # Beam wraps worker errors in the whole remote traceback; its last line names the cause.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        print(
            f"examples: failed: {lines[-1][:500] if lines else type(exc).__name__}", file=sys.stderr
        )
        return 1
    print(
        f"examples[{spec.name}]: {metrics['examples_train']} train / {metrics['examples_eval']} eval "
        f"examples from {metrics['inputs']} sequences, {metrics['events']} events, "
        f"{metrics['rejected']} rejected, {metrics['seconds']} s -> {args.output}"
    )
    print(json.dumps(metrics["dropped"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
