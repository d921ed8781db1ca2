"""Helpers the per-family tests share (not collected as tests): building NoteSequences, running a
family's extraction and reading a variant's hyper-parameters the way Magenta's config tables list
them."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Any

from note_seq.protobuf import music_pb2

from modeling.families.base import Dropped, Extracted, HParams


def extract_all(
    extract: Callable[..., Iterable[Extracted | Dropped]], ns: Any, cfg: Any = None, **kw: Any
) -> tuple[list[Extracted], collections.Counter]:
    """Every example a family's ``extract`` yields for ``ns``, and its drops counted by reason."""
    out: list[Extracted] = []
    counts: collections.Counter = collections.Counter()
    for item in extract(ns, cfg, **kw):
        if isinstance(item, Dropped):
            counts[item.reason] += item.count
        else:
            out.append(item)
    return out, counts


def hparams_of(hparams: HParams, *names: str) -> tuple[Any, ...]:
    """The named hyper-parameters, in order, for one comparison against Magenta's values."""
    return tuple(getattr(hparams, name) for name in names)


def note_sequence(
    notes: list[tuple],
    ccs: list[tuple] = (),
    total: float | None = None,
    names: dict[int, str] | None = None,
) -> music_pb2.NoteSequence:
    """A NoteSequence of ``notes`` (pitch, start, end[, velocity, instrument, program, is_drum])
    and ``ccs`` (time, value[, instrument, number]); ``total`` defaults to the last note end."""
    ns = music_pb2.NoteSequence()
    for n in notes:
        pitch, start, end, vel, inst, prog, drum = (*n, *(80, 0, 0, False)[len(n) - 3 :])
        ns.notes.add(
            pitch=pitch,
            start_time=start,
            end_time=end,
            velocity=vel,
            instrument=inst,
            program=prog,
            is_drum=drum,
        )
    for c in ccs:
        time, value, inst, number = (*c, *(0, 64)[len(c) - 2 :])
        ns.control_changes.add(
            time=time, control_value=value, instrument=inst, control_number=number
        )
    for inst, name in (names or {}).items():
        ns.instrument_infos.add(instrument=inst, name=name)
    ns.total_time = total if total is not None else max((n.end_time for n in ns.notes), default=0.0)
    return ns
