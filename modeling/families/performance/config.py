"""The performance index space, the extraction config and instrument selection.

Stored events are ``PerformanceOneHotEncoding(num_velocity_bins)`` indices; the offsets below
name its ranges (see the package docstring). Everything else in the package builds on them;
:func:`select_instruments` is shared by both extraction paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from note_seq import constants, performance_controls, performance_lib
from note_seq.protobuf import music_pb2

NAME = "performance"

STEPS_PER_SECOND = 100
MAX_SHIFT_STEPS = performance_lib.DEFAULT_MAX_SHIFT_STEPS  # 100 -> TIME_SHIFT up to 1 s
NOTE_ON = 0
NOTE_OFF = 128
TIME_SHIFT = 256  # index of a shift by 1 step
VELOCITY = 256 + MAX_SHIFT_STEPS  # index of velocity bin 1
MAX_NOTE_DURATION_SECONDS = 5.0  # Magenta's generator ends notes left hanging after 5 s

DENSITY_BIN_RANGES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
DENSITY_WINDOW_SECONDS = 3.0
HISTOGRAM_WINDOW_SECONDS = 5.0
HISTOGRAM_PRIOR_COUNT = 0.01
DEFAULT_NOTE_DENSITY = performance_controls.DEFAULT_NOTE_DENSITY  # 15 notes/s
DEFAULT_PITCH_HISTOGRAM = tuple(performance_controls.DEFAULT_PITCH_HISTOGRAM)  # all 1.0

NEUTRAL_PAD = NOTE_OFF  # NOTE_OFF(0): moves no time and starts no note, so it alters no control


def num_classes(num_velocity_bins: int) -> int:
    """356 without velocity, 356 + bins with it."""
    return VELOCITY + num_velocity_bins


def event_space_name(num_velocity_bins: int) -> str:
    return f"performance:v{num_velocity_bins}"


@dataclass(frozen=True)
class PerformanceExtractConfig:
    """Magenta's performance extraction rules (``performance_pipeline``), one field per rule.

    ``num_velocity_bins`` must match the variant's event space (0 for ``performance``, 32 for
    the ``*_with_dynamics`` variants).
    """

    num_velocity_bins: int = 32
    steps_per_second: int = STEPS_PER_SECOND
    apply_sustain: bool = True
    stretch_factors: tuple[float, ...] = (0.95, 0.975, 1.0, 1.025, 1.05)  # when augment=True
    transpositions: tuple[int, ...] = (-3, -2, -1, 0, 1, 2, 3)  # when augment=True
    min_pitch: int = constants.MIN_MIDI_PITCH  # a transposition leaving this range is skipped
    max_pitch: int = constants.MAX_MIDI_PITCH
    split_hop_seconds: float = 30.0  # 0 = no splitting
    min_events: int = 32  # shorter performances are discarded
    max_events: int = 512  # longer performances are truncated
    instrument_names: tuple[str, ...] = ()  # keep only tracks with these names; () = all
    # Not Magenta's. When augment=True, each listed set of parts (NoteSequence ``part``, e.g.
    # a chorale's soprano 0 and bass 3) also becomes its own performance: the same music in a
    # sparser texture, for the density control to learn from (see :func:`.extract.extract`).
    part_subsets: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        subsets = tuple(tuple(int(p) for p in s) for s in self.part_subsets)
        if any(not s for s in subsets):
            raise ValueError("part_subsets: each subset needs at least one part")
        object.__setattr__(self, "part_subsets", subsets)


INFO_COUNTERS: frozenset[str] = frozenset({"performances_truncated"})
"""Counter names yielded as :class:`Dropped` that discard nothing (they only count an event)."""

EXTRACT_CONFIG = PerformanceExtractConfig


def event_space(cfg: PerformanceExtractConfig) -> str:
    """The stored-event vocabulary an extraction config produces."""
    return event_space_name(cfg.num_velocity_bins)


def select_instruments(
    ns: music_pb2.NoteSequence, names: Iterable[str]
) -> music_pb2.NoteSequence | None:
    """Only the notes / control changes of tracks whose name is in ``names`` (case-insensitive).

    ``names`` empty returns ``ns`` itself; no matching track returns None. ``total_time`` becomes
    the end of the kept notes, so another track's tail does not become silent examples.
    """
    ids = _instrument_ids(ns, names)
    if ids is None:
        return ns
    if not ids:
        return None
    out = music_pb2.NoteSequence()
    out.CopyFrom(ns)
    del out.notes[:]
    del out.control_changes[:]
    del out.pitch_bends[:]
    out.notes.extend(n for n in ns.notes if n.instrument in ids)
    out.control_changes.extend(c for c in ns.control_changes if c.instrument in ids)
    out.pitch_bends.extend(b for b in ns.pitch_bends if b.instrument in ids)
    out.total_time = max((n.end_time for n in out.notes), default=0.0)
    return out


def _instrument_ids(ns: music_pb2.NoteSequence, names: Iterable[str]) -> set[int] | None:
    """Instrument numbers of the tracks named ``names`` (case-insensitive); None = no filter."""
    wanted = {n.strip().casefold() for n in names}
    if not wanted:
        return None
    return {i.instrument for i in ns.instrument_infos if i.name.strip().casefold() in wanted}
