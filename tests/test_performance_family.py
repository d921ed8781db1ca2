"""Performance family: extraction rules, and parity of the vectorised encodings and controls with
note-seq's encoders and control signals, element-wise, on hand-made fixtures and seeded fuzz."""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from _families import hparams_of, note_sequence
from _family_reference import (
    DENSITY,
    HISTOGRAM,
    performance_from_indices,
    reference_encode,
    reference_held,
    reference_performances,
)
from note_seq.protobuf import music_pb2

from modeling.families import performance as Q
from modeling.families.base import Dropped, Encoding, Extracted
from modeling.families.performance.config import (
    NEUTRAL_PAD,
    NOTE_OFF,
    NOTE_ON,
    TIME_SHIFT,
    VELOCITY,
    PerformanceExtractConfig,
    num_classes,
)
from modeling.families.performance.controls import event_seconds, event_start_steps
from modeling.families.performance.decoding import (
    events_from_primer_melody,
    events_from_primer_pitches,
    scale_mask,
)
from modeling.families.performance.variants import (
    DENSITY_CONDITIONED,
    MULTICONDITIONED,
    PITCH_CONDITIONED,
)


def seq(
    notes: list[tuple[int, int, float, float]],
    *,
    program: int = 0,
    instrument: int = 0,
) -> music_pb2.NoteSequence:
    """NoteSequence from (pitch, velocity, start s, end s)."""
    return note_sequence([(p, a, b, v, instrument, program) for p, v, a, b in notes])


def ON(p: int) -> int:
    return NOTE_ON + p


def OFF(p: int) -> int:
    return NOTE_OFF + p


def SHIFT(steps: int) -> int:
    return TIME_SHIFT + steps - 1


def VEL(b: int) -> int:
    return VELOCITY + b - 1


NO_MIN = PerformanceExtractConfig(min_events=0)

# simultaneous notes, velocities on bin edges (1 -> bin 1, 127 -> 32, 64 -> 16), a 2.5 s gap
FIXTURE = [(60, 127, 0.0, 0.5), (64, 1, 0.0, 0.5), (67, 64, 3.0, 3.25)]
FIXTURE_EVENTS_V32 = [
    VEL(32),
    ON(60),
    VEL(1),
    ON(64),
    SHIFT(50),
    OFF(60),
    OFF(64),
    SHIFT(100),
    SHIFT(100),
    SHIFT(50),
    VEL(16),
    ON(67),
    SHIFT(25),
    OFF(67),
]


def extracted(
    ns: music_pb2.NoteSequence, cfg: PerformanceExtractConfig = NO_MIN, augment: bool = False
) -> list[Extracted]:
    return [x for x in Q.extract(ns, cfg, augment=augment) if isinstance(x, Extracted)]


def test_hand_written_events() -> None:
    (ex,) = extracted(seq(FIXTURE))
    assert ex.events.tolist() == FIXTURE_EVENTS_V32
    assert ex.events.dtype == np.int16 and (ex.transposition, ex.stretch) == (0, 1.0)
    (plain,) = extracted(seq(FIXTURE), PerformanceExtractConfig(min_events=0, num_velocity_bins=0))
    assert plain.events.tolist() == [e for e in FIXTURE_EVENTS_V32 if e < VELOCITY]


def test_index_space_is_note_seqs() -> None:
    from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding
    from note_seq.performance_lib import PerformanceEvent as Ev

    enc = PerformanceOneHotEncoding(num_velocity_bins=32)
    assert enc.num_classes == num_classes(32) == 388
    assert num_classes(0) == PerformanceOneHotEncoding().num_classes == 356
    for ev, index in [
        (Ev(Ev.NOTE_ON, 5), ON(5)),
        (Ev(Ev.NOTE_OFF, 127), OFF(127)),
        (Ev(Ev.TIME_SHIFT, 1), SHIFT(1)),
        (Ev(Ev.TIME_SHIFT, 100), SHIFT(100)),
        (Ev(Ev.VELOCITY, 1), VEL(1)),
        (Ev(Ev.VELOCITY, 32), VEL(32)),
    ]:
        assert enc.encode_event(ev) == index


# ------------------------------------------------------------------ encodings vs note-seq

ENCODINGS = {
    "performance": (0, False, False),
    "performance_with_dynamics": (32, False, False),
    "density_conditioned_performance_with_dynamics": (32, True, False),
    "pitch_conditioned_performance_with_dynamics": (32, False, True),
    "multiconditioned_performance_with_dynamics": (32, True, True),
}


def fuzz_events(rng: np.random.Generator, length: int, num_velocity_bins: int) -> np.ndarray:
    """Valid indices with many simultaneous notes, repeated NOTE_ONs, orphan NOTE_OFFs, shifts
    of every size and velocity changes."""
    kinds = rng.choice(4, size=length, p=[0.35, 0.3, 0.25, 0.1])
    pitch = rng.integers(36, 50, length)
    events = np.select(
        [kinds == 0, kinds == 1, kinds == 2],
        [ON(0) + pitch, OFF(0) + pitch, SHIFT(1) + rng.integers(0, 100, length)],
        VEL(1) + rng.integers(0, max(num_velocity_bins, 1), length),
    )
    if num_velocity_bins == 0:
        events = np.where(events >= VELOCITY, SHIFT(7), events)
    return events


def assert_encoding_parity(variant: str, sequences: list[np.ndarray]) -> int:
    """Our batched inputs/labels/controls == note-seq's, for every position of every sequence.
    Returns the number of positions compared."""
    bins, density, histogram = ENCODINGS[variant]
    enc = Q.VARIANTS[variant].encoding
    longest = max(len(s) for s in sequences)
    batch = torch.full((len(sequences), longest), NEUTRAL_PAD, dtype=torch.long)
    mask = torch.zeros_like(batch, dtype=torch.bool)
    for i, s in enumerate(sequences):
        batch[i, : len(s)] = torch.as_tensor(s)
        mask[i, : len(s)] = True
    cond = enc.conditions(batch, {"mask": mask})
    full = enc.inputs(batch[:, :-1], cond)
    y = enc.labels(batch, cond)[:, 1:]
    assert full.shape == (len(sequences), longest - 1, enc.input_size)
    # Magenta's columns first, then the pitches sounding after each event (checked on their own).
    magenta = enc.base
    x, held = full[..., : magenta.input_size], full[..., magenta.input_size :]
    assert held.shape[-1] == 256
    held[..., 128:] *= enc.steps_per_second  # seconds -> steps, as the reference counts them
    compared = 0
    for i, s in enumerate(sequences):
        perf = performance_from_indices(s.tolist(), bins)
        ref_x, ref_y = reference_encode(perf, bins, density, histogram)
        n = len(s) - 1
        assert np.array_equal(y[i, :n].numpy(), ref_y)
        got = x[i, :n].double().numpy()
        cap = enc.max_seconds * enc.steps_per_second  # ages are capped at the decoding's 5 s
        ref_held = np.asarray(reference_held(s[:n], enc.window))
        ref_held[:, 128:] = np.minimum(ref_held[:, 128:], cap)
        assert np.array_equal(held[i, :n].round().numpy(), ref_held)
        value = int(getattr(magenta, "density_value", False))  # ours, after Magenta's controls
        if value:
            col = magenta.control_size - 1
            want = np.log2(1 + cond["note_density"][i, 1 : n + 1].numpy())
            np.testing.assert_allclose(got[:, col], want, rtol=1e-6)
            got = np.delete(got, col, axis=1)
        width = magenta.input_size - value
        assert ref_x.shape == (n, width)
        one_hot_from = width - num_classes(bins)
        assert np.array_equal(got[:, one_hot_from:], ref_x[:, one_hot_from:])  # events exact
        if density:
            assert np.array_equal(got[:, :8], ref_x[:, :8])  # density bins exact
            ref_density = np.asarray(DENSITY.extract(perf))
            assert np.array_equal(cond["note_density"][i, : len(s)].numpy(), ref_density)
        if histogram:
            h0 = 8 if density else 0
            np.testing.assert_allclose(got[:, h0 : h0 + 12], ref_x[:, h0 : h0 + 12], atol=1e-7)
            exact = magenta.control_inputs(cond, 1, longest - 1)[i, :n, h0 : h0 + 12].numpy()
            np.testing.assert_allclose(exact, ref_x[:, h0 : h0 + 12], rtol=0, atol=1e-13)
            ref_hist = np.asarray(HISTOGRAM.extract(perf))
            np.testing.assert_allclose(
                cond["pitch_histogram"][i, : len(s)].numpy(), ref_hist, rtol=0, atol=1e-12
            )
        compared += n
    return compared


@pytest.mark.parametrize("variant", list(ENCODINGS))
def test_encoding_parity_on_fixtures(variant: str) -> None:
    bins = ENCODINGS[variant][0]
    cfg = PerformanceExtractConfig(min_events=0, num_velocity_bins=bins)
    dense = [(48 + (i % 24), 20 + (i * 7) % 100, 0.05 * i, 0.05 * i + 0.4) for i in range(150)]
    chords = [(p, 90, t, t + 1.7) for t in (0.0, 1.0, 7.5) for p in (60, 64, 67, 71)]
    sequences = [
        extracted(seq(FIXTURE), cfg)[0].events,
        extracted(seq(dense), cfg)[0].events,
        extracted(seq(chords), cfg)[0].events,
    ]
    assert assert_encoding_parity(variant, sequences) == sum(len(s) - 1 for s in sequences)


@pytest.mark.parametrize("variant", list(ENCODINGS))
def test_encoding_parity_on_seeded_fuzz(variant: str) -> None:
    rng = np.random.default_rng(20240611)
    bins = ENCODINGS[variant][0]
    sequences = [fuzz_events(rng, int(n), bins) for n in rng.integers(2, 300, 12)]
    assert assert_encoding_parity(variant, sequences) > 1000


def test_mask_keeps_padding_out_of_the_controls() -> None:
    rng = np.random.default_rng(3)
    events = torch.as_tensor(fuzz_events(rng, 120, 32))[None]
    enc = MULTICONDITIONED
    alone = enc.conditions(events, {})
    padded = torch.cat([events, torch.full((1, 40), ON(60))], dim=1)  # worst pad: NOTE_ONs
    mask = torch.arange(160)[None] < 120
    masked = enc.conditions(padded, {"mask": mask})
    for key in alone:
        assert torch.equal(masked[key][:, :120], alone[key])
    unmasked = enc.conditions(padded, {})
    assert not torch.equal(unmasked["note_density"][:, :120], alone["note_density"])


def test_inputs_need_conditioning_one_longer_than_events() -> None:
    enc = DENSITY_CONDITIONED
    events = torch.tensor([[ON(60), SHIFT(10), OFF(60)]])
    cond = enc.conditions(events, {})
    with pytest.raises(ValueError, match="one longer"):
        enc.inputs(events, cond)
    with pytest.raises(ValueError, match="needs conditioning 'note_density'"):
        enc.inputs(events[:, :-1], {})


def test_variants_match_magenta() -> None:
    ours = {n: int(getattr(v.encoding.base, "density_value", False)) for n, v in Q.VARIANTS.items()}
    assert [n for n, value in ours.items() if value] == [
        "density_conditioned_performance_with_dynamics",
        "multiconditioned_performance_with_dynamics",
    ]  # their density as a number, one column after Magenta's controls
    sizes = {
        name: (
            v.encoding.base.input_size - ours[name],
            v.encoding.num_classes,
            v.encoding.event_space,
        )
        for name, v in Q.VARIANTS.items()
    }
    assert all(
        v.encoding.input_size == v.encoding.base.input_size + 256 for v in Q.VARIANTS.values()
    )
    assert sizes == {
        "performance": (356, 356, "performance:v0"),
        "performance_with_dynamics": (388, 388, "performance:v32"),
        "density_conditioned_performance_with_dynamics": (8 + 388, 388, "performance:v32"),
        "pitch_conditioned_performance_with_dynamics": (12 + 388, 388, "performance:v32"),
        "multiconditioned_performance_with_dynamics": (20 + 388, 388, "performance:v32"),
    }
    for v in Q.VARIANTS.values():
        h = v.hparams
        names = ("batch_size", "rnn_layer_sizes", "dropout_keep_prob", "clip_norm", "learning_rate")
        assert hparams_of(h, *names) == (64, (512, 512, 512), 1.0, 3.0, 1e-3)
        assert v.family == Q.NAME == "performance"
        assert isinstance(v.encoding, Encoding)
    assert Q.event_space(PerformanceExtractConfig()) == "performance:v32"


# ------------------------------------------------------------------ extraction rules


def test_extraction_matches_note_seq_pipeline_with_augmentation() -> None:
    notes = [
        (48 + (i * 5) % 30, 30 + (i * 11) % 90, 0.21 * i, 0.21 * i + 0.5) for i in range(330)
    ]  # ~70 s: three 30 s chunks, the last one short
    ns = seq(notes)
    cfg = PerformanceExtractConfig()
    ours = extracted(ns, cfg, augment=True)
    ref, _ = reference_performances(
        ns, stretches=cfg.stretch_factors, transpositions=cfg.transpositions
    )
    assert [(x.stretch, x.transposition, x.events.tolist()) for x in ours] == [
        (r.stretch, r.transposition, r.events) for r in ref
    ]
    assert {(x.stretch, x.transposition) for x in ours} == set(
        itertools.product(cfg.stretch_factors, cfg.transpositions)
    )
    plain = extracted(ns, cfg, augment=False)
    assert {(x.stretch, x.transposition) for x in plain} == {(1.0, 0)}
    assert [x.events.tolist() for x in plain] == [
        x.events.tolist() for x in ours if (x.stretch, x.transposition) == (1.0, 0)
    ]


def test_part_subsets_add_thinner_textures_after_the_first_chord() -> None:
    """``part_subsets`` (training augmentation, not Magenta's): each subset is extracted as its
    own sequence, its parts' notes after the first chord, which keeps every part; a subset with
    all the notes, or none of its own, adds nothing; the eval split (augment=False) gets none."""
    four = seq(
        [(72 - 7 * v + i % 3, 80, 0.5 * i, 0.5 * i + 0.5) for i in range(40) for v in range(4)]
    )
    for k, note in enumerate(four.notes):
        note.part = k % 4  # soprano 0 .. bass 3, one note each per half second
    cfg = replace(NO_MIN, transpositions=(0, 2), stretch_factors=(1.0,))
    subsets = ((0,), (0, 3), (0, 1, 2, 3), (7,))
    ours = extracted(four, replace(cfg, part_subsets=subsets), augment=True)

    def only(parts: tuple[int, ...]) -> list[list[int]]:
        sub = copy.deepcopy(four)
        del sub.notes[:]
        sub.notes.extend(n for n in four.notes if n.part in parts or n.start_time == 0.0)
        return [x.events.tolist() for x in extracted(sub, cfg, augment=True)]

    whole = [x.events.tolist() for x in extracted(four, cfg, augment=True)]
    assert [x.events.tolist() for x in ours] == whole + only((0,)) + only((0, 3))
    soprano = only((0,))[0]
    assert sum(e < NOTE_OFF for e in soprano) == 4 + 39  # the first chord, then one voice
    plain = extracted(four, replace(cfg, part_subsets=subsets), augment=False)
    assert [x.events.tolist() for x in plain] == [x.events.tolist() for x in extracted(four, cfg)]
    with pytest.raises(ValueError, match="at least one part"):
        PerformanceExtractConfig(part_subsets=((0,), ()))


def test_drums_keep_their_pitch_when_transposing() -> None:
    ns = seq([(60, 80, 0.0, 0.3), (62, 80, 0.0, 0.3), (64, 80, 0.5, 0.9)])
    drum = ns.notes.add(pitch=61, velocity=80, start_time=0.0, end_time=0.2, is_drum=True)
    assert drum.is_drum
    ours = extracted(ns, NO_MIN, augment=True)
    ref, _ = reference_performances(
        ns, stretches=NO_MIN.stretch_factors, transpositions=NO_MIN.transpositions, min_events=0
    )
    assert [(x.stretch, x.transposition, x.events.tolist()) for x in ours] == [
        (r.stretch, r.transposition, r.events) for r in ref
    ]


def test_thirty_second_splits_min_and_max_events() -> None:
    notes = [(60 + i % 12, 80, 0.1 * i, 0.1 * i + 0.05) for i in range(650)]  # 65 s, 10 notes/s
    out = list(Q.extract(seq(notes), PerformanceExtractConfig(), augment=False))
    kept = [x for x in out if isinstance(x, Extracted)]
    # chunks [0, 30), [30, 60) truncated to 512 events; [60, 65) keeps its 200 events
    assert [len(x.events) for x in kept] == [512, 512, 200]
    assert out.count(Dropped("performances_truncated")) == 2
    assert out.count(Dropped("performances_discarded_too_short")) == 0
    tail = [(60, 80, 0.0, 0.05)] * 1 + [(62, 80, 60.5 + 0.1 * i, 60.55 + 0.1 * i) for i in range(5)]
    out = list(Q.extract(seq(tail), PerformanceExtractConfig(), augment=False))
    assert Dropped("performances_discarded_too_short") in out  # 5 notes: 20 events < 32


def test_sustain_pedal_extends_notes() -> None:
    ns = seq([(60, 80, 0.0, 0.2), (64, 80, 1.0, 1.2)])
    ns.control_changes.add(time=0.1, control_number=64, control_value=127)
    ns.control_changes.add(time=0.8, control_number=64, control_value=0)
    (held,) = extracted(ns)
    assert held.events.tolist()[:4] == [VEL(20), ON(60), SHIFT(80), OFF(60)]
    (dry,) = extracted(ns, PerformanceExtractConfig(min_events=0, apply_sustain=False))
    assert dry.events.tolist()[:4] == [VEL(20), ON(60), SHIFT(20), OFF(60)]


def test_instrument_names_select_tracks() -> None:
    ns = seq([(72, 80, 0.0, 0.5)], instrument=0)
    ns.notes.add(pitch=48, velocity=50, start_time=0.0, end_time=9.0, instrument=2)
    ns.instrument_infos.add(instrument=0, name="MELODY")
    ns.instrument_infos.add(instrument=2, name="PIANO")
    ns.total_time = 9.0
    cfg = PerformanceExtractConfig(min_events=0, instrument_names=("piano",))
    (only_piano,) = extracted(ns, cfg)
    assert ON(72) not in only_piano.events.tolist() and ON(48) in only_piano.events.tolist()
    none = PerformanceExtractConfig(min_events=0, instrument_names=("BRIDGE",))
    assert list(Q.extract(ns, none, augment=False)) == [
        Dropped("performances_discarded_no_matching_instrument")
    ]
    (both,) = extracted(ns)
    assert {ON(72), ON(48)} <= set(both.events.tolist())


def test_more_than_one_program_and_range_are_counted() -> None:
    ns = seq([(60, 80, 0.0, 0.5)])
    ns.notes.add(pitch=62, velocity=80, start_time=0.0, end_time=0.5, program=5)
    assert list(Q.extract(ns, NO_MIN, augment=False)) == [
        Dropped("performances_discarded_more_than_1_program")
    ]
    high = list(Q.extract(seq([(126, 80, 0.0, 0.5)]), NO_MIN, augment=True))
    assert high.count(Dropped("skipped_due_to_range_exceeded")) == 5 * 2  # +2, +3 per stretch
    assert {x.transposition for x in high if isinstance(x, Extracted)} == {-3, -2, -1, 0, 1}


def test_empty_input_is_counted() -> None:
    assert list(Q.extract(music_pb2.NoteSequence(), NO_MIN, augment=False)) == [
        Dropped("performances_discarded_empty")
    ]


# ------------------------------------------------------------------ time, decoding, generation


def test_event_seconds_and_clock() -> None:
    (ex,) = extracted(seq(FIXTURE))
    events = torch.as_tensor(ex.events)[None]
    secs = event_seconds(events)
    assert secs.sum().item() == pytest.approx(3.25)
    assert secs[0, 4].item() == pytest.approx(0.5) and secs[0, 0].item() == 0.0
    clock = event_start_steps(events)
    assert clock.shape == (1, len(ex.events) + 1) and clock[0, -1].item() == 325
    assert clock[0, :6].tolist() == [0, 0, 0, 0, 0, 50]


def test_to_note_sequence_round_trip() -> None:
    (ex,) = extracted(seq(FIXTURE))
    out = Q.to_note_sequence(ex.events, {}, max_note_duration=None)
    got = sorted(
        (n.pitch, n.velocity, round(n.start_time, 6), round(n.end_time, 6)) for n in out.notes
    )
    # velocities come back as the lowest velocity of their bin: 1 + 4 * (bin - 1)
    assert got == [(60, 125, 0.0, 0.5), (64, 1, 0.0, 0.5), (67, 61, 3.0, 3.25)]
    hanging = Q.to_note_sequence(np.array([ON(60)] + [SHIFT(100)] * 8), {})
    assert hanging.notes[0].end_time == pytest.approx(5.0)  # Magenta's 5 s cap
    with pytest.raises(ValueError, match="outside"):
        Q.to_note_sequence(np.array([400]), {})
    with pytest.raises(ValueError, match="outside"):
        Q.to_note_sequence(np.array([VEL(1)]), {}, num_velocity_bins=0)


def test_primer_events() -> None:
    events = events_from_primer_pitches([60, 64])
    assert events.tolist() == [VEL(25), ON(60), ON(64), SHIFT(50), OFF(60), OFF(64)]
    melody = events_from_primer_melody([60, -2, -1, -2], num_velocity_bins=0)
    assert melody.tolist() == [ON(60), SHIFT(25), OFF(60)]
    with pytest.raises(ValueError, match="MIDI pitch"):
        events_from_primer_pitches([-1])


def magenta_controls(events: np.ndarray, values: list, total_steps: int) -> list:
    """Magenta's generator: control k = value of segment min(clock_k * n // total, n - 1)."""
    clock, out = 0, []
    for k in range(len(events) + 1):
        out.append(values[min(clock * len(values) // total_steps, len(values) - 1)])
        if k < len(events) and SHIFT(1) <= events[k] <= SHIFT(100):
            clock += int(events[k]) - SHIFT(1) + 1
    return out


def test_control_from_request_follows_magentas_schedule() -> None:
    rng = np.random.default_rng(7)
    events = fuzz_events(rng, 200, 32)
    total = int(event_start_steps(torch.as_tensor(events)[None])[0, -1]) + 50
    enc = MULTICONDITIONED
    densities = [1.5, 8.0, 30.0]
    hists = [[1] * 12, [2, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1]]
    cond = enc.control_from_request(
        torch.as_tensor(events)[None],
        notes_per_second=densities,
        pitch_class_histogram=hists,
        total_steps=total,
    )
    assert cond["note_density"].shape == (1, 201)
    assert cond["note_density"][0].tolist() == magenta_controls(events, densities, total)
    assert cond["pitch_histogram"][0].tolist() == [
        [float(v) for v in h] for h in magenta_controls(events, hists, total)
    ]
    x = enc.inputs(torch.as_tensor(events)[None], cond)
    assert x.shape == (1, 200, 409 + 256)  # controls, event one-hot, held notes
    # the input row t carries the control of position t + 1, encoded like note-seq does
    t = 150
    expect_bin = DENSITY.encoder.events_to_input([cond["note_density"][0, t + 1].item()], 0)
    assert x[0, t, :8].tolist() == expect_bin
    hist = cond["pitch_histogram"][0, t + 1].tolist()
    np.testing.assert_allclose(
        x[0, t, 8:20].numpy(), HISTOGRAM.encoder.events_to_input([hist], 0), atol=1e-7
    )
    # then (not Magenta's) the density itself: log2(1 + notes per second), inside the bin
    value = np.log2(1 + cond["note_density"][0, t + 1].item())
    assert x[0, t, 20].item() == pytest.approx(value, rel=1e-6)


def test_control_from_request_defaults_and_errors() -> None:
    events = torch.tensor([[ON(60), SHIFT(100), OFF(60)]])
    cond = MULTICONDITIONED.control_from_request(events)
    assert cond["note_density"].tolist() == [[15.0] * 4]
    assert cond["pitch_histogram"][0, 0].tolist() == [1.0] * 12
    single = DENSITY_CONDITIONED.control_from_request(events, notes_per_second=4)
    assert set(single) == {"note_density"} and single["note_density"].tolist() == [[4.0] * 4]
    with pytest.raises(ValueError, match="not conditioned on pitch_class_histogram"):
        DENSITY_CONDITIONED.control_from_request(events, pitch_class_histogram=[1] * 12)
    with pytest.raises(ValueError, match="12 numbers"):
        PITCH_CONDITIONED.control_from_request(events, pitch_class_histogram=[1, 2, 3])
    with pytest.raises(ValueError, match=">= 0"):
        DENSITY_CONDITIONED.control_from_request(events, notes_per_second=-1)
    with pytest.raises(ValueError, match="total_steps"):
        DENSITY_CONDITIONED.control_from_request(events, notes_per_second=[1, 2])


def test_scale_mask() -> None:
    mask = scale_mask([0, 4, 7], num_velocity_bins=32)
    assert mask.shape == (388,) and mask.dtype == torch.bool
    assert mask[ON(60)] and mask[ON(64)] and not mask[ON(61)]
    assert mask[OFF(61)] and mask[SHIFT(5)] and mask[VEL(3)]


def test_held_notes_need_only_the_newest_window_of_events() -> None:
    """The generation engine feeds the newest ``window`` events: the held counts and ages it
    gets equal those of the whole history, for windows shorter and longer than the notes held."""
    from modeling.families.performance.controls import held_notes

    events = torch.as_tensor(fuzz_events(np.random.default_rng(3), 400, 32))[None]
    for window in (1, 7, 64, 399, 400, 1000):
        full = torch.cat(held_notes(events, window), dim=-1)[0]
        assert full.numpy().astype(float).tolist() == reference_held(events[0].numpy(), window)
        for t in range(0, 400, 13):
            newest = events[:, max(0, t - window + 1) : t + 1]
            assert torch.equal(torch.cat(held_notes(newest, window), dim=-1)[0, -1], full[t])
    count, age = held_notes(events, 400)
    assert int(count.sum(-1).max()) > 3 and int(count.max()) > 1  # chords and unisons
    assert int(age.max()) > 100  # a note held over a second


@pytest.mark.parametrize("seed", range(4))
def test_longest_note_of_a_split_is_what_note_seq_decodes(seed: int) -> None:
    """The quality bar's data longest note, vectorised over a flat split, equals the longest
    note of each example decoded by note-seq: unisons close oldest first, surplus NOTE_OFFs are
    ignored, notes left open end with their example, every note is capped at 5 s."""
    from modeling.families.performance.evaluation import decode_events, longest_note_seconds

    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(6):
        n = int(rng.integers(1, 80))
        kind = rng.integers(0, 3, n)
        pitch = rng.integers(60, 63, n)  # three pitches: unisons and stray releases
        shift = rng.integers(1, 101, n)
        examples.append(
            np.where(kind == 0, NOTE_ON + pitch, np.where(kind == 1, NOTE_OFF + pitch, 255 + shift))
        )
    examples.append(np.array([NOTE_ON + 60] + [TIME_SHIFT + 99] * 7))  # open for 7 s: capped
    offsets = np.cumsum([0, *map(len, examples)])
    want = 0.0
    for events in examples:
        ns = decode_events(events, {}, event_space="performance:v0", qpm=120.0)
        want = max(want, *(n.end_time - n.start_time for n in ns.notes), 0.0)
    got = longest_note_seconds(np.concatenate(examples), offsets)
    assert got == pytest.approx(want)
    for i, events in enumerate(examples[:-1]):  # and each example alone
        ns = decode_events(events, {}, event_space="performance:v0", qpm=120.0)
        alone = max((n.end_time - n.start_time for n in ns.notes), default=0.0)
        assert longest_note_seconds(events, np.array([0, len(events)])) == pytest.approx(alone), i
