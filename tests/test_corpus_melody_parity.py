"""Corpus parity: the melody and improv families on every file of OpenEWLD, EDM and the Bach
chorales (music21's bundled corpus).

Files are read with the project's reader chain (``pipelines.readers.parse_file``: note-seq first,
the .mxl inner-score fallback for OpenEWLD's apostrophe names, music21 last). Every NoteSequence
goes through our ``extract`` for the melody set (48..84, key C), the mono set (0..128) and the
improv set (lead sheets, 12 transpositions); then, for every example:

* melody set: basic_rnn, lookback_rnn and attention_rnn (edm_rnn on EDM) inputs, labels, last input
  row and decoding equal note-seq's encoders;
* mono set: mono_rnn equals note-seq;
* improv set, original key: chord_pitches_improv, basic_improv and attention_improv equal
  note-seq (where a chord is not a triad, both sides must refuse the triad encodings); the other
  11 keys must be the original's chords and melody moved by the transposition (their encoding is
  the same pure function of events and chord columns, compared on the original keys).

Work is spread over two worker processes (note-seq's KeyMelody encoder is O(T^2) Python).
Figures (examples per set, drops by reason, parity counts, times) are printed; run with ``-s``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from _melody_corpus import CorpusFile, FileReport, check_file

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

WORKERS = max(1, min(2, os.cpu_count() or 1))


def bach_chorale_paths() -> list[Path]:
    """Score files behind ``music21.corpus.chorales.Iterator()`` (one per distinct file)."""
    from music21 import corpus

    paths: list[Path] = []
    for name in corpus.chorales.Iterator(returnType="filename"):
        work = corpus.getWork(name)
        candidates = [Path(p) for p in (work if isinstance(work, list) else [work])]
        scores = [p for p in candidates if p.suffix in (".mxl", ".xml")]
        exact = [p for p in scores if p.stem == str(name).split("/")[-1]]
        if exact or scores:
            paths.append((exact or scores)[0])
    return sorted(set(paths))


def corpus_files(root: Path) -> list[CorpusFile]:
    files = [
        CorpusFile("openewld", str(p))
        for p in sorted((root / "openewld" / "dataset").rglob("*.mxl"))
    ]
    files += [CorpusFile("edm", str(p)) for p in sorted((root / "edm" / "Dataset").glob("*.mid"))]
    files += [CorpusFile("bach", str(p)) for p in bach_chorale_paths()]
    return files


def test_every_example_matches_note_seq(shared_data: Path) -> None:
    start = time.perf_counter()
    files = corpus_files(shared_data)
    by_corpus = Counter(f.corpus for f in files)
    assert by_corpus["openewld"] == 502 and by_corpus["edm"] == 212
    assert by_corpus["bach"] >= 340, by_corpus  # music21 ships ~370 names over ~350 files

    if WORKERS > 1:
        with mp.get_context("spawn").Pool(WORKERS) as pool:
            reports = pool.map(check_file, files, chunksize=4)
    else:
        reports = [check_file(f) for f in files]
    elapsed = time.perf_counter() - start

    total = FileReport.merge(reports)

    def compared(variant: str, corpus: str) -> int:
        return total.count(variant, corpus).sequences

    print(
        f"\nmelody/improv corpus parity: {len(files)} files, {WORKERS} workers, "
        f"{elapsed:.1f} s wall"
    )
    for line in total.summary_lines():
        print("  " + line)

    for corpus in ("openewld", "edm", "bach"):
        read = total.read[corpus]
        assert read["ok"] >= by_corpus[corpus] - 2, (corpus, read)
    # Every set has examples from every corpus, and every example was compared.
    for key, n in total.examples.items():
        assert n > 0, key
    for corpus in ("openewld", "edm", "bach"):
        for kind in ("melody", "mono", "improv"):
            assert total.examples[(corpus, kind)] > 0, (corpus, kind)
        melodies = total.examples[(corpus, "melody")]
        attention = "edm_rnn" if corpus == "edm" else "attention_rnn"
        for variant in ("basic_rnn", "lookback_rnn", attention):
            assert compared(variant, corpus) == melodies, (variant, corpus)
        assert compared("mono_rnn", corpus) == total.examples[(corpus, "mono")]
        originals = total.examples[(corpus, "improv_original")]
        assert compared("chord_pitches_improv", corpus) == originals
        for variant in ("basic_improv", "attention_improv"):
            assert compared(variant, corpus) + total.refused_triads[corpus] == originals
        assert total.examples[(corpus, "improv")] == 12 * originals
    # Known shape of the data (guards against an extraction that silently yields nothing).
    assert total.examples[("openewld", "melody")] >= 500
    assert total.examples[("edm", "melody")] >= 190
