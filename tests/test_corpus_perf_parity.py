"""Corpus parity: the polyphony and performance families on real music.

* Bach chorales (music21's bundled corpus, read with note-seq's MusicXML reader): our vectorised
  polyphony extraction equals the slow step-by-step spec reference, with and without
  augmentation, and decoding + re-extraction reproduces the events.
* A fixed seeded sample of POP909 (PIANO track) and ASAP performances: our extraction equals
  Magenta's pipeline run with note-seq, and our batched inputs / labels / controls equal
  note-seq's encoders at every position (multiconditioned variant: event one-hot, velocity,
  density bins and pitch histogram at once).

Each test prints its figures (run with ``-s``).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import note_seq
import numpy as np
import pytest
import torch
from _family_reference import (
    performance_from_indices,
    reference_encode,
    reference_held,
    reference_performances,
    reference_polyphony,
    reference_step_context,
)
from note_seq.musicxml_parser import MusicXMLParseError
from note_seq.musicxml_reader import MusicXMLConversionError

from modeling.families import performance as Q
from modeling.families import polyphony as P
from modeling.families.base import Dropped, Extracted
from modeling.families.performance.config import NEUTRAL_PAD, PerformanceExtractConfig, num_classes
from modeling.families.performance.encoding import controls_of
from modeling.families.performance.fast import _Notes
from modeling.families.polyphony.encoding import CONTEXT_WINDOW
from modeling.families.polyphony.extract import PolyphonyExtractConfig

pytestmark = pytest.mark.corpus

SAMPLE_SEED = 909
SAMPLE_SIZE = 20

POLY_REASONS = {  # our counter names -> the reference's
    "polyphonic_tracks_discarded_too_short": "too_short",
    "polyphonic_tracks_discarded_too_long": "too_long",
    "polyphonic_tracks_discarded_more_than_1_program": "program",
    "skipped_due_to_range_exceeded": "range",
    "sequences_discarded_because_multiple_time_signatures": "MultipleTimeSignatureError",
    "sequences_discarded_because_multiple_tempos": "MultipleTempoError",
    "sequences_discarded_because_bad_time_signature": "BadTimeSignatureError",
    "sequences_discarded_because_negative_time": "NegativeTimeError",
}


def read_chorales() -> tuple[list[note_seq.NoteSequence], int]:
    """All chorales of music21's corpus; note-seq reads the MusicXML, music21 (via MIDI) is the
    fallback. Returns the sequences and how many needed the fallback."""
    from music21 import corpus

    sequences, fallbacks = [], 0
    for name in corpus.chorales.Iterator(returnType="filename"):
        found = corpus.getWork(name)
        paths = found if isinstance(found, list) else [found]
        path = next((p for p in paths if p.suffix in (".mxl", ".xml", ".musicxml")), paths[0])
        try:
            sequences.append(note_seq.musicxml_file_to_sequence_proto(str(path)))
        except (MusicXMLConversionError, MusicXMLParseError):
            fallbacks += 1
            with tempfile.TemporaryDirectory() as tmp:
                midi = Path(tmp) / "chorale.mid"
                corpus.parse(name).write("midi", fp=str(midi))
                sequences.append(note_seq.midi_file_to_note_sequence(str(midi)))
    return sequences, fallbacks


def test_bach_chorales_polyphony_matches_the_spec_reference() -> None:
    t0 = time.perf_counter()
    chorales, fallbacks = read_chorales()
    t_read = time.perf_counter() - t0
    assert len(chorales) >= 350 and fallbacks <= len(chorales) // 20

    cfg = PolyphonyExtractConfig()
    examples, augmented, compared_events = 0, 0, 0
    drops: Counter[str] = Counter()
    t_ours = t_ref = 0.0
    for i, ns in enumerate(chorales):
        augment = i % 8 == 0  # every 8th chorale also through the 9 transpositions
        t = time.perf_counter()
        ours = list(P.extract(ns, cfg, augment=augment))
        t_ours += time.perf_counter() - t
        t = time.perf_counter()
        ref, ref_counts = reference_polyphony(
            ns, transpositions=cfg.transpositions if augment else (0,)
        )
        t_ref += time.perf_counter() - t
        got = [(x.transposition, x.events.tolist()) for x in ours if isinstance(x, Extracted)]
        assert got == ref, f"chorale {i}"
        ours_counts = Counter(POLY_REASONS[x.reason] for x in ours if isinstance(x, Dropped))
        assert ours_counts == Counter(ref_counts), f"chorale {i}"
        drops.update(x.reason for x in ours if isinstance(x, Dropped))
        for amount, events in got:
            compared_events += len(events)
            if augment:
                augmented += 1
                continue
            examples += 1
            if examples <= 12:  # the step-context inputs on real chorales, by hand
                context = P.VARIANTS["polyphony"].encoding.extra(
                    torch.tensor([events]), torch.float32
                )
                np.testing.assert_allclose(
                    context[0].numpy(), reference_step_context(events, CONTEXT_WINDOW), atol=1e-6
                )
            rebuilt = P.to_note_sequence(np.array(events), {})
            again = list(P.extract(rebuilt, PolyphonyExtractConfig(min_steps=0), augment=False))
            assert [x.events.tolist() for x in again] == [events], f"round trip {i}"
            assert amount == 0
    print(
        f"\nchorales: {len(chorales)} read in {t_read:.1f}s ({fallbacks} via music21); "
        f"{examples} examples + {augmented} augmented copies; {compared_events} events equal "
        f"to the reference; drops {dict(drops)}; ours {t_ours:.2f}s vs reference "
        f"{t_ref:.2f}s"
    )
    assert examples >= 100


def sample_files(root: Path, pattern: str) -> list[Path]:
    files = sorted(root.glob(pattern))
    assert files, f"no files match {root}/{pattern}"
    return sorted(random.Random(SAMPLE_SEED).sample(files, min(SAMPLE_SIZE, len(files))))


POP909 = ("pop909/POP909", "[0-9][0-9][0-9]/[0-9][0-9][0-9].mid", ("PIANO",))
ASAP = ("asap", "**/*.mid", ())


@pytest.mark.parametrize(
    ("source", "variant"),
    [
        (POP909, "multiconditioned_performance_with_dynamics"),
        (ASAP, "multiconditioned_performance_with_dynamics"),
        (POP909, "performance"),
    ],
    ids=["pop909-multiconditioned", "asap-multiconditioned", "pop909-performance"],
)
def test_performance_extraction_and_encoding_match_note_seq(
    shared_data: Path, source: tuple[str, str, tuple[str, ...]], variant: str
) -> None:
    corpus, pattern, instruments = source
    files = sample_files(shared_data / corpus, pattern)
    enc = Q.VARIANTS[variant].encoding
    bins = enc.num_classes - num_classes(0)
    conditioned = controls_of(enc) is not None
    cfg = PerformanceExtractConfig(num_velocity_bins=bins, instrument_names=instruments)
    kept: list[np.ndarray] = []
    drops: Counter[str] = Counter()
    unreadable = 0
    t_read = t_ours = t_ref = 0.0
    for path in files:
        t = time.perf_counter()
        try:
            ns = note_seq.midi_file_to_note_sequence(str(path))
        except note_seq.MIDIConversionError:
            unreadable += 1
            continue
        t_read += time.perf_counter() - t
        t = time.perf_counter()
        ours = list(Q.extract(ns, cfg, augment=False))
        t_ours += time.perf_counter() - t
        t = time.perf_counter()
        ref, ref_counts = reference_performances(
            ns, num_velocity_bins=bins, instrument_names=instruments
        )
        t_ref += time.perf_counter() - t
        got = [x.events.tolist() for x in ours if isinstance(x, Extracted)]
        assert got == [r.events for r in ref], path.name
        ours_counts = Counter(x.reason for x in ours if isinstance(x, Dropped))
        assert ours_counts == Counter(ref_counts), path.name
        drops.update(ours_counts)
        kept.extend(x.events for x in ours if isinstance(x, Extracted))
    assert unreadable <= 1 and len(kept) >= 40

    # every kept example, in one padded batch, through our encoding (the training path)
    t = time.perf_counter()
    longest = max(len(e) for e in kept)
    batch = torch.full((len(kept), longest), NEUTRAL_PAD, dtype=torch.long)
    mask = torch.zeros_like(batch, dtype=torch.bool)
    for i, e in enumerate(kept):
        batch[i, : len(e)] = torch.from_numpy(e.astype(np.int64))
        mask[i, : len(e)] = True
    cond = enc.conditions(batch, {"mask": mask})
    x = enc.inputs(batch[:, :-1], cond)
    y = enc.labels(batch, cond)[:, 1:]
    controls = enc.control_inputs(cond, 1, longest - 1) if conditioned else None
    t_batch = time.perf_counter() - t

    positions = 0
    t = time.perf_counter()
    for i, events in enumerate(kept):
        n = len(events) - 1
        perf = performance_from_indices(events.tolist(), bins)
        ref_x, ref_y = reference_encode(perf, bins, density=conditioned, histogram=conditioned)
        assert np.array_equal(y[i, :n].numpy(), ref_y)
        width, magenta = (enc.base.control_size if conditioned else 0), enc.base.input_size
        ref_width = 20 if conditioned else 0  # Magenta's controls; ours follow them
        assert np.array_equal(
            x[i, :n, width:magenta].numpy(), ref_x[:, ref_width:]
        )  # event one-hot
        if i < 3:  # the held-note columns after them (slow by hand: three examples)
            held = x[i, :n, magenta:].double().numpy()
            held[:, 128:] *= enc.steps_per_second
            ref_held = np.asarray(reference_held(events[:n], enc.window))
            ref_held[:, 128:] = np.minimum(ref_held[:, 128:], enc.max_seconds * 100)
            assert np.array_equal(held.round(), ref_held)
        if conditioned:
            assert np.array_equal(x[i, :n, :8].numpy(), ref_x[:, :8])  # density bins
            np.testing.assert_allclose(
                controls[i, :n, 8:20].numpy(), ref_x[:, 8:20], rtol=0, atol=1e-13
            )  # pitch histogram (float64)
        positions += n
    t_enc_ref = time.perf_counter() - t
    print(
        f"\n{corpus} {variant}: {len(files)} files (read {t_read:.1f}s), {len(kept)} "
        f"examples ({sum(len(e) for e in kept)} events) equal to note-seq's pipeline; drops "
        f"{dict(drops)}; extraction ours {t_ours:.2f}s vs reference {t_ref:.2f}s; batch "
        f"encoding {tuple(x.shape)} in {t_batch:.2f}s; all {positions} positions equal to "
        f"note-seq's encoders ({t_enc_ref:.1f}s)"
    )
    assert positions > 10_000


def test_augmentation_only_on_request(shared_data: Path) -> None:
    """Training-split augmentation yields the 5 x 7 grid per chunk; eval yields the original."""
    path = sample_files(shared_data / POP909[0], POP909[1])[0]
    ns = note_seq.midi_file_to_note_sequence(str(path))
    cfg = PerformanceExtractConfig(instrument_names=("PIANO",))
    plain = [x for x in Q.extract(ns, cfg, augment=False) if isinstance(x, Extracted)]
    aug = [x for x in Q.extract(ns, cfg, augment=True) if isinstance(x, Extracted)]
    grid = Counter((x.stretch, x.transposition) for x in aug)
    assert {(x.stretch, x.transposition) for x in plain} == {(1.0, 0)}
    assert set(grid) == {(s, t) for s in cfg.stretch_factors for t in cfg.transpositions}
    base = [x.events.tolist() for x in aug if (x.stretch, x.transposition) == (1.0, 0)]
    assert base == [x.events.tolist() for x in plain]
    for (stretch, amount), n in grid.items():
        assert n == grid[(stretch, 0)], (stretch, amount)  # same chunks for every transposition
    print(f"\naugmentation of {path.name}: {len(plain)} examples -> {len(aug)}")


FAST_SAMPLE = 8


@pytest.mark.parametrize("bins", [0, 32])
@pytest.mark.parametrize("source", [POP909, ASAP], ids=["pop909", "asap"])
def test_fast_extraction_equals_the_note_seq_path_with_augmentation(
    shared_data: Path, source: tuple[str, str, tuple[str, ...]], bins: int
) -> None:
    """Every stretch x chunk x transposition, as stored int16 bytes, and every counter."""
    corpus, pattern, instruments = source
    files = sample_files(shared_data / corpus, pattern)[:FAST_SAMPLE]
    cfg = PerformanceExtractConfig(num_velocity_bins=bins, instrument_names=instruments)
    compared = arrays = 0
    t_fast = t_slow = 0.0
    for path in files:
        try:
            ns = note_seq.midi_file_to_note_sequence(str(path))
        except note_seq.MIDIConversionError:
            continue
        arrays += isinstance(_Notes.of(ns, cfg), _Notes)
        t = time.perf_counter()
        fast = list(Q.extract(ns, cfg, augment=True))
        t_fast += time.perf_counter() - t
        t = time.perf_counter()
        slow = list(Q.extract(ns, cfg, augment=True, fast=False))
        t_slow += time.perf_counter() - t
        key = [
            (type(x).__name__, x.reason)
            if isinstance(x, Dropped)
            else (x.stretch, x.transposition, x.events.dtype.str, x.events.tobytes())
            for x in fast
        ]
        assert key == [
            (type(x).__name__, x.reason)
            if isinstance(x, Dropped)
            else (x.stretch, x.transposition, x.events.dtype.str, x.events.tobytes())
            for x in slow
        ], path.name
        compared += sum(isinstance(x, Extracted) for x in fast)
    print(
        f"\n{corpus} v{bins}: {compared} augmented examples identical from {len(files)} files "
        f"({arrays} on the array path); fast {t_fast:.2f}s vs note-seq {t_slow:.2f}s"
    )
    assert arrays >= len(files) // 2 and compared > 1000
