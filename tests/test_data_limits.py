"""The report's "what the data limits" note: measured on a set's notes, not guessed from names."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from modeling import musicstats as MS
from modeling.evaluation.report import data_limits
from modeling.evaluation.sets import timing_and_dynamics, window_densities


def _notes(starts: np.ndarray, velocity: np.ndarray) -> MS.NoteArrays:
    return MS.NoteArrays(
        pitch=np.full(len(starts), 60),
        start=starts,
        end=starts + 0.1,
        velocity=velocity,
        total_time=float(starts[-1] + 0.1),
    )


def _result(td: dict, unit: str = "second", controls: list | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        data={"timing_and_dynamics": td}, example_set="perf", unit=unit, controls=controls or []
    )


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


def test_window_densities_count_the_notes_of_each_whole_window() -> None:
    """Notes per second in the 3 s from each onset with a whole window after it."""
    even = _notes(np.arange(0.0, 10.0, 0.25), np.full(40, 80))  # 4 notes/s for 10 s
    d = window_densities([even])
    assert len(d) == int(np.sum(even.start + 3.0 <= even.total_time + 1e-9))
    assert np.allclose(d, 4.0)
    sparse = _notes(np.array([0.0, 1.0, 2.0, 2.5, 6.0]), np.full(5, 80))
    # windows from 0, 1, 2 and 2.5 s (6 s has none after it): 4, 3, 2 and 1 notes in 3 s
    assert np.allclose(window_densities([sparse]), [4 / 3, 1.0, 2 / 3, 1 / 3])


def test_the_report_says_how_much_of_the_data_each_density_request_covers() -> None:
    """A request the data never play covers 0 % of their windows; one they always play, 100 %."""
    even = [_notes(np.arange(0.0, 10.0, 0.1), np.full(100, 80)) for _ in range(4)]  # 10 notes/s
    td = timing_and_dynamics(even)
    asks = [{"requested_density": 2.0}, {"requested_density": 10.0}, {"pitch_class_histogram": 1}]
    note = data_limits([_result(td, controls=asks)])
    line = next(x for x in note if "within 20 % of each density request" in x)
    assert "2 notes/s: 0.0 %" in line and "10 notes/s: 100.0 %" in line
    assert not any("within 20 %" in x for x in data_limits([_result(td)]))  # nothing requested
