"""Accounting: every file that enters the pipeline (``matched``, or ``ignored``) leaves it once
(``parsed``, ``duplicate`` or ``quarantined``).

``inputs`` and ``transforms`` emit one :class:`Outcome` per file event and ``pipeline`` one
:class:`RowStat` per written row; :class:`Account` (:class:`AccountFn`) combines them into the
metrics.json dict and :func:`check_accounting` enforces ``matched == parsed + duplicates +
quarantined`` there and again in the driver (``pipeline.run``), raising :class:`AccountingError`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from pipelines.ingest.config import DUPLICATE_EXAMPLES

# Why a symlink under a local input folder is ignored (``inputs.symlink_reason``).
SYMLINK_REASONS = ("symlink", "symlink_loop", "symlink_broken")


@dataclass(frozen=True)
class Outcome:
    """One accounting record: a file entered (``matched``/``ignored``) or left the pipeline."""

    status: str  # matched | ignored | parsed | duplicate | quarantined
    reason: str = ""  # quarantine reason; ignored: the extension, or a SYMLINK_REASONS code
    fallbacks: tuple[str, ...] = ()  # reader hops "a->b"
    extension_mismatch: bool = False
    tune_failures: tuple[str, ...] = ()  # reasons of quarantined tunes of a parsed file
    note: str = ""  # duplicates: "<dropped> == <kept>"
    reused: bool = False  # parsed: rows taken unchanged from an earlier run (--reuse)
    log_messages: tuple[tuple[str, int], ...] = ()  # the readers' log lines, by kind


@dataclass(frozen=True)
class RowStat:
    """What the accounting needs from one written row."""

    reader: str
    notes: int
    total_time_us: int


class AccountFn(beam.CombineFn):
    """Combine accounting records into metrics.json; fails the run if the identity breaks."""

    def __init__(self, corpus: str) -> None:
        self._corpus = corpus

    def create_accumulator(self) -> tuple[Counter[str], list[str]]:
        return Counter(), []

    def add_input(
        self, acc: tuple[Counter[str], list[str]], record: Outcome | RowStat
    ) -> tuple[Counter[str], list[str]]:
        counts, duplicates = acc
        if isinstance(record, RowStat):
            counts["tunes"] += 1
            counts[f"reader:{record.reader}"] += 1
            counts["notes"] += record.notes
            counts["time_us"] += record.total_time_us
            counts["empty_sequences"] += record.notes == 0
            return acc
        counts[f"status:{record.status}"] += 1
        if record.status == "quarantined":
            counts[f"reason:{record.reason}"] += 1
        if record.status == "ignored":
            kind = record.reason if record.reason in SYMLINK_REASONS else "unsupported_extension"
            counts[f"ignored_reason:{kind}"] += 1
            if kind == "unsupported_extension":
                counts[f"ignored:{record.reason}"] += 1
        for message, count in record.log_messages:
            counts[f"log:{message}"] += count
        for hop in record.fallbacks:
            counts[f"fallback:{hop}"] += 1
        for reason in record.tune_failures:
            counts[f"tune_reason:{reason}"] += 1
        counts["extension_mismatch"] += record.extension_mismatch
        counts["reused"] += record.reused
        if record.note:
            duplicates.append(record.note)
        return acc

    def merge_accumulators(
        self, accumulators: Iterable[tuple[Counter[str], list[str]]]
    ) -> tuple[Counter[str], list[str]]:
        counts: Counter[str] = Counter()
        duplicates: list[str] = []
        for more, notes in accumulators:
            counts.update(more)
            duplicates.extend(notes)
        return counts, sorted(duplicates)[:DUPLICATE_EXAMPLES]

    def extract_output(self, acc: tuple[Counter[str], list[str]]) -> dict[str, Any]:
        counts, duplicates = acc

        def group(prefix: str) -> dict[str, int]:
            return {k[len(prefix) :]: v for k, v in sorted(counts.items()) if k.startswith(prefix)}

        metrics = {
            "corpus": self._corpus,
            "matched": counts["status:matched"],
            "parsed": counts["status:parsed"],
            "reused": counts["reused"],
            "duplicates": counts["status:duplicate"],
            "quarantined": counts["status:quarantined"],
            "quarantined_by_reason": group("reason:"),
            "ignored": counts["status:ignored"],
            "ignored_by_reason": group("ignored_reason:"),
            "ignored_by_extension": group("ignored:"),
            "extension_mismatch": counts["extension_mismatch"],
            "tunes": counts["tunes"],
            "tunes_by_reader": group("reader:"),
            "tunes_quarantined": sum(group("tune_reason:").values()),
            "tunes_quarantined_by_reason": group("tune_reason:"),
            "fallbacks": group("fallback:"),
            "reader_log_messages": group("log:"),
            "empty_sequences": counts["empty_sequences"],
            "notes": counts["notes"],
            "hours": round(counts["time_us"] / 3.6e9, 6),
            "duplicate_examples": sorted(duplicates)[:DUPLICATE_EXAMPLES],
        }
        check_accounting(metrics)
        return metrics


class AccountingError(RuntimeError):
    """The files that left the pipeline do not add up to the files that entered it."""


def check_accounting(metrics: dict[str, Any]) -> None:
    """``matched == parsed + duplicates + quarantined`` and the per-reason/per-reader sums."""
    matched = metrics["matched"]
    exits = metrics["parsed"] + metrics["duplicates"] + metrics["quarantined"]
    problems = []
    if matched != exits:
        problems.append(
            f"matched {matched} != parsed {metrics['parsed']} + duplicates "
            f"{metrics['duplicates']} + quarantined {metrics['quarantined']}"
        )
    if sum(metrics["quarantined_by_reason"].values()) != metrics["quarantined"]:
        problems.append("quarantined_by_reason does not sum to quarantined")
    if sum(metrics.get("ignored_by_reason", {}).values()) != metrics.get("ignored", 0):
        problems.append("ignored_by_reason does not sum to ignored")
    if sum(metrics["tunes_by_reader"].values()) != metrics["tunes"]:
        problems.append("tunes_by_reader does not sum to tunes")
    if metrics["parsed"] and metrics["tunes"] < metrics["parsed"]:
        problems.append(f"{metrics['parsed']} parsed files but only {metrics['tunes']} tunes")
    if problems:
        raise AccountingError("accounting identity violated: " + "; ".join(problems))


class Account(beam.PTransform):
    """Accounting records (outcomes + one stat per written row) -> the metrics dict."""

    def __init__(self, corpus: str) -> None:
        super().__init__()
        self._corpus = corpus

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return records | "Combine" >> beam.CombineGlobally(AccountFn(self._corpus))


def row_stat(row: dict[str, Any]) -> RowStat:
    """The accounting record of one written NoteSequence row."""
    return RowStat(row["reader"], int(row["num_notes"]), round(row["total_time"] * 1e6))
