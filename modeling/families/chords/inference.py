"""Chord inference for chordless sources: note-seq's ``infer_chords_for_sequence`` restated
with array operations (constant model built once, a Viterbi that exploits the transition
matrix's structure), identical output.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from note_seq import chord_inference, constants, sequences_lib
from note_seq.protobuf import music_pb2

from modeling.families.chords.columns import CHORD_SYMBOL, NO_CHORD

_NUM_KEYS = 12
_NUM_CHORDS = len(chord_inference._CHORDS)  # N.C. + 12 roots x 8 kinds = 97
_NUM_STATES = len(chord_inference._KEY_CHORDS)  # (key, chord), key-major: 1164
_RELATIVE_FUZZ = 8.0  # candidate margin, in units of the spacing of the largest |sum| (see below)


def transition_matrix(
    key_chord_distribution: np.ndarray, key_change_prob: float, chord_change_prob: float
) -> np.ndarray:
    """note-seq's ``_key_chord_transition_distribution`` as array operations (same products in
    the same order: bit-identical, see tests/test_chords.py), 100x faster than its
    Python double loop over 1164 x 1164 key-chord pairs."""
    num_chords = len(chord_inference._CHORDS)
    n = len(chord_inference._KEY_CHORDS)  # itertools.product(keys, chords): key-major order
    key, chord = np.divmod(np.arange(n), num_chords)
    dist = np.asarray(key_chord_distribution, dtype=np.float64)
    to = dist[key, chord][None, :]  # P(key_2, chord_2), for every row
    from_prev = dist[key[None, :], chord[:, None]]  # P(key_2, chord_1)
    changed = (1 - key_change_prob) * (chord_change_prob * (to + from_prev / (num_chords - 1)))
    same_key = key[:, None] == key[None, :]
    same_chord = chord[:, None] == chord[None, :]
    kept = np.float64(1 - key_change_prob) * np.float64(1 - chord_change_prob)
    return np.where(
        same_key,
        np.where(same_chord, kept, changed),
        np.float64(key_change_prob / 11) * to,
    )


@dataclass(frozen=True)
class InferenceModel:
    """The constant half of note-seq's chord inference for one parameter set, split for the
    structured Viterbi in :func:`key_chord_viterbi`.

    note-seq rebuilds all of it on every call (a 1164 x 1164 Python double loop, then its log).
    Its key-chord transition log-likelihood has two kinds of entries: within a key (a 97 x 97
    block per key) and across keys, where the value depends only on the destination state
    (``key_change_prob / 11 * P(chord | key)``), whatever the source. ``across_keys`` holds that
    per-destination value; it is None if the matrix turns out not to have this structure, in
    which case note-seq's own dense Viterbi is used.
    """

    key_chord_loglik: np.ndarray  # (12, 97): log P(chord | key)
    initial: np.ndarray  # (1164,): -log(12) + log P(chord | key), note-seq's first two terms
    transition_loglik: np.ndarray  # (1164, 1164): note-seq's matrix, for the dense fallback
    within_key: np.ndarray  # (12, 97 to, 97 from): the diagonal blocks, transposed
    across_keys: np.ndarray | None  # (12, 97): entry of any row from another key
    across_abs_max: float

    @classmethod
    def build(cls, key_chord_loglik: np.ndarray, transition_loglik: np.ndarray) -> InferenceModel:
        """Split note-seq's log-likelihoods (12 x 97 and 1164 x 1164) into the model's parts."""
        blocks = transition_loglik.reshape(_NUM_KEYS, _NUM_CHORDS, _NUM_KEYS, _NUM_CHORDS)
        keys = np.arange(_NUM_KEYS)
        within = np.ascontiguousarray(blocks[keys, :, keys, :].transpose(0, 2, 1))
        # Row 0 of key k+1 (mod 12) comes from another key; every other such row must agree.
        across = blocks[(keys + 1) % _NUM_KEYS, 0, keys, :]  # (key to, chord to)
        other = keys[:, None] != keys[None, :]  # (key from, key to)
        agrees = (blocks == across[None, None, :, :]).all(axis=1)  # (key from, key to, chord)
        uniform = bool(agrees[other].all())
        initial = -np.log(12) + key_chord_loglik.reshape(-1)
        for arr in (key_chord_loglik, initial, transition_loglik, within, across):
            arr.setflags(write=False)
        return cls(
            key_chord_loglik=key_chord_loglik,
            initial=initial,
            transition_loglik=transition_loglik,
            within_key=within,
            across_keys=across if uniform else None,
            across_abs_max=float(np.abs(across).max()),
        )


@functools.lru_cache(maxsize=8)
def inference_model(
    key_change_prob: float, chord_change_prob: float, chord_pitch_out_of_key_prob: float
) -> InferenceModel:
    """The constants for one parameter set, built once (note-seq's own functions where they are
    cheap, :func:`transition_matrix` for the one that is not) and kept read-only."""
    dist = chord_inference._key_chord_distribution(chord_pitch_out_of_key_prob)
    trans = np.log(transition_matrix(dist, key_change_prob, chord_change_prob))
    return InferenceModel.build(np.log(dist), trans)


def key_chord_viterbi(chord_frame_loglik: np.ndarray, model: InferenceModel) -> list[int]:
    """note-seq's ``_key_chord_viterbi`` state path (indices into ``_KEY_CHORDS``), bit for bit.

    note-seq forms, per frame, the full 1164 x 1164 matrix ``prev[i] + T[i, j]`` and takes the
    first argmax of each column. Here each column's best source is found in two groups whose
    union provably holds every maximiser:

    * same key: the 97 x 97 diagonal block, added and argmaxed as note-seq does;
    * other keys: ``T[i, j]`` is one constant ``c_j``, and float addition is monotone, so the
      maximum is ``fl(max prev + c_j)``; only sources within a few ulps of the best other-key
      ``prev`` can round to it. Those few candidates (usually one or two) are evaluated
      exactly, in index order.

    The winner of the two groups is the larger value, or on an exact tie the lower state index
    (numpy's argmax keeps the first maximum). Values are the same float sums note-seq computes,
    so the likelihoods carried to the next frame, and hence every later choice, are identical.
    """
    if model.across_keys is None:
        path = chord_inference._key_chord_viterbi(
            chord_frame_loglik, model.key_chord_loglik, model.transition_loglik
        )
        return [key * _NUM_CHORDS + chord_inference._CHORDS.index(chord) for key, chord in path]
    num_frames = chord_frame_loglik.shape[0]
    across = model.across_keys
    key_of = np.arange(_NUM_STATES) // _NUM_CHORDS
    block_base = (np.arange(_NUM_KEYS) * _NUM_CHORDS)[:, None]
    paths = np.zeros((num_frames, _NUM_STATES), dtype=np.int64)
    prev = model.initial + np.tile(chord_frame_loglik[0], _NUM_KEYS)
    for frame in range(1, num_frames):
        blocks = prev.reshape(_NUM_KEYS, _NUM_CHORDS)
        within = model.within_key + blocks[:, None, :]  # (key, chord to, chord from)
        within_arg = within.argmax(axis=2)
        within_max = np.take_along_axis(within, within_arg[:, :, None], axis=2)[:, :, 0]
        within_arg += block_base
        # Best other-key source of key k is the best block maximum outside k: at least the
        # second-best block maximum. Sources farther below it than the margin cannot round to
        # the maximum (the margin exceeds the rounding error of any of these sums).
        block_max = np.sort(blocks.max(axis=1))
        margin = _RELATIVE_FUZZ * np.spacing(np.abs(prev).max() + model.across_abs_max)
        cand = np.flatnonzero(prev >= block_max[-2] - margin)
        sums = across[:, :, None] + prev[cand][None, None, :]  # (key to, chord to, candidate)
        own_key = key_of[cand][None, :] == np.arange(_NUM_KEYS)[:, None]  # (key to, candidate)
        np.copyto(sums, -np.inf, where=own_key[:, None, :])
        across_pos = sums.argmax(axis=2)
        across_max = np.take_along_axis(sums, across_pos[:, :, None], axis=2)[:, :, 0]
        across_arg = cand[across_pos]
        best = np.where(
            within_max > across_max,
            within_arg,
            np.where(across_max > within_max, across_arg, np.minimum(within_arg, across_arg)),
        )
        paths[frame] = best.reshape(-1)
        prev = np.maximum(within_max, across_max).reshape(-1) + np.tile(
            chord_frame_loglik[frame], _NUM_KEYS
        )
    path = [int(np.argmax(prev))]
    for frame in range(num_frames, 1, -1):
        path.append(int(paths[frame - 1, path[-1]]))
    return path[::-1]


def note_pitch_vectors(sequence: music_pb2.NoteSequence, seconds_per_frame: float) -> np.ndarray:
    """note-seq's ``sequence_note_pitch_vectors`` for fixed-length frames, without the per-note
    Python loop: every (frame, pitch class, seconds) contribution is listed in note-seq's order
    (note by note; start, middle and end frame) and summed with ``np.add.at``, which adds
    repeated indices one after another, so each cell sees the same float additions."""
    num_frames = math.ceil(sequence.total_time / seconds_per_frame)
    boundaries = seconds_per_frame * np.arange(1, num_frames)
    x = np.zeros([num_frames, 12])
    unpitched = constants.UNPITCHED_PROGRAMS
    notes = [
        (n.start_time, n.end_time, n.pitch)
        for n in sequence.notes
        if not n.is_drum and n.program not in unpitched
    ]
    if notes:
        start_t, end_t, pitch = (np.array(c) for c in zip(*notes, strict=True))
        start = np.searchsorted(boundaries, start_t, side="right")  # bisect_right
        end = np.searchsorted(boundaries, end_t, side="left")  # bisect_left
        single = start >= end
        count = np.where(single, 1, end - start + 1)
        note = np.repeat(np.arange(len(notes)), count)
        offset = np.arange(len(note)) - np.repeat(np.cumsum(count) - count, count)
        frame = start[note] + offset
        is_first, is_last = offset == 0, offset == count[note] - 1
        padded = np.concatenate([[0.0], boundaries, [0.0]])  # index f+1: boundary f
        value = np.where(
            single[note],
            end_t[note] - start_t[note],
            np.where(
                is_first,
                padded[frame + 1] - start_t[note],
                np.where(is_last, end_t[note] - padded[frame], padded[frame + 1] - padded[frame]),
            ),
        )
        np.add.at(x, (frame, pitch[note] % 12), value)
    x_norm = np.linalg.norm(x, axis=1)
    nonzero_frames = x_norm > 0
    x[nonzero_frames, :] /= x_norm[nonzero_frames, np.newaxis]
    return x


@functools.lru_cache(maxsize=1)
def _chord_pitch_vectors_t() -> np.ndarray:
    """note-seq's unit chord pitch vectors, transposed (its emission matrix, built once)."""
    return chord_inference._chord_pitch_vectors().T


def infer_chords(
    qns: music_pb2.NoteSequence,
    chords_per_bar: int | None = None,
    *,
    key_change_prob: float = 0.001,
    chord_change_prob: float = 0.5,
    chord_pitch_out_of_key_prob: float = 0.01,
    chord_note_concentration: float = 100.0,
    add_key_signatures: bool = False,
) -> None:
    """Add inferred CHORD_SYMBOL annotations to a quantised NoteSequence (in place).

    Exactly note-seq's ``chord_inference.infer_chords_for_sequence`` (same defaults, same
    annotations, same exceptions: ``chord_inference.ChordInferenceError`` subclasses), about
    20x faster on real MIDI: the constant model is built once (:func:`inference_model`), the
    pitch vectors without a per-note loop (:func:`note_pitch_vectors`) and the Viterbi over
    key-chord states exploits the transition matrix's structure (:func:`key_chord_viterbi`).
    ``tests/test_chords.py`` checks the annotations are identical. Sequences not quantised
    relative to tempo (beat-annotated) go to note-seq's function unchanged. Unlike note-seq,
    inferred key changes are not logged.
    """
    if not sequences_lib.is_relative_quantized_sequence(qns):
        chord_inference.infer_chords_for_sequence(
            qns,
            chords_per_bar,
            key_change_prob,
            chord_change_prob,
            chord_pitch_out_of_key_prob,
            chord_note_concentration,
            add_key_signatures,
        )
        return
    for ta in qns.text_annotations:
        if ta.annotation_type == CHORD_SYMBOL:
            raise chord_inference.SequenceAlreadyHasChordsError(
                f"NoteSequence already has chord(s): {ta.text}"
            )
    if chords_per_bar is None:
        time_signature = (qns.time_signatures[0].numerator, qns.time_signatures[0].denominator)
        chords_per_bar = chord_inference._DEFAULT_TIME_SIGNATURE_CHORDS_PER_BAR.get(time_signature)
        if chords_per_bar is None:
            raise chord_inference.UncommonTimeSignatureError(
                "No default chords per bar for time signature: "
                f"({time_signature[0]}, {time_signature[1]})"
            )
    steps_per_chord_float = sequences_lib.steps_per_bar_in_quantized_sequence(qns) / chords_per_bar
    if steps_per_chord_float != round(steps_per_chord_float):
        raise chord_inference.NonIntegerStepsPerChordError(
            f"Non-integer number of steps per chord: {steps_per_chord_float:f}"
        )
    steps_per_chord = int(steps_per_chord_float)
    steps_per_second = sequences_lib.steps_per_quarter_to_steps_per_second(
        qns.quantization_info.steps_per_quarter, qns.tempos[0].qpm
    )
    seconds_per_chord = steps_per_chord / steps_per_second
    num_chords = math.ceil(qns.total_time / seconds_per_chord)
    if num_chords == 0:
        raise chord_inference.EmptySequenceError("NoteSequence is empty.")
    if num_chords > chord_inference._MAX_NUM_CHORDS:
        raise chord_inference.SequenceTooLongError(
            f"NoteSequence too long for chord inference: {num_chords} frames"
        )

    vectors = note_pitch_vectors(qns, seconds_per_chord)
    chord_frame_loglik = chord_note_concentration * np.dot(vectors, _chord_pitch_vectors_t())
    model = inference_model(key_change_prob, chord_change_prob, chord_pitch_out_of_key_prob)
    path = key_chord_viterbi(chord_frame_loglik, model)

    if add_key_signatures:
        del qns.key_signatures[:]
    names = chord_inference._PITCH_CLASS_NAMES
    current_key = current_figure = None
    for frame, state in enumerate(path):
        key, chord = divmod(state, _NUM_CHORDS)
        time = frame * seconds_per_chord
        if key != current_key:
            if add_key_signatures:
                ks = qns.key_signatures.add()
                ks.time = time
                ks.key = key
            current_key = key
        if chord == 0:
            figure = NO_CHORD
        else:
            root, kind = chord_inference._CHORDS[chord]
            figure = f"{names[root]}{kind}"
        if figure != current_figure:
            ta = qns.text_annotations.add()
            ta.time = time
            ta.quantized_step = frame * steps_per_chord
            ta.text = figure
            ta.annotation_type = CHORD_SYMBOL
            current_figure = figure
