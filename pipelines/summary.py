"""Summary columns of ``NOTESEQ_SCHEMA`` computed from one NoteSequence.

``pipelines.ingest`` stores these beside each serialized NoteSequence so that later stages
(``pipelines.examples``, reports, the studio) can select sequences -- "polyphonic with chords",
"has pedal" -- without deserialising every proto. Computed with numpy over the note arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from note_seq.protobuf import music_pb2

from modeling.music import PITCH_CLASS_NAMES

NoteSequence = music_pb2.NoteSequence

SUSTAIN_PEDAL = 64  # MIDI CC number
_PITCH_NAMES = PITCH_CLASS_NAMES
_OVERLAP_EPS = 1e-6  # seconds; notes that merely touch are not overlapping


def key_name(key: int, mode: int) -> str:
    """``KeySignature`` -> "C major" / "A minor" / "D dorian"; the bare tonic when unspecified."""
    tonic = _PITCH_NAMES[key % 12]
    if mode == NoteSequence.KeySignature.NOT_SPECIFIED:
        return tonic
    return f"{tonic} {NoteSequence.KeySignature.Mode.Name(mode).lower()}"


def is_polyphonic(
    starts: np.ndarray, ends: np.ndarray, groups: np.ndarray, eps: float = _OVERLAP_EPS
) -> bool:
    """True when two notes of the same group (instrument) overlap in time.

    Sorting by (group, start) and comparing each start with the running maximum end of the
    earlier notes of its group finds any overlap in O(n log n) without a Python loop.
    """
    if starts.size < 2:
        return False
    order = np.lexsort((starts, groups))
    s, e, g = starts[order], ends[order], groups[order]
    # Shift every group onto its own time range so one cumulative max never crosses groups.
    _, group_index = np.unique(g, return_inverse=True)
    span = float(max(e.max(), s.max()) - min(e.min(), s.min())) + 1.0
    offset = group_index * span
    running_end = np.maximum.accumulate(e + offset)
    same_group = g[1:] == g[:-1]
    return bool(np.any(same_group & (s[1:] + offset[1:] < running_end[:-1] - eps)))


def summarise(sequence: NoteSequence) -> dict[str, Any]:
    """The summary columns for one sequence (names and types as in ``NOTESEQ_SCHEMA``)."""
    # One pass over the protos (field access is the cost here), then numpy on the columns.
    columns = np.array(
        [
            (n.start_time, n.end_time, n.instrument, n.program, n.is_drum, n.velocity)
            for n in sequence.notes
        ],
        dtype=np.float64,
    ).reshape(-1, 6)
    count = columns.shape[0]
    starts, ends = columns[:, 0], columns[:, 1]
    instruments, programs, drums, velocities = columns[:, 2:].astype(np.int64).T
    # (instrument, program, is_drum) as one integer: 128 programs, 2 drum flags.
    identity = (instruments * 128 + programs) * 2 + drums
    num_instruments = int(np.unique(identity).size)

    signatures: list[str] = []
    for ts in sorted(sequence.time_signatures, key=lambda t: t.time):
        text = f"{ts.numerator}/{ts.denominator}"
        if text not in signatures:
            signatures.append(text)
    keys = sorted(sequence.key_signatures, key=lambda k: k.time)

    return {
        "num_notes": count,
        "total_time": float(sequence.total_time),
        "num_instruments": num_instruments,
        "is_polyphonic": is_polyphonic(starts, ends, instruments),
        "has_chords": any(
            a.annotation_type == NoteSequence.TextAnnotation.CHORD_SYMBOL and a.text != "N.C."
            for a in sequence.text_annotations
        ),
        "has_velocity_variation": bool(count and velocities.min() != velocities.max()),
        "has_pedal": any(cc.control_number == SUSTAIN_PEDAL for cc in sequence.control_changes),
        "time_signatures": signatures,
        "key": key_name(keys[0].key, keys[0].mode) if keys else "",
    }
