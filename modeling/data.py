"""Example sets (written by ``pipelines/examples.py``) -> padded, masked, length-bucketed batches.

An example set is a directory with ``meta.json`` and ``train-*.parquet`` / ``eval-*.parquet`` in
``pipelines.schema.EXAMPLE_SCHEMA``. :class:`ExampleSet` loads both splits into flat int16 arrays
(events + offsets, the chord columns alike), so a 100k-example set costs a few MB and a batch is a
vectorised gather. ``modeling/train.py`` asks a :class:`BatchSchedule` for the batch of a global
step: the order is a pure function of ``(seed, step)``, which is what makes resuming after a crash
land on the same trajectory, and what lets every DDP rank take its own rows of the same batch.

Batches follow the training contract of ``docs/ARCHITECTURE.md``: ``events`` (B, T) long,
``mask`` (B, T) bool (True on real events) and ``stored`` = the chord columns present in the set
plus ``mask`` (performance controls look ahead and must not count padding).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pipelines.schema import CHORD_COLUMNS, EXAMPLE_SCHEMA

META_KEYS = ("name", "family", "event_space", "num_train", "num_eval")

CHORD_PAD = {"chord_root": -1, "chord_bass": -1, "chord_quality": -1, "chord_pitches": 0}
"""Padding per chord column: "no chord" (see ``modeling/families/chords/``)."""


class ExampleSetError(ValueError):
    """An example set that cannot be trained on (message is one line, for exit 2)."""


def _flat(column: pa.ChunkedArray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """A list<int> column -> (flat values, offsets) without a Python loop."""
    arr = column.combine_chunks()
    if isinstance(arr, pa.ChunkedArray):  # pyarrow returns a ChunkedArray for 0 chunks
        arr = pa.array([], type=column.type)
    values = arr.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    offsets = arr.offsets.to_numpy().astype(np.int64) - int(arr.offsets[0].as_py() or 0)
    return values, offsets


@dataclass
class ExampleSplit:
    """One split held as flat arrays: example i is ``events[offsets[i]:offsets[i+1]]``."""

    events: np.ndarray
    offsets: np.ndarray
    cond: dict[str, np.ndarray] = field(default_factory=dict)  # flat, aligned with events
    example_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_events(self) -> int:
        return int(self.offsets[-1])

    def batch(self, indices: np.ndarray, pad_value: int = 0) -> Batch:
        """Rows ``indices`` padded to their longest length, with a mask and stored columns."""
        indices = np.asarray(indices, dtype=np.int64)
        starts = self.offsets[indices]
        lens = self.offsets[indices + 1] - starts
        t = int(lens.max()) if len(indices) else 0
        pos = np.arange(t)[None, :]
        mask = pos < lens[:, None]
        src = np.where(mask, starts[:, None] + pos, 0)
        events = np.where(mask, self.events[src], pad_value)
        stored: dict[str, torch.Tensor] = {}
        for name, flat in self.cond.items():
            stored[name] = torch.from_numpy(
                np.where(mask, flat[src], CHORD_PAD.get(name, 0)).astype(np.int64)
            )
        mask_t = torch.from_numpy(mask)
        stored["mask"] = mask_t
        return Batch(torch.from_numpy(events.astype(np.int64)), mask_t, stored)


@dataclass
class Batch:
    """Padded stored events (B, T), their mask and stored per-step columns (incl. ``mask``)."""

    events: torch.Tensor
    mask: torch.Tensor
    stored: dict[str, torch.Tensor]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.events.to(device),
            self.mask.to(device),
            {k: v.to(device) for k, v in self.stored.items()},
        )

    @property
    def num_labels(self) -> int:
        """Real (non-padding) label positions: every real event but the first of each row."""
        return int(self.mask[:, 1:].sum())


def _read_split(root: Path, split: str) -> ExampleSplit:
    files = sorted(root.glob(f"{split}-*.parquet"))
    if not files:
        return ExampleSplit(np.zeros(0, np.int16), np.zeros(1, np.int64))
    wanted = ["example_id", "events", *CHORD_COLUMNS]
    tables = []
    for f in files:
        try:
            table = pq.read_table(f)
        except (OSError, pa.ArrowInvalid) as exc:
            raise ExampleSetError(f"cannot read {f}: {exc}") from None
        missing = [c for c in ("example_id", "events") if c not in table.column_names]
        if missing:
            raise ExampleSetError(f"{f} lacks column(s) {', '.join(missing)} of EXAMPLE_SCHEMA")
        tables.append(table.select([c for c in wanted if c in table.column_names]))
    table = pa.concat_tables(tables, promote_options="default")
    events, offsets = _flat(table["events"], np.int16)
    if len(events) and int(events.min()) < 0:
        raise ExampleSetError(f"{root}: negative event index in the {split} split")
    cond: dict[str, np.ndarray] = {}
    for name in CHORD_COLUMNS:
        if name not in table.column_names or table[name].null_count == len(table):
            continue
        if table[name].null_count:
            raise ExampleSetError(f"{root}: column {name} is null for some {split} examples only")
        dtype = EXAMPLE_SCHEMA.field(name).type.value_type.to_pandas_dtype()
        values, c_off = _flat(table[name], dtype)
        if not np.array_equal(c_off, offsets):
            raise ExampleSetError(f"{root}: {name} and events differ in length ({split} split)")
        cond[name] = values
    ids = table["example_id"].to_pylist()
    return ExampleSplit(events, offsets, cond, ids)


@dataclass
class ExampleSet:
    """A loaded example set: ``meta.json`` plus both splits."""

    path: Path
    meta: dict[str, Any]
    train: ExampleSplit
    eval: ExampleSplit

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.name))

    @property
    def event_space(self) -> str:
        return str(self.meta["event_space"])

    @property
    def family(self) -> str:
        return str(self.meta["family"])

    @classmethod
    def load(cls, path: str | Path, *, need_train: bool = True) -> ExampleSet:
        """Read and check an example set; problems raise :class:`ExampleSetError` (one line).

        ``need_train=False`` accepts a set without training examples: evaluation reads only the
        eval split, and eval-only sets (``splits: [eval]`` in params) have no other.
        """
        root = Path(path)
        if not root.is_dir():
            raise ExampleSetError(f"example set not found: {root} is not a directory")
        meta_path = root / "meta.json"
        if not meta_path.is_file():
            raise ExampleSetError(
                f"{root} has no meta.json (not an example set from pipelines.examples?)"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ExampleSetError(f"{meta_path}: unreadable ({exc})") from None
        if not isinstance(meta, dict):
            raise ExampleSetError(f"{meta_path}: expected a JSON object")
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            raise ExampleSetError(f"{meta_path} lacks {', '.join(missing)}")
        train, evals = _read_split(root, "train"), _read_split(root, "eval")
        if need_train and (len(train) == 0 or int((train.lengths >= 2).sum()) == 0):
            raise ExampleSetError(
                f"example set {root} is empty: no training example with 2 or more events"
            )
        if len(evals) == 0 or int((evals.lengths >= 2).sum()) == 0:
            raise ExampleSetError(
                f"example set {root} has no eval examples (eval_ratio 0 or too "
                "few sources?); training needs an eval split"
            )
        if len(train) and set(train.cond) != set(evals.cond):
            raise ExampleSetError(f"{root}: train and eval splits store different chord columns")
        return cls(root, meta, train, evals)

    def check_compatible(self, family: str, event_space: str, variant: str) -> None:
        """Refuse a set whose family or stored event space is not the variant's."""
        if family != self.family:
            raise ExampleSetError(
                f"example set {self.name} is a {self.family} set; variant "
                f"{variant} needs a {family} set"
            )
        if self.event_space != event_space:
            raise ExampleSetError(
                f"example set {self.name} stores events in {self.event_space}; "
                f"variant {variant} needs {event_space}"
            )

    def summary(self) -> Mapping[str, Any]:
        return {
            "examples_train": len(self.train),
            "examples_eval": len(self.eval),
            "events_train": self.train.num_events,
            "events_eval": self.eval.num_events,
        }


def epoch_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, chunk_batches: int = 32
) -> list[np.ndarray]:
    """One epoch of length-bucketed batches, a pure function of ``(seed, epoch)``.

    Shuffle, cut into chunks of ``chunk_batches`` batches, sort each chunk by length (so a batch
    pads little), cut into batches and shuffle the batch order. Like TF's ``shuffle_batch`` every
    batch is full: the remainder of an epoch is dropped (it differs from epoch to epoch), unless
    the set is smaller than one batch. Examples shorter than 2 events (no label) are skipped.
    """
    usable = np.flatnonzero(lengths >= 2)
    rng = np.random.default_rng([seed, epoch])
    perm = usable[rng.permutation(len(usable))]
    chunk = batch_size * chunk_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), chunk):
        part = perm[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    if len(perm) >= batch_size:
        batches = [b for b in batches if len(b) == batch_size]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


class BatchSchedule:
    """Global step -> training batch (example indices), independent of where a run restarts."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        usable = int((lengths >= 2).sum())
        self.per_epoch = max(1, usable // batch_size) if usable >= batch_size else 1
        self._epoch = -1
        self._batches: list[np.ndarray] = []

    def batch(self, step: int) -> np.ndarray:
        """Indices of the batch trained at 0-based global ``step``."""
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._batches = epoch_batches(self.lengths, self.batch_size, self.seed, epoch)
            self._epoch = epoch
        return self._batches[index]


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Every usable eval example once, sorted by length (little padding), in fixed batches."""
    usable = np.flatnonzero(lengths >= 2)
    order = usable[np.argsort(lengths[usable], kind="stable")]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shard_rows(indices: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This rank's rows of a global batch (strided, so length-sorted rows balance the ranks)."""
    return indices[rank::world]


def budget_groups(rows: np.ndarray, lengths: np.ndarray, parts: int) -> list[np.ndarray]:
    """``rows`` sorted by length and cut into ``parts`` near-equal groups (longest last)."""
    ordered = rows[np.argsort(lengths[rows], kind="stable")]
    return [g for g in np.array_split(ordered, parts) if len(g)]


def _padded_cost(groups: list[np.ndarray], lengths: np.ndarray) -> int:
    return max((len(g) * int(lengths[g].max()) for g in groups if len(g)), default=0)


def micro_batches(
    global_rows: np.ndarray, lengths: np.ndarray, rank: int, world: int, max_events: int
) -> list[np.ndarray]:
    """This rank's rows of a training batch in micro-batches of at most ``max_events`` padded
    events each (a single long example may exceed it), so that memory is bounded by the budget
    rather than by the longest sequence times the batch size.

    The number of micro-batches is the same on every rank (computed from the global batch, no
    communication), as DDP needs one gradient synchronisation per step. ``max_events <= 0``
    turns it off. Gradients are accumulated over the micro-batches, so the update is the
    full batch's (``train.py``).
    """
    shards = [shard_rows(global_rows, r, world) for r in range(world)]
    mine = shards[rank]
    if max_events <= 0 or len(mine) <= 1:
        return [mine]
    most = min(len(s) for s in shards if len(s)) if any(len(s) for s in shards) else 1
    parts = 1
    while parts < most and any(
        _padded_cost(budget_groups(s, lengths, parts), lengths) > max_events
        for s in shards
        if len(s)
    ):
        parts += 1
    return [mine] if parts == 1 else budget_groups(mine, lengths, parts)


def eval_micro_batches(rows: np.ndarray, lengths: np.ndarray, max_events: int) -> list[np.ndarray]:
    """An eval batch cut so that no piece pads past ``max_events`` (forward only: any cut works)."""
    if max_events <= 0 or len(rows) <= 1:
        return [rows]
    parts = 1
    while (
        parts < len(rows)
        and _padded_cost(budget_groups(rows, lengths, parts), lengths) > max_events
    ):
        parts += 1
    return [rows] if parts == 1 else budget_groups(rows, lengths, parts)
