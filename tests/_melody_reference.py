"""note-seq's own melody / lead-sheet encoders, the checks that ours equal them, and the small
NoteSequence / event-list builders the melody and improv tests share (not collected as tests).

The references are note-seq objects used exactly as Magenta's pipelines use them:
``encode(events)`` (or ``encode(chords, melody)`` for the conditional encoders) gives the
training inputs/labels, ``events_to_input(events, T - 1)`` the last row (used by generation),
``class_index_to_event`` the decoding. Our side follows the training contract in
docs/ARCHITECTURE.md: ``x = enc.inputs(E[:, :-1], cond)``, ``y = enc.labels(E, cond)[:, 1:]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from note_seq import chords_encoder_decoder, encoder_decoder, melody_encoder_decoder
from note_seq.protobuf import music_pb2

from modeling.families import improv, melody
from modeling.families.base import Cond, Encoding
from modeling.families.chords import chord_columns
from modeling.families.melody.extract import (
    indices_to_melody_events,
    melody_events_to_indices,
    parse_event_space,
)

MelodyOneHotEncoding = melody_encoder_decoder.MelodyOneHotEncoding


def reference_melody_encoder(variant: str) -> encoder_decoder.EventSequenceEncoderDecoder:
    """note-seq's encoder for a melody variant (Magenta's melody_rnn_model.default_configs)."""
    if variant == "basic_rnn":
        return encoder_decoder.OneHotEventSequenceEncoderDecoder(MelodyOneHotEncoding(48, 84))
    if variant == "mono_rnn":
        return encoder_decoder.OneHotEventSequenceEncoderDecoder(MelodyOneHotEncoding(0, 128))
    if variant == "lookback_rnn":
        return encoder_decoder.LookbackEventSequenceEncoderDecoder(MelodyOneHotEncoding(48, 84))
    if variant in ("attention_rnn", "edm_rnn"):
        return melody_encoder_decoder.KeyMelodyEncoderDecoder(min_note=48, max_note=84)
    raise KeyError(variant)


def reference_improv_encoder(
    variant: str,
) -> encoder_decoder.ConditionalEventSequenceEncoderDecoder:
    """note-seq's conditional encoder for an improv variant (improv_rnn_model.default_configs)."""
    triad = encoder_decoder.OneHotEventSequenceEncoderDecoder(
        chords_encoder_decoder.TriadChordOneHotEncoding()
    )
    onehot = encoder_decoder.OneHotEventSequenceEncoderDecoder(MelodyOneHotEncoding(48, 84))
    if variant == "basic_improv":
        return encoder_decoder.ConditionalEventSequenceEncoderDecoder(triad, onehot)
    if variant == "attention_improv":
        return encoder_decoder.ConditionalEventSequenceEncoderDecoder(
            triad, melody_encoder_decoder.KeyMelodyEncoderDecoder(min_note=48, max_note=84)
        )
    if variant == "chord_pitches_improv":
        return encoder_decoder.ConditionalEventSequenceEncoderDecoder(
            chords_encoder_decoder.PitchChordsEncoderDecoder(), onehot
        )
    raise KeyError(variant)


@dataclass
class ParityCount:
    """How much was compared (reported by the corpus test)."""

    sequences: int = 0
    positions: int = 0
    values: int = 0

    def add(self, positions: int, values: int) -> None:
        self.sequences += 1
        self.positions += positions
        self.values += values


def _first_mismatch(ours: np.ndarray, ref: np.ndarray) -> str:
    bad = np.argwhere(ours != ref)
    pos = tuple(int(i) for i in bad[0])
    return (
        f"first mismatch at {pos}: ours {ours[pos]!r} vs note-seq {ref[pos]!r} ({len(bad)} total)"
    )


def check_melody_parity(
    variant: str,
    events: Sequence[int],
    count: ParityCount | None = None,
    *,
    last_row: bool = True,
    decode_every: int = 1,
) -> None:
    """Assert our encoding of one melody (Magenta event values) equals note-seq's, everywhere."""
    enc = melody.VARIANTS[variant].encoding
    ref = reference_melody_encoder(variant)
    lo, hi = parse_event_space(enc.event_space)
    events = list(events)
    e = torch.as_tensor(melody_events_to_indices(events, lo, hi)).long().unsqueeze(0)
    _compare(
        enc,
        ref.encode(events),
        e,
        {},
        count,
        lambda t: ref.events_to_input(events, t) if last_row else None,
    )
    _check_decoding(
        enc, e, {}, lambda c, t: ref.class_index_to_event(c, events[:t]), lo, decode_every
    )


def check_improv_parity(
    variant: str,
    events: Sequence[int],
    figures: Sequence[str],
    count: ParityCount | None = None,
    *,
    last_row: bool = True,
    decode_every: int = 1,
) -> None:
    """Assert our chord-conditioned encoding of one lead sheet equals note-seq's, everywhere.

    ``figures`` are the chord symbols per step (note-seq's ChordProgression events). The last
    input row needs the chord one step past the end, so it is checked on a sheet whose final
    chord is repeated once more (what generation does: conditioning is T + 1 long).
    """
    enc = improv.VARIANTS[variant].encoding
    ref = reference_improv_encoder(variant)
    events, figures = list(events), list(figures)
    e = torch.as_tensor(melody_events_to_indices(events)).long().unsqueeze(0)
    cols = chord_columns(figures)
    stored = {k: torch.as_tensor(v).long().unsqueeze(0) for k, v in cols.items()}
    cond = enc.conditions(e, stored)
    extended = figures + figures[-1:]
    ext_cols = chord_columns(extended)
    ext_cond = enc.conditions(
        e, {k: torch.as_tensor(v).long().unsqueeze(0) for k, v in ext_cols.items()}
    )

    def last(t: int) -> list[float] | None:
        return ref.events_to_input(extended, events, t) if last_row else None

    _compare(enc, ref.encode(figures, events), e, cond, count, last, last_cond=ext_cond)
    _check_decoding(
        enc, e, cond, lambda c, t: ref.class_index_to_event(c, events[:t]), 48, decode_every
    )


def _compare(
    enc: Encoding,
    encoded: tuple[list, list],
    e: torch.Tensor,
    cond: Cond,
    count: ParityCount | None,
    last_input: Callable[[int], list[float] | None],
    last_cond: Cond | None = None,
) -> None:
    """Training rows (``inputs(E[:, :-1])``, ``labels(E)[:, 1:]``) and the last row vs note-seq."""
    # Magenta's columns come first; an improv encoding's chord tones (12) and repeat tones
    # (12 per lookback distance) follow them
    ours = 12 * bool(getattr(enc, "chord_tones", False)) + getattr(enc, "_repeat_columns", 0)
    width = enc.input_size - ours
    ref_x = np.asarray(encoded[0], dtype=np.float32).reshape(-1, width)
    ref_y = np.asarray(encoded[1], dtype=np.int64)
    x = enc.inputs(e[:, :-1], cond)[0].numpy()[:, :width]
    y = enc.labels(e, cond)[0, 1:].numpy()
    assert x.shape == ref_x.shape, (x.shape, ref_x.shape)
    assert np.array_equal(x, ref_x), "inputs: " + _first_mismatch(x, ref_x)
    assert np.array_equal(y, ref_y), "labels: " + _first_mismatch(y, ref_y)
    t = e.shape[1]
    row = last_input(t - 1)
    if row is not None:
        full = enc.inputs(e, last_cond if last_cond is not None else cond)[0, -1].numpy()[:width]
        ref_row = np.asarray(row, dtype=np.float32)
        assert np.array_equal(full, ref_row), "last row: " + _first_mismatch(full, ref_row)
    if count is not None:
        count.add(x.shape[0], int(x.size + y.size))


def _check_decoding(
    enc: Encoding,
    e: torch.Tensor,
    cond: Cond,
    ref_decode: Callable[[int, int], int],
    min_note: int,
    every: int = 1,
) -> None:
    """decode_label(labels[t], history) == events[t] (every ``every``-th t and the lookback
    edges), and every class decodes as note-seq's class_index_to_event does."""
    labels = enc.labels(e, cond)[0]
    t_len = e.shape[1]
    edges = {15, 16, 17, 31, 32, 33, t_len - 1}
    for t in sorted(set(range(1, t_len, every)) | {t for t in edges if 0 < t < t_len}):
        got = int(enc.decode_label(labels[t : t + 1], e[:, :t])[0])
        assert got == int(e[0, t]), f"decode at {t}: {got} != {int(e[0, t])}"
    # Every class at a few history lengths (before, between and after the lookbacks).
    for t in sorted({1, min(15, t_len), min(16, t_len), min(31, t_len), t_len} - {0}):
        classes = torch.arange(enc.num_classes)
        ours = enc.decode_label(classes, e[:, :t].expand(enc.num_classes, t))
        theirs = [ref_decode(int(c), t) for c in classes]
        ours_events = indices_to_melody_events(ours.numpy(), min_note)
        assert ours_events == theirs, f"class decoding after {t} steps differs"


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------

NE, OFF = -2, -1


def random_events(rng: np.random.Generator, length: int, lo: int = 48, hi: int = 84) -> list[int]:
    """Random melody events with many exact 1- and 2-bar repeats (what lookbacks look for)."""
    out: list[int] = []
    for i in range(length):
        r = rng.random()
        if r < 0.4:
            out.append(NE)
        elif r < 0.5:
            out.append(OFF)
        elif r < 0.65 and i >= 16:
            out.append(out[i - 16])
        elif r < 0.75 and i >= 32:
            out.append(out[i - 32])
        else:
            out.append(int(rng.integers(lo, hi)))
    return out


QPM = 120.0
STEP = 60.0 / QPM / 4  # seconds per 16th note


def make_sequence(
    notes: list[tuple[int, int, int]],
    *,
    instrument: int = 0,
    numerator: int = 4,
    denominator: int = 4,
    is_drum: bool = False,
) -> music_pb2.NoteSequence:
    """A NoteSequence from (pitch, start_step, end_step) notes at 120 qpm, 16th-note steps."""
    ns = music_pb2.NoteSequence()
    ns.tempos.add(qpm=QPM)
    ns.time_signatures.add(numerator=numerator, denominator=denominator)
    ns.ticks_per_quarter = 220
    for pitch, start, end in notes:
        ns.notes.add(
            pitch=pitch,
            start_time=start * STEP,
            end_time=end * STEP,
            velocity=80,
            instrument=instrument,
            is_drum=is_drum,
        )
    ns.total_time = max((n.end_time for n in ns.notes), default=0.0)
    return ns


def scale_melody(bars: int, root: int = 60, start_bar: int = 0) -> list[tuple[int, int, int]]:
    """Quarter notes walking a major scale from ``root`` for ``bars`` 4/4 bars."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12, 11, 9, 7, 5, 4, 2]
    return [
        (root + steps[i % len(steps)], 16 * start_bar + 4 * i, 16 * start_bar + 4 * i + 3)
        for i in range(4 * bars)
    ]
