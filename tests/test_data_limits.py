"""The report's "what the data limits" note: measured on a set's notes, not guessed from names."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from modeling import musicstats as MS
from modeling.evaluation.report import data_limits
from modeling.evaluation.sets import timing_and_dynamics


def _notes(starts: np.ndarray, velocity: np.ndarray) -> MS.NoteArrays:
    return MS.NoteArrays(
        pitch=np.full(len(starts), 60),
        start=starts,
        end=starts + 0.1,
        velocity=velocity,
        total_time=float(starts[-1] + 0.1),
    )


def _result(td: dict, unit: str = "second") -> SimpleNamespace:
    return SimpleNamespace(data={"timing_and_dynamics": td}, example_set="perf", unit=unit)


def test_a_quantised_score_is_called_one_and_a_performance_is_not() -> None:
    rng = np.random.default_rng(0)
    # ten 10 s windows each: a score on a 150 ms grid (16ths, 8ths, quarters at 100 qpm, stored
    # at 10 ms) against free timing with varied loudness, both on the 10 ms time grid
    score = [
        _notes(np.round(np.cumsum(rng.choice([0.15, 0.3, 0.6], size=40)), 2), np.full(40, 80))
        for _ in range(10)
    ]
    played = [
        _notes(np.round(np.cumsum(rng.uniform(0.08, 0.6, size=40)), 2), rng.integers(30, 110, 40))
        for _ in range(10)
    ]
    s, p = timing_and_dynamics(score), timing_and_dynamics(played)
    assert s["pieces"] == p["pieces"] == 10
    assert s["top3_gap_share"] == 1.0 and s["velocities"] == 1
    assert p["top3_gap_share"] < 0.5 and p["velocities"] > 30

    note = data_limits([_result(s)])
    assert note[0] == "## What the data limits" and "quantised scores" in note[2]
    assert "or dynamics" in note[2]
    assert data_limits([_result(p)]) == []
    assert data_limits([_result(s, unit="16th-note step")]) == []  # a grid by construction
