"""The fallback chain: try readers in order, record the hops, check content, file each tune.

Format-agnostic: ``parse.parse_file`` runs it over a single-piece format's readers and
``abc_tunes.parse_abc`` over each tune of a tunebook. Everything lands in the one
:class:`~pipelines.readers.common.FileResult` of the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipelines.readers.common import (
    ContentError,
    FileResult,
    Limits,
    NoteSequence,
    ParsedTune,
    TuneFailure,
)


def check_content(sequence: NoteSequence, limits: Limits) -> None:
    """Raise :class:`ContentError` for content no model should train on."""
    for tempo in sequence.tempos:
        if not limits.min_qpm <= tempo.qpm <= limits.max_qpm:
            raise ContentError(
                "absurd_tempo",
                f"tempo {tempo.qpm:g} qpm at {tempo.time:g} s outside "
                f"[{limits.min_qpm:g}, {limits.max_qpm:g}]",
            )
    if not math.isfinite(sequence.total_time) or sequence.total_time > limits.max_duration_s:
        raise ContentError(
            "too_long", f"total_time {sequence.total_time:g} s > {limits.max_duration_s:g} s"
        )


def _error_text(reader: str, exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:300]
    return f"{reader}: {type(exc).__name__}: {message}"


@dataclass
class ChainOutcome:
    reader: str | None  # the reader that produced sequences with notes, None if none did
    sequences: list[NoteSequence]
    errors: list[str]
    empty: bool  # some reader parsed the input but found no notes in it
    hops: tuple[str, ...] = ()  # the fallbacks taken on the way ("a->b")


def try_chain(
    chain: Sequence[tuple[str, Callable[[], list[NoteSequence]]]], result: FileResult
) -> ChainOutcome:
    """Try readers in order, recording each hop; a parse without notes also means "try the next".

    ``MemoryError`` is not a reader failure: it goes up to the parse worker, which reports the
    file as over its memory cap instead of trying a (usually hungrier) fallback.
    """
    errors: list[str] = []
    hops: list[str] = []
    empty = False
    for position, (name, call) in enumerate(chain):
        if position:
            hops.append(f"{chain[position - 1][0]}->{name}")
            result.fallbacks.append(hops[-1])
        try:
            sequences = call()
        except MemoryError:
            raise
        except Exception as exc:  # every library raises its own types; all mean "try the next"
            errors.append(_error_text(name, exc))
            continue
        with_notes = [sequence for sequence in sequences if len(sequence.notes)]
        if with_notes:
            return ChainOutcome(name, with_notes, errors, False, tuple(hops))
        empty = True
        errors.append(f"{name}: parsed, but no notes")
    return ChainOutcome(None, [], errors, empty, tuple(hops))


def accept_tune(
    result: FileResult,
    index: int,
    outcome: ChainOutcome,
    sequence: NoteSequence,
    limits: Limits,
) -> None:
    """Run the content checks and file the tune as parsed or failed."""
    assert outcome.reader is not None
    try:
        check_content(sequence, limits)
    except ContentError as exc:
        result.failures.append(TuneFailure(index, exc.reason, str(exc)))
        return
    result.num_notes += len(sequence.notes)
    result.tunes.append(
        ParsedTune(index, outcome.reader, sequence.SerializeToString(), outcome.hops)
    )


def over_note_cap(result: FileResult, limits: Limits) -> bool:
    """Quarantine the whole file as ``too_large`` once its tunes pass the per-file note cap."""
    if result.num_notes <= limits.max_notes:
        return False
    result.reason = "too_large"
    result.detail = f"{result.num_notes}+ notes > max_notes {limits.max_notes}"
    result.tunes, result.failures = [], []
    return True
