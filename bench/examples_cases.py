"""The in-process cases of ``python -m bench.examples``: chord inference and performance extraction.

``chords``: note-seq's ``chord_inference.infer_chords_for_sequence`` (also with its constant
transition matrix memoised) against ``modeling.families.chords.infer_chords`` on the same quantised
EDM / POP909 pieces (:func:`chord_case`). ``performance``: ``modeling.families.performance.extract``
on its fast path against its note-seq object path on POP909 / ASAP (:func:`perf_case`). Each side
must give identical results; each case returns one report entry, and prints its lines from it
(:func:`print_chords`, :func:`print_performance`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.examples_baseline import STEPS_PER_QUARTER

PERF_CORPUS_HOURS = {"pop909": 62.8, "asap": 93.0}  # the full profile's performance corpora
PERF_GOAL_SPEEDUP = 5.0  # per sequence, against note-seq's objects (the fast=False path)
CHORD_GOAL_SPEEDUP = 5.0  # per piece, against note-seq's infer_chords_for_sequence


def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    """``a / b`` rounded, or None where either side is missing or zero."""
    return None if not a or not b else round(a / b, digits)


def chord_pieces(data_root: Path, files: int) -> tuple[list[Path], list[Any]]:
    """An even sample of EDM and POP909 MIDI files, quantised as the improv pipeline does."""
    import warnings

    warnings.filterwarnings("ignore")
    from note_seq import midi_io

    from modeling.families.base import Dropped
    from modeling.families.melody.extract import quantized_parts

    def sample(paths: list[Path], n: int) -> list[Path]:
        return paths[:: max(1, len(paths) // n)][:n] if n else []

    n_edm = (3 * files + 3) // 4
    edm = sample(sorted((data_root / "edm").rglob("*.mid")), n_edm)
    pop = sample(sorted((data_root / "pop909").rglob("POP909/*/*.mid")), files - len(edm))
    pieces = []
    for path in edm + pop:
        ns = midi_io.midi_file_to_note_sequence(str(path))
        pieces += [q for q in quantized_parts(ns, STEPS_PER_QUARTER) if not isinstance(q, Dropped)]
    return edm + pop, pieces


def infer_all(infer: Any, pieces: list[Any]) -> tuple[float, list[Any]]:
    """Seconds to infer chords on fresh copies of ``pieces``, and what each left behind."""
    from note_seq import chord_inference
    from note_seq.protobuf import music_pb2

    copies = []
    for piece in pieces:
        fresh = music_pb2.NoteSequence()
        fresh.CopyFrom(piece)
        copies.append(fresh)
    raised: list[Any] = [None] * len(copies)
    start = time.perf_counter()
    for i, qns in enumerate(copies):
        try:
            infer(qns)
        except chord_inference.ChordInferenceError as err:
            raised[i] = (type(err).__name__, str(err))
    elapsed = time.perf_counter() - start
    return elapsed, [
        error or [(ta.time, ta.quantized_step, ta.text) for ta in qns.text_annotations]
        for error, qns in zip(raised, copies, strict=True)
    ]


def chord_case(data_root: Path, files: int, repeat: int) -> dict[str, Any]:
    """note-seq's chord inference vs motif's on the same pieces, interleaved, best of N."""
    from note_seq import chord_inference

    from modeling.families import chords

    paths, pieces = chord_pieces(data_root, files)
    if not pieces:
        raise SystemExit(f"bench: no MIDI pieces found under {data_root} (edm, pop909)")
    original = chord_inference._key_chord_transition_distribution
    memo: dict[tuple[bytes, float, float], Any] = {}

    def memoised(dist: Any, key_change_prob: float, chord_change_prob: float) -> Any:
        key = (dist.tobytes(), key_change_prob, chord_change_prob)
        if key not in memo:
            memo[key] = original(dist, key_change_prob, chord_change_prob)
        return memo[key]

    def memoised_infer(qns: Any) -> None:
        chord_inference._key_chord_transition_distribution = memoised
        try:
            chord_inference.infer_chords_for_sequence(qns)
        finally:
            chord_inference._key_chord_transition_distribution = original

    chords.inference_model(0.001, 0.5, 0.01)  # built once per process, like note-seq's import
    base_s, memo_s, ours_s = [], [], []
    identical = True
    for _ in range(repeat):
        seconds, theirs = infer_all(chord_inference.infer_chords_for_sequence, pieces)
        base_s.append(seconds)
        seconds, memoised_out = infer_all(memoised_infer, pieces)
        memo_s.append(seconds)
        seconds, ours = infer_all(chords.infer_chords, pieces)
        ours_s.append(seconds)
        identical = identical and ours == theirs == memoised_out
    n = len(pieces)
    entry = {
        "files": len(paths),
        "pieces": n,
        "notes": sum(len(piece.notes) for piece in pieces),
        "inferred": sum(isinstance(r, list) for r in ours),
        "identical": identical,
        "baseline_s": round(min(base_s), 3),
        "memoised_s": round(min(memo_s), 3),
        "ours_s": round(min(ours_s), 3),
        "baseline_s_per_piece": round(min(base_s) / n, 4),
        "memoised_s_per_piece": round(min(memo_s) / n, 4),
        "ours_s_per_piece": round(min(ours_s) / n, 5),
        "speedup_vs_baseline": ratio(min(base_s), min(ours_s), 1),
        "speedup_vs_memoised": ratio(min(memo_s), min(ours_s), 1),
        "goal_speedup": CHORD_GOAL_SPEEDUP,
    }
    entry["meets_speed_goal"] = identical and (entry["speedup_vs_baseline"] or 0) >= (
        CHORD_GOAL_SPEEDUP
    )
    return entry


def perf_sequences(data_root: Path, files: int) -> dict[str, list[Any]]:
    """An even sample of POP909 and ASAP MIDI files as NoteSequences, per corpus."""
    import note_seq

    found = {
        "pop909": sorted((data_root / "pop909/POP909").glob("[0-9][0-9][0-9]/[0-9][0-9][0-9].mid")),
        "asap": sorted((data_root / "asap").glob("**/*.mid")),
    }
    out: dict[str, list[Any]] = {}
    for corpus, paths in found.items():
        want = max(1, files // 2)
        step = max(1, len(paths) // want)
        out[corpus] = []
        for path in paths[::step][:want]:
            try:
                out[corpus].append(note_seq.midi_file_to_note_sequence(str(path)))
            except note_seq.MIDIConversionError:
                continue
    return out


def perf_case(data_root: Path, files: int, repeat: int) -> dict[str, Any]:
    """Fast vs note-seq performance extraction on the same sequences, interleaved, best of N."""
    from modeling.families import performance as Q
    from modeling.families.base import Dropped
    from modeling.families.performance.config import PerformanceExtractConfig

    def run(seqs: list[Any], cfg: Any, fast: bool) -> tuple[float, list[Any]]:
        start = time.perf_counter()
        got = [list(Q.extract(ns, cfg, augment=True, fast=fast)) for ns in seqs]
        elapsed = time.perf_counter() - start
        return elapsed, [
            [
                x.reason
                if isinstance(x, Dropped)
                else (x.stretch, x.transposition, x.events.tobytes())
                for x in items
            ]
            for items in got
        ]

    sequences = perf_sequences(data_root, files)
    entry: dict[str, Any] = {"corpora": {}, "goal_speedup": PERF_GOAL_SPEEDUP, "identical": True}
    projected = {"baseline_s": 0.0, "ours_s": 0.0}
    for corpus, seqs in sequences.items():
        names = ("PIANO",) if corpus == "pop909" else ()
        hours = sum(ns.total_time for ns in seqs) / 3600
        c: dict[str, Any] = {"sequences": len(seqs), "hours": round(hours, 2)}
        for bins in (0, 32):
            cfg = PerformanceExtractConfig(num_velocity_bins=bins, instrument_names=names)
            base_s, ours_s = [], []
            for _ in range(repeat):
                seconds, theirs = run(seqs, cfg, fast=False)
                base_s.append(seconds)
                seconds, ours = run(seqs, cfg, fast=True)
                ours_s.append(seconds)
                entry["identical"] = entry["identical"] and ours == theirs
            b, o = min(base_s), min(ours_s)
            c[f"v{bins}"] = {
                "examples": sum(not isinstance(x, str) for items in ours for x in items),
                "baseline_s_per_sequence": round(b / len(seqs), 4),
                "ours_s_per_sequence": round(o / len(seqs), 5),
                "speedup_vs_baseline": ratio(b, o, 1),
            }
            projected["baseline_s"] += b / hours * PERF_CORPUS_HOURS[corpus]
            projected["ours_s"] += o / hours * PERF_CORPUS_HOURS[corpus]
        entry["corpora"][corpus] = c
    entry["projected_full_s"] = {k: round(v, 1) for k, v in projected.items()}
    entry["meets_speed_goal"] = entry["identical"] and all(
        (v["speedup_vs_baseline"] or 0) >= PERF_GOAL_SPEEDUP
        for c in entry["corpora"].values()
        for k, v in c.items()
        if k.startswith("v")
    )
    return entry


def print_chords(c: dict[str, Any], repeat: int) -> None:
    """The chords case's two report lines, from its :func:`chord_case` entry."""
    print(
        f"chords: {c['pieces']} pieces ({c['notes']} notes, {c['inferred']} harmonised) from "
        f"{c['files']} MIDI files; identical to note-seq: {c['identical']}; "
        f"best of {repeat}"
    )
    print(
        f"  note-seq {c['baseline_s_per_piece']} s/piece, memoised note-seq "
        f"{c['memoised_s_per_piece']} s/piece, motif {c['ours_s_per_piece']} s/piece: "
        f"{c['speedup_vs_baseline']}x vs note-seq, {c['speedup_vs_memoised']}x vs memoised; "
        f"goal >= {CHORD_GOAL_SPEEDUP}x: {'met' if c['meets_speed_goal'] else 'MISSED'}"
    )


def print_performance(p: dict[str, Any]) -> None:
    """The performance case's report lines (one per corpus and velocity setting, then the
    projection), from its :func:`perf_case` entry."""
    for corpus, c in p["corpora"].items():
        for key in ("v0", "v32"):
            v = c[key]
            print(
                f"performance {corpus} {key}: {c['sequences']} sequences ({c['hours']} h), "
                f"{v['examples']} examples; note-seq {v['baseline_s_per_sequence']} s/seq, "
                f"motif {v['ours_s_per_sequence']} s/seq: {v['speedup_vs_baseline']}x"
            )
    proj = p["projected_full_s"]
    print(
        f"performance: identical to note-seq: {p['identical']}; projected full POP909 + ASAP "
        f"(both velocity settings, all augmented): note-seq {proj['baseline_s']} s, motif "
        f"{proj['ours_s']} s; goal >= {PERF_GOAL_SPEEDUP}x: "
        f"{'met' if p['meets_speed_goal'] else 'MISSED'}"
    )
