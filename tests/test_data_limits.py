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
    grid = np.cumsum(rng.choice([0.125, 0.25, 0.5], size=200))  # 16ths, 8ths and quarters
    score = timing_and_dynamics([_notes(grid, np.full(200, 80))])
    assert score["on_grid"] == 1.0 and score["velocities"] == 1
    assert abs(score["grid_seconds"] - 0.125) < 1e-9
    played = np.cumsum(rng.uniform(0.08, 0.6, size=200))  # free timing, varied loudness
    performance = timing_and_dynamics([_notes(played, rng.integers(30, 110, size=200))])
    assert performance["on_grid"] < 0.5 and performance["velocities"] > 30

    note = data_limits([_result(score)])
    assert note[0] == "## What the data limits" and "quantised scores" in note[2]
    assert "or dynamics" in note[2]
    assert data_limits([_result(performance)]) == []
    assert data_limits([_result(score, unit="16th-note step")]) == []  # a grid by construction
