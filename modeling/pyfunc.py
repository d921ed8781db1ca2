"""Registered motif models as MLflow ``python_function`` models: a registry lookup gives a model
you can call.

    import base64, mlflow, pandas as pd
    model = mlflow.pyfunc.load_model("models:/attention_rnn@champion")
    out = model.predict(pd.DataFrame([{"primer_melody": "[60, -2, 62, -2]", "num_steps": 64,
                                       "seed": 7}]))
    midi = base64.b64decode(out.midi_base64[0])

How it connects. :meth:`modeling.registry.Tracker.finish` calls :func:`save` to write the best
checkpoint as an MLflow model directory and logs that directory as the training run's ``model``
artifact, whose URI becomes the registered version's source (so registration keeps its
idempotency key). The directory holds:

* ``MLmodel``: the ``python_function`` flavor, the signature (:func:`signature`: the request
  columns the variant's family takes, every one optional) and an input example
  (:func:`input_example`);
* ``pyfunc_model.py``: the model's code (:mod:`modeling.pyfunc_model`, MLflow "models from
  code": loading runs it, nothing is unpickled);
* ``artifacts/model.pt``: the checkpoint, weights + JSON config only, still read with
  ``torch.load(weights_only=True)`` (:data:`CHECKPOINT` is where ``modeling.registry`` and
  ``modeling.generate`` look for it; a version registered before this layout has ``model.pt``
  at the top and is read from there);
* ``artifacts/config.json``: the training config;
* ``code/modeling/``: this package, so ``mlflow models serve --env-manager local`` imports the
  code the weights were trained with, from any working directory.

Saving loads and runs nothing of the model (the signature is given, not inferred), so it adds
about 0.1 s to a registration (0.8 s for the first in a process).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from modeling.checkpoint import link_or_copy
from modeling.registry import PYFUNC_CKPT as CHECKPOINT  # where the loaders look for it

CONFIG = "artifacts/config.json"
_PACKAGE = Path(__file__).resolve().parent  # modeling/: shipped as the model's code path
MODEL_CODE = _PACKAGE / "pyfunc_model.py"
"""The model's code file (MLflow "models from code"): run when a version is loaded, so nothing
is unpickled, and kept apart from this module so training never imports the generator."""
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_REQUIREMENTS = ("mlflow", "torch", "note-seq", "numpy", "pandas", "pretty_midi", "protobuf")

# request column -> MLflow type. Lists (primers, densities, histograms) are strings in the CLI's
# syntax, e.g. "[60, -2, 62]", so every row has one type per column. Every column is optional,
# but MLflow refuses a "long" column with gaps (pandas holds it as float64): rows that give
# different count columns go in separate predict calls.
_COMMON = {
    "num_outputs": "long",
    "num_steps": "long",
    "num_bars": "double",
    "num_seconds": "double",
    "qpm": "double",
    "primer_midi_base64": "string",
    "temperature": "double",
    "beam_size": "long",
    "branch_factor": "long",
    "steps_per_iteration": "long",
    "key": "string",
    "scale": "string",
    "seed": "long",
}
# A family adds its own columns (``REQUEST_COLUMNS`` of :mod:`modeling.families`); a model
# conditioned on controls adds these, in the CLI's syntax, and ``controls`` (a control schedule).
_CONTROL_EXAMPLES = {
    "notes_per_second": "4",
    "pitch_class_histogram": "[2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1]",
}
OUTPUT_COLUMNS = {
    "request_index": "long",
    "sample_index": "long",
    "variant": "string",
    "seed": "long",
    "events": "string",
    "log_likelihood": "double",
    "num_events": "long",
    "num_notes": "long",
    "total_time": "double",
    "reached_length": "boolean",
    "midi_base64": "string",
}
"""One row per generated sample; ``events`` is a JSON list, ``midi_base64`` a standard MIDI file."""


def request_columns(variant: str) -> dict[str, str]:
    """The request columns ``variant`` takes (its family's, plus the controls it is trained on)."""
    from modeling.families import load_family
    from modeling.variants import get_variant

    cfg = get_variant(variant)
    family = load_family(cfg.family)
    columns = {**_COMMON, **family.REQUEST_COLUMNS}
    controls = family.request_controls(cfg.encoding)
    columns.update({name: "string" for name in controls})
    if controls:
        columns["controls"] = "string"
    return columns


def input_example(variant: str) -> pd.DataFrame:
    """A small request the variant accepts (saved with the model; ``models serve`` shows it)."""
    from modeling.families import load_family
    from modeling.variants import get_variant

    family = load_family(get_variant(variant).family)
    row: dict[str, Any] = {"num_outputs": 1, "temperature": 1.0, "seed": 0}
    row.update(family.EXAMPLE_REQUEST)
    columns = request_columns(variant)
    row.update({k: v for k, v in _CONTROL_EXAMPLES.items() if k in columns})
    return pd.DataFrame([row])


def signature(variant: str) -> Any:
    """Input: the variant's request columns, all optional. Output: :data:`OUTPUT_COLUMNS`."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec(t, n, required=False) for n, t in request_columns(variant).items()])
    outputs = Schema([ColSpec(t, n) for n, t in OUTPUT_COLUMNS.items()])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _requirements() -> list[str]:
    """Pinned versions of what loading and generating import (no inference: it would load the
    model in a subprocess at every registration)."""
    out = []
    for name in _REQUIREMENTS:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


@contextlib.contextmanager
def _quiet_save() -> Iterator[None]:
    """No progress bars in a training's output (MLflow "downloads" each artifact into the model
    directory) and no INFO chatter from the pyfunc flavor."""
    logger = logging.getLogger("mlflow.pyfunc")
    level, bar = logger.level, os.environ.get(_PROGRESS_BAR)
    logger.setLevel(logging.ERROR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        logger.setLevel(level)
        if bar is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = bar


def save(path: Path, checkpoint: Path, config: dict[str, Any]) -> Path:
    """Write ``checkpoint`` (+ ``config``) as an MLflow ``python_function`` model at ``path``
    (which must not exist or be empty). Nothing is loaded or run: it takes well under a second.
    """
    variant = str(config["variant"])
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        link_or_copy(checkpoint, src / "model.pt")
        (src / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        with _quiet_save():
            mlflow.pyfunc.save_model(
                path=str(path),
                python_model=str(MODEL_CODE),
                artifacts={"checkpoint": str(src / "model.pt"), "config": str(src / "config.json")},
                code_paths=[str(_PACKAGE)],
                signature=signature(variant),
                input_example=input_example(variant),
                pip_requirements=_requirements(),
                metadata={"motif_variant": variant, "motif_family": str(config.get("family", ""))},
            )
    missing = [p for p in (CHECKPOINT, CONFIG) if not (path / p).is_file()]
    if missing:  # MLflow placed the artifacts elsewhere: the loaders would not find them
        raise RuntimeError(f"MLflow model at {path} lacks {', '.join(missing)}")
    return path
