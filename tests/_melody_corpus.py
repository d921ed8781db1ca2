"""Per-file work of tests/test_corpus_melody_parity.py (a module so spawned workers can import it).

``check_file`` reads one corpus file with the project's readers, runs the melody, mono and improv
extractions and compares every example with note-seq's encoders (see the test's docstring for
what is compared where). It raises AssertionError on the first difference and otherwise returns a
:class:`FileReport` of counts and times, which the test merges and prints.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from _melody_reference import (
    ParityCount,
    check_improv_parity,
    check_melody_parity,
    reference_improv_encoder,
)
from note_seq import chords_encoder_decoder
from note_seq.protobuf import music_pb2

from modeling.families import improv, melody
from modeling.families.base import Dropped, Extracted
from modeling.families.chords import QUALITY_OTHER, columns_to_figures
from modeling.families.improv.extract import TRANSPOSITIONS
from modeling.families.melody.extract import MONO_EXTRACT, indices_to_melody_events
from pipelines.readers import parse_file

torch.set_num_threads(1)  # small tensors; threads only contend with the other worker

DECODE_EVERY = 64  # decoding checked at every 64th position + the lookback edges


@dataclass(frozen=True)
class CorpusFile:
    corpus: str
    path: str


@dataclass
class FileReport:
    read: dict[str, Counter] = field(default_factory=dict)
    examples: Counter = field(default_factory=Counter)  # (corpus, set) -> n
    drops: Counter = field(default_factory=Counter)  # (corpus, set, reason) -> n
    parity: dict[tuple[str, str], ParityCount] = field(default_factory=dict)
    refused_triads: Counter = field(default_factory=Counter)  # corpus -> lead sheets
    seconds: Counter = field(default_factory=Counter)  # (corpus, phase) -> s

    def count(self, variant: str, corpus: str) -> ParityCount:
        return self.parity.setdefault((variant, corpus), ParityCount())

    @staticmethod
    def merge(reports: list[FileReport]) -> FileReport:
        out = FileReport()
        for r in reports:
            for corpus, c in r.read.items():
                out.read.setdefault(corpus, Counter()).update(c)
            out.examples.update(r.examples)
            out.drops.update(r.drops)
            out.refused_triads.update(r.refused_triads)
            out.seconds.update(r.seconds)
            for key, p in r.parity.items():
                q = out.parity.setdefault(key, ParityCount())
                q.sequences += p.sequences
                q.positions += p.positions
                q.values += p.values
        return out

    def summary_lines(self) -> list[str]:
        lines = []
        for corpus in sorted(self.read):
            lines.append(f"[{corpus}] read: {dict(self.read[corpus])}")
            for kind in ("melody", "mono", "improv", "improv_original"):
                drops = {
                    reason: n
                    for (c, k, reason), n in sorted(self.drops.items())
                    if c == corpus and k == kind
                }
                lines.append(
                    f"[{corpus}] {kind}: {self.examples[(corpus, kind)]} examples"
                    + (f"; counters {drops}" if drops else "")
                )
            if self.refused_triads[corpus]:
                lines.append(
                    f"[{corpus}] lead sheets with non-triad chords (both sides refuse "
                    f"the triad encoding): {self.refused_triads[corpus]}"
                )
            for (variant, c), p in sorted(self.parity.items()):
                if c == corpus:
                    lines.append(
                        f"[{corpus}] parity {variant}: {p.sequences} sequences, "
                        f"{p.positions} positions, {p.values} values equal"
                    )
            secs = {
                phase: round(s, 1) for (c, phase), s in sorted(self.seconds.items()) if c == corpus
            }
            lines.append(f"[{corpus}] cpu seconds: {secs}")
        return lines


def _collect(report: FileReport, corpus: str, kind: str, items) -> list[Extracted]:
    out = []
    for item in items:
        if isinstance(item, Dropped):
            report.drops[(corpus, kind, item.reason)] += item.count
        else:
            out.append(item)
    report.examples[(corpus, kind)] += len(out)
    return out


def _check_transposed(original: Extracted, moved: Extracted) -> None:
    """Another key of one lead sheet: chords and melody moved by its transposition."""
    k = moved.transposition
    a, b = original.cond, moved.cond
    chord = a["chord_root"] >= 0
    assert np.array_equal(b["chord_root"] >= 0, chord)
    for name in ("chord_root", "chord_bass"):
        assert np.array_equal(b[name][chord], (a[name][chord].astype(int) + k) % 12), name
    assert np.array_equal(a["chord_quality"], b["chord_quality"])
    masks = a["chord_pitches"].astype(int)
    rotated = ((masks << (k % 12)) | (masks >> (12 - k % 12))) & 0xFFF
    assert np.array_equal(b["chord_pitches"], rotated)
    ea, eb = original.events.astype(int), moved.events.astype(int)
    assert np.array_equal(ea < 2, eb < 2) and np.array_equal(ea[ea < 2], eb[ea < 2])
    notes = ea >= 2
    assert np.array_equal((eb[notes] - ea[notes] - k) % 12, np.zeros(int(notes.sum()), int))


def _is_triad_only(cond) -> bool:
    """No non-triad chord at steps 1.. (step 0's chord conditions no input row)."""
    return not (cond["chord_quality"][1:] == QUALITY_OTHER).any()


def check_file(f: CorpusFile) -> FileReport:
    report = FileReport()
    read = report.read.setdefault(f.corpus, Counter())
    t0 = time.process_time()
    result = parse_file(Path(f.path).read_bytes(), f.path)
    if not result.tunes:
        read[f"failed:{result.reason}"] += 1
        return report
    read["ok"] += 1
    for tune in result.tunes:
        read[f"reader:{tune.reader}"] += 1
    sequences = [music_pb2.NoteSequence.FromString(t.sequence) for t in result.tunes]
    report.seconds[(f.corpus, "read")] += time.process_time() - t0

    attention = "edm_rnn" if f.corpus == "edm" else "attention_rnn"
    for ns in sequences:
        t0 = time.process_time()
        mel = _collect(report, f.corpus, "melody", melody.extract(ns))
        mono = _collect(report, f.corpus, "mono", melody.extract(ns, MONO_EXTRACT))
        sheets = _collect(report, f.corpus, "improv", improv.extract(ns, augment=True))
        report.seconds[(f.corpus, "extract")] += time.process_time() - t0

        t0 = time.process_time()
        for ex in mel:
            events = indices_to_melody_events(ex.events)
            for variant in ("basic_rnn", "lookback_rnn", attention):
                check_melody_parity(
                    variant, events, report.count(variant, f.corpus), decode_every=DECODE_EVERY
                )
        for ex in mono:
            check_melody_parity(
                "mono_rnn",
                indices_to_melody_events(ex.events, 0),
                report.count("mono_rnn", f.corpus),
                decode_every=DECODE_EVERY,
            )
        report.seconds[(f.corpus, "melody_parity")] += time.process_time() - t0

        t0 = time.process_time()
        assert len(sheets) % 12 == 0, len(sheets)
        for i in range(0, len(sheets), 12):
            group = sheets[i : i + 12]
            assert [e.transposition for e in group] == list(TRANSPOSITIONS)
            original = group[6]
            report.examples[(f.corpus, "improv_original")] += 1
            events = indices_to_melody_events(original.events)
            figures = columns_to_figures(original.cond)
            check_improv_parity(
                "chord_pitches_improv",
                events,
                figures,
                report.count("chord_pitches_improv", f.corpus),
                decode_every=DECODE_EVERY,
            )
            if _is_triad_only(original.cond):
                for variant in ("basic_improv", "attention_improv"):
                    check_improv_parity(
                        variant,
                        events,
                        figures,
                        report.count(variant, f.corpus),
                        decode_every=DECODE_EVERY,
                    )
            else:
                _assert_both_refuse_triads(events, figures, original)
                report.refused_triads[f.corpus] += 1
            for moved in group:
                _check_transposed(original, moved)
        report.seconds[(f.corpus, "improv_parity")] += time.process_time() - t0
    return report


def _assert_both_refuse_triads(events, figures, original: Extracted) -> None:
    try:
        reference_improv_encoder("basic_improv").encode(figures, events)
    except chords_encoder_decoder.ChordEncodingError:
        pass
    else:
        raise AssertionError("note-seq encoded a chord we call non-triad")
    enc = improv.VARIANTS["basic_improv"].encoding
    e = torch.as_tensor(original.events).long()[None]
    # Conditioning one step longer than the events (the last chord repeated), as in training.
    cond = {k: torch.as_tensor(np.r_[v, v[-1:]]).long()[None] for k, v in original.cond.items()}
    try:
        enc.inputs(e, enc.conditions(e, cond))
    except ValueError as err:
        assert "triad" in str(err)
    else:
        raise AssertionError("our triad encoding accepted a non-triad chord")
