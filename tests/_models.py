"""Tiny trained models for the end-to-end tests (evaluate, generate, pyfunc, studio).

Each of those tests trains a few variants for a few steps on the tiny sets of
``tests/_examples.py`` / ``tests/_generate_sets.py`` in a throw-away MLflow store; this module
writes those sets, builds the ``modeling.train`` command line and scopes the store, so the tests
differ only in which variants they train and how.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from _examples import write_example_set
from _generate_sets import performance_sequences, polyphony_sequences, write_events_set

TINY_NET = "batch_size=8,rnn_layer_sizes=[16]"
"""The hparams every tiny end-to-end model trains with (a variant may append more)."""

TINY_RUNS: dict[str, tuple[str, int, str]] = {
    "basic_rnn": ("mel", 4, ""),
    "attention_rnn": ("mel", 3, ""),
    "lookback_rnn": ("mel", 3, ""),
    "attention_improv": ("imp", 3, ""),
    "chord_pitches_improv": ("imp", 4, ""),
    "polyphony": ("poly", 6, ",learning_rate=0.05"),
    "multiconditioned_performance_with_dynamics": ("perf", 6, ",learning_rate=0.05"),
    "performance_with_dynamics": ("perf", 4, ",learning_rate=0.05"),
}
"""variant -> (its tiny set from :func:`write_family_sets`, steps, hparams appended to
:data:`TINY_NET`): how every end-to-end test trains that variant, so their models agree."""


def write_family_sets(root: Path, rng: np.random.Generator) -> None:
    """One tiny example set per family under ``root``: ``mel``, ``imp``, ``poly``, ``perf``."""
    write_example_set(root / "mel", name="mel")
    write_example_set(root / "imp", name="imp", family="improv", chords=True)
    for name, family, space, sequences in (
        ("poly", "polyphony", "polyphony:0-127", polyphony_sequences),
        ("perf", "performance", "performance:v32", performance_sequences),
    ):
        write_events_set(
            root / name,
            name=name,
            family=family,
            event_space=space,
            train=sequences(rng, 24),
            eval_=sequences(rng, 6),
        )


def train_argv(
    variant: str,
    examples: Path,
    output: Path,
    steps: int,
    *,
    hparams: str = "",
    eval_every: int = 0,
) -> list[str]:
    """``modeling.train`` arguments of a tiny model (``hparams`` appended to :data:`TINY_NET`;
    evaluated every ``eval_every`` steps, by default once at the end)."""
    return [
        "--variant",
        variant,
        "--examples",
        str(examples),
        "--output",
        str(output),
        "--hparams",
        TINY_NET + hparams,
        "--num-steps",
        str(steps),
        "--eval-every",
        str(eval_every or steps),
        "--quiet",
    ]


def train_tiny(
    variants: Iterable[str],
    sets: Path,
    runs: Path,
    *,
    eval_every: int = 0,
    register: Container[str] | None = None,
) -> dict[str, Path]:
    """Train each of ``variants`` as :data:`TINY_RUNS` says, from the sets under ``sets`` into
    ``runs/<variant>``; returns the run folders. Only the variants in ``register`` (default: all)
    reach the MLflow registry, so call it inside :func:`tracking_store`."""
    from modeling import train

    out = {}
    for variant in variants:
        set_name, steps, hp = TINY_RUNS[variant]
        run = runs / variant
        argv = train_argv(variant, sets / set_name, run, steps, hparams=hp, eval_every=eval_every)
        if register is not None and variant not in register:
            argv.append("--no-mlflow")
        assert train.main(argv) == 0, variant
        out[variant] = run
    return out


@contextmanager
def tracking_store(uri: str) -> Iterator[None]:
    """``MLFLOW_TRACKING_URI`` set to ``uri`` and torch on one thread, both restored after (the
    tests share a process; training would otherwise take every core)."""
    old_uri, old_threads = os.environ.get("MLFLOW_TRACKING_URI"), torch.get_num_threads()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri


def assert_step_matches_forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Stepping ``model`` one input row at a time gives the logits of one pass over ``x`` (the
    generation path equals the training one); returns those logits."""
    with torch.no_grad():
        full = model(x)
        state, outs = None, []
        for t in range(x.shape[1]):
            logits, state = model.step(x[:, t], state)
            outs.append(logits)
    torch.testing.assert_close(torch.stack(outs, 1), full, atol=1e-5, rtol=1e-5)
    return full
