"""Tiny trained models for the end-to-end tests (evaluate, generate, pyfunc, studio).

Each of those tests trains a few variants for a few steps on the tiny sets of
``tests/_examples.py`` / ``tests/_generate_sets.py`` in a throw-away MLflow store; this module
writes those sets, builds the ``modeling.train`` command line and scopes the store, so the tests
differ only in which variants they train and how.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from _examples import write_example_set
from _generate_sets import performance_sequences, polyphony_sequences, write_events_set

TINY_NET = "batch_size=8,rnn_layer_sizes=[16]"
"""The hparams every tiny end-to-end model trains with (a variant may append more)."""


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
