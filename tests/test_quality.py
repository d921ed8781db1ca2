"""The quality bar (modeling/quality.py) on synthetic cases whose answer is known.

The n-gram baseline is checked against a plain-Python Kneser-Ney written from the textbook
formulas, and on sequences whose perplexity is known (a cycle: ~1; i.i.d. uniform: the vocabulary
size). The sample criteria are checked on a synthetic "corpus" (a C-major random walk): more
samples of the same process pass, uniform noise fails, a model that never releases a note fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from modeling import musicstats as MS
from modeling import quality as Q

# ============================================================================ n-gram


def _split(seqs: list[np.ndarray]) -> SimpleNamespace:
    """A stand-in for ExampleSplit's two arrays (flat events + offsets)."""
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    return SimpleNamespace(events=np.concatenate(seqs).astype(np.int16), offsets=offsets)


def _reference_discounts(counts: list[int]) -> list[float]:
    """Chen & Goodman's D1, D2, D3+; a missing count class takes the discount below it."""
    n = Counter(counts)
    y = n[1] / (n[1] + 2 * n[2]) if n[1] + 2 * n[2] else 0.5
    d1 = 1 - 2 * y * n[2] / n[1] if n[1] else y
    d2 = 2 - 3 * y * n[3] / n[2] if n[2] else d1
    d3 = 3 - 4 * y * n[4] / n[3] if n[3] else d2
    return [min(max(v, 0.1), r + 1) for r, v in enumerate((d1, d2, d3))]


def reference_kn(
    seqs: list[list[int]], vocab: int, order: int, context: list[int], w: int
) -> float:
    """Interpolated modified Kneser-Ney, one probability at a time, with dicts and tuples."""
    bos = vocab
    raw: dict[int, Counter] = {k: Counter() for k in range(1, order + 1)}
    for s in seqs:
        padded = [bos] * (order - 1) + list(s)
        for t in range(order, len(padded)):  # labels: every event but the first
            for k in range(1, order + 1):
                raw[k][tuple(padded[t - k + 1 : t + 1])] += 1
    cont: dict[int, Counter] = {k: Counter() for k in range(1, order)}
    for k in range(1, order):
        for gram in raw[k + 1]:
            cont[k][gram[1:]] += 1

    def p(k: int, hist: tuple[int, ...], top: bool) -> float:
        lower = 1.0 / vocab if k == 1 else p(k - 1, hist[1:], False)
        table = raw[k] if top else cont[k]
        d = _reference_discounts(list(table.values()))
        rows = {g: c for g, c in table.items() if g[:-1] == hist}
        total = sum(rows.values())
        if total == 0:
            return lower
        gamma = sum(d[min(c, 3) - 1] for c in rows.values())
        c = rows.get((*hist, w), 0)
        return (max(c - d[min(c, 3) - 1], 0) if c else 0.0) / total + gamma * lower / total

    hist = tuple(([bos] * (order - 1) + list(context))[-(order - 1) :]) if order > 1 else ()
    return p(order, hist, True)


def test_kneser_ney_matches_the_textbook_formulas() -> None:
    rng = np.random.default_rng(0)
    # a skewed source, so every count class (1, 2, 3, 4+) occurs at every order
    seqs = [
        rng.choice(4, size=int(rng.integers(20, 60)), p=[0.5, 0.25, 0.15, 0.1]) for _ in range(8)
    ]
    model = Q.KneserNey(4, 3).fit(*_split(seqs).__dict__.values())
    for order in (1, 2, 3):
        for context in ([], [2], [0, 1], [3, 3, 3], [1, 0, 2, 1]):
            got = model.probabilities(context, order)
            assert got.sum() == pytest.approx(1.0, abs=1e-12)
            want = [
                reference_kn([s.tolist() for s in seqs], 4, order, context, w) for w in range(4)
            ]
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_ngram_perplexity_on_known_sources() -> None:
    rng = np.random.default_rng(1)
    cycle = [np.tile(np.arange(7), 30)[int(rng.integers(0, 7)) :] for _ in range(6)]
    res = Q.ngram_baseline(_split(cycle[:4]), _split(cycle[4:]), 7)
    assert res is not None and res["order"] >= 2
    assert res["perplexity"] < 1.05  # a deterministic cycle is almost certain after one event
    assert res["perplexity_by_order"]["1"] == pytest.approx(7.0, rel=0.02)  # unigram: flat
    assert res["labels"] == sum(len(s) - 1 for s in cycle[4:])
    noise = [rng.integers(0, 10, 400) for _ in range(12)]
    res = Q.ngram_baseline(_split(noise[:10]), _split(noise[10:]), 10)
    assert res is not None and res["perplexity"] == pytest.approx(10.0, rel=0.05)
    assert res["perplexity"] <= min(res["perplexity_by_order"].values()) + 1e-12


def test_ngram_needs_a_train_split_and_valid_events() -> None:
    empty = _split([np.array([3])])  # one event: no label
    assert Q.ngram_baseline(empty, _split([np.arange(5)]), 5) is None
    with pytest.raises(ValueError, match=r"outside 0\.\.4"):
        Q.KneserNey(5, 2).fit(np.array([0, 5]), np.array([0, 2]))
    assert Q.KneserNey(388, 12).order == 7  # int64 keys cap the order for big vocabularies


# ============================================================================ sample criteria

SPAN = 8.0  # seconds of a generated piece (4 bars at 120 qpm)
C_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


def walk(rng: np.random.Generator) -> MS.NoteArrays:
    """A piece of the synthetic corpus: a stepwise C-major line of 8th and quarter notes."""
    degree, t, pitch, start, end = int(rng.integers(7, 14)), 0.0, [], [], []
    while t < SPAN - 1e-9:
        dur = float(rng.choice([0.25, 0.5], p=[0.6, 0.4]))
        degree = int(np.clip(degree + rng.choice([-2, -1, 1, 2]), 0, 20))
        pitch.append(48 + 12 * (degree // 7) + int(C_MAJOR[degree % 7]))
        start.append(t)
        end.append(min(t + dur * 0.9, SPAN))
        t += dur
    return MS.NoteArrays.from_notes(pitch, start, end, total_time=SPAN)


def noise(rng: np.random.Generator) -> MS.NoteArrays:
    """Uniform noise: any pitch, any onset, any length."""
    n = int(rng.integers(10, 40))
    start = np.sort(rng.uniform(0, SPAN, n))
    return MS.NoteArrays.from_notes(
        rng.integers(48, 84, n),
        start,
        np.minimum(start + rng.uniform(0.01, 3, n), SPAN),
        None,
        SPAN,
    )


def stuck(rng: np.random.Generator) -> MS.NoteArrays:
    """A model that never releases: the corpus's first note, then nothing but that note."""
    first = walk(rng)
    return MS.NoteArrays.from_notes(first.pitch[:1], [0.0], [SPAN], total_time=SPAN)


def _assess(
    make: Callable[[np.random.Generator], MS.NoteArrays],
    family: str = "melody",
    seed: int = 5,
    **kw: Any,
) -> dict:
    rng = np.random.default_rng(seed)
    step = 0.125
    pool = Q.pieces([walk(rng) for _ in range(240)], step)
    data = Q.pieces([walk(rng) for _ in range(64)], step)
    generated = Q.pieces([make(rng) for _ in range(32)], step)
    args = {
        "family": family,
        "perplexity": 2.0,
        "ngram": {"perplexity": 3.0},
        "generated": generated,
        "data": data,
        "pool": pool,
        "data_longest": float(pool.longest.max()),
        "rng": np.random.default_rng(seed),
        **kw,
    }
    return Q.assess(**args)


SAMPLE_CRITERIA = ("pitch_class_distance", "interval_distance", "duration_distance")


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_samples_drawn_from_the_data_pass(seed: int) -> None:
    q = _assess(walk, seed=seed)
    assert q["pass"] is True, {k: v for k, v in q["criteria"].items() if not v["pass"]}
    for key in (*SAMPLE_CRITERIA, "density_difference"):
        c = q["criteria"][key]
        assert c["threshold"] == pytest.approx(Q.FLOOR_FACTOR * c["floor"])
        assert c["floor"] > 0
    assert q["noise_floor_sizes"] == [32, 64]


def test_uniform_noise_fails() -> None:
    q = _assess(noise)
    assert q["pass"] is False
    for key in SAMPLE_CRITERIA:
        assert q["criteria"][key]["pass"] is False, key


def test_a_model_that_never_releases_a_note_fails() -> None:
    q = _assess(stuck)
    assert q["criteria"]["duration_distance"]["pass"] is False
    assert q["criteria"]["density_difference"]["pass"] is False
    # a performance model's held notes also break the longest-note bar
    q = _assess(stuck, family="performance")
    c = q["criteria"]["longest_note_seconds"]
    assert c["value"] == pytest.approx(SPAN) and c["threshold"] < SPAN and c["pass"] is False
    assert _assess(walk, family="performance")["criteria"]["longest_note_seconds"]["pass"]


def test_held_out_and_sample_count_criteria() -> None:
    q = _assess(walk, perplexity=2.9)  # 2.9 > 0.95 x 3.0
    c = q["criteria"]["perplexity_vs_ngram"]
    assert c["threshold"] == pytest.approx(2.85) and c["pass"] is False and q["pass"] is False
    q = _assess(walk, ngram=None)  # an eval-only set: the baseline cannot be fitted
    assert q["criteria"]["perplexity_vs_ngram"]["pass"] is None and q["pass"] is False
    rng = np.random.default_rng(0)
    pool = Q.pieces([walk(rng) for _ in range(40)], 0.125)
    few = Q.assess(
        family="melody",
        perplexity=1.0,
        ngram={"perplexity": 2.0},
        generated=pool.take(np.arange(4)),
        data=pool.take(np.arange(4, 20)),
        pool=pool,
        data_longest=1.0,
        rng=rng,
    )
    assert few["criteria"]["samples"]["pass"] is False
    assert few["noise_floor_sizes"] == [4, 16]


def test_improv_and_performance_control_criteria() -> None:
    q = _assess(walk, chord_tones=(0.55, 0.6))  # 0.55 >= 0.9 x 0.6
    assert q["criteria"]["chord_tone_ratio"]["pass"] is True
    assert _assess(walk, chord_tones=(0.5, 0.6))["criteria"]["chord_tone_ratio"]["pass"] is False
    rows = [
        {"requested_density": 2.0, "achieved_density": 2.3},  # 15 % off
        {"requested_density": 8.0, "achieved_density": 6.0},  # 25 % off
        {"histogram_distance": 0.15},
        {"requested_density": 4.0, "achieved_density": 4.1, "histogram_distance": 0.25},
    ]
    c = _assess(walk, family="performance", controls=rows)["criteria"]
    assert c["density_requests_met"]["value"] == pytest.approx(2 / 3)
    assert c["density_requests_met"]["pass"] is False
    assert c["histogram_requests_distance"]["value"] == 0.25
    assert c["histogram_requests_distance"]["pass"] is False


def test_polyphony_texture_inside_the_data_percentiles() -> None:
    rng = np.random.default_rng(3)

    def chords(voices: int) -> MS.NoteArrays:
        base = rng.integers(48, 60, 16)
        pitch = (base[:, None] + np.arange(voices) * 4).reshape(-1)
        start = np.repeat(np.arange(16) * 0.5, voices)
        return MS.NoteArrays.from_notes(pitch, start, start + 0.5, total_time=SPAN)

    pool = Q.pieces([chords(int(rng.integers(3, 5))) for _ in range(100)], 0.125)
    args = {
        "family": "polyphony",
        "perplexity": 1.0,
        "ngram": {"perplexity": 2.0},
        "data": pool.take(np.arange(64)),
        "pool": pool,
        "data_longest": 1.0,
        "rng": rng,
    }
    ok = Q.assess(generated=Q.pieces([chords(4) for _ in range(32)], 0.125), **args)
    assert ok["criteria"]["notes_per_step"]["pass"] is True
    assert ok["criteria"]["notes_per_step"]["low"] == pytest.approx(3.0)
    dense = Q.assess(generated=Q.pieces([chords(8) for _ in range(32)], 0.125), **args)
    assert dense["criteria"]["notes_per_step"]["pass"] is False
    assert dense["criteria"]["pitch_range"]["pass"] is False  # 8 voices a third apart: too wide


def test_criterion_and_verdict() -> None:
    assert Q.criterion(1.0, threshold=2.0)["pass"] is True
    assert Q.criterion(float("nan"), threshold=2.0)["pass"] is False  # nothing measurable
    assert Q.criterion(1.0, threshold=None)["pass"] is None  # no bar to hold it to
    assert Q.criterion(3.0, op="in", low=1.0, high=2.0)["pass"] is False
    q = {"pass": False, "passed": 1, "criteria": {"a": {"pass": True}, "b": {"pass": False}}}
    assert Q.verdict_text(q) == ("fail", "1/2 criteria pass; failing: b")


# ============================================================================ training time


def test_time_to_quality() -> None:
    rows = [
        {"step": s, "eval_loss": loss, "wall_s": 10.0 * s, "train_s": 8.0 * s}
        for s, loss in [(1, 3.0), (2, 2.0), (3, 1.5), (4, 1.0), (5, 1.03), (6, 1.01), (7, 1.0)]
    ]
    got = Q.time_to_quality(rows)
    # step 4 is within 2 % of the final 1.0, step 5 leaves the band (3 %): quality from step 6
    assert got == {"step": 6, "wall_s": 60.0, "train_s": 48.0, "final_eval_loss": 1.0}
    no_clock = [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]
    assert Q.time_to_quality(no_clock)["wall_s"] is None
    assert Q.time_to_quality([])["step"] is None


def test_ngram_fit_is_bounded_by_a_seeded_sample_of_whole_examples() -> None:
    """The full profile's 263M performance events took over 21 GB to count: the fit samples."""
    from types import SimpleNamespace

    rng = np.random.default_rng(5)
    lengths = rng.integers(5, 50, size=300)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    events = rng.integers(0, 10, size=int(offsets[-1])).astype(np.int16)
    flat, sub = Q.sample_examples(events, offsets, 2000, seed=1)
    assert int(sub[-1]) == len(flat) <= 2000 and len(sub) > 2
    starts = {tuple(events[offsets[i] : offsets[i + 1]]) for i in range(300)}
    assert all(tuple(flat[sub[j] : sub[j + 1]]) in starts for j in range(len(sub) - 1))
    again, _ = Q.sample_examples(events, offsets, 2000, seed=1)
    assert np.array_equal(flat, again)
    split = SimpleNamespace(events=events, offsets=offsets)
    capped = Q.ngram_baseline(split, split, 10, max_order=3, max_train_events=2000)
    assert capped is not None and capped["train_events_used"] <= 2000 < capped["train_events"]
    full = Q.ngram_baseline(split, split, 10, max_order=3)
    assert full is not None and full["train_events_used"] == full["train_events"]
