"""The one training loop for every variant: example set -> checkpoints, metrics, MLflow model.

    python -m modeling.train --variant NAME --examples DIR --output DIR [...]   (see --help)
    torchrun --nproc_per_node 2 -m modeling.train ...        (DDP: gloo on CPU, nccl on GPU)

This module is the stable entry point (``dvc.yaml``, ``flows``, the Makefile and the tests run
``python -m modeling.train`` and import these names); the work lives in :mod:`modeling.training`,
one module per responsibility: :mod:`~modeling.training.cli` (flags, ``main``),
:mod:`~modeling.training.spec` (validation -> :class:`RunSpec`, resume keys),
:mod:`~modeling.training.loop` (:func:`train`), :mod:`~modeling.training.metrics`
(:class:`Scorer`, :func:`evaluate`), :mod:`~modeling.training.distributed` (:class:`Dist`) and
:mod:`~modeling.training.outputs` (metrics.json, loss curve).

Inputs: a variant from :mod:`modeling.variants` (encoding + default hparams) and an example set
from ``pipelines/examples.py`` (:mod:`modeling.data`). The batch contract is the one in
``docs/ARCHITECTURE.md``: ``cond = enc.conditions(E, S)``, ``x = enc.inputs(E[:, :-1], cond)``,
``y = enc.labels(E, cond)[:, 1:]``, loss over ``mask[:, 1:]`` only, so padding never counts.

Outputs in ``--output``: ``checkpoints/`` (last K training checkpoints + ``best.pt``, see
:mod:`modeling.checkpoint`), ``config.json``, ``metrics.json`` (final eval/train metrics, a DVC
metric), ``loss_curve.csv`` (a DVC plot) and ``loss_curve.png``; and, unless ``--no-mlflow``, an
MLflow run with a registered model version (:mod:`modeling.registry`). A crashed run re-run with
the same command resumes on the same trajectory, also after ``dvc repro`` deleted ``--output``
(the resume store, :func:`resume_key`).

Metrics (Magenta's ``events_rnn_graph``): loss, perplexity, accuracy, event_accuracy,
no_event_accuracy and loss per musical unit (``loss_per_step``); the family says what its default
event and musical unit are (:mod:`modeling.training.metrics`).
"""

from __future__ import annotations

import sys

from modeling.cli import UsageError
from modeling.training.cli import build_parser, main
from modeling.training.distributed import Dist, pick_device, setup_distributed
from modeling.training.loop import train
from modeling.training.metrics import (
    METRICS,
    PRECISIONS,
    Scorer,
    default_event_label,
    evaluate,
    neutral_pad,
    summarize,
    unit_weights,
)
from modeling.training.outputs import CSV_FIELDS, write_outputs
from modeling.training.spec import (
    DEFAULTS,
    RunSpec,
    apply_params,
    check_init_compatible,
    prepare,
    resolve_init_source,
    resume_key,
    resume_material,
)

__all__ = [
    "CSV_FIELDS",
    "DEFAULTS",
    "METRICS",
    "PRECISIONS",
    "Dist",
    "RunSpec",
    "Scorer",
    "UsageError",
    "apply_params",
    "build_parser",
    "check_init_compatible",
    "default_event_label",
    "evaluate",
    "main",
    "neutral_pad",
    "pick_device",
    "prepare",
    "resolve_init_source",
    "resume_key",
    "resume_material",
    "setup_distributed",
    "summarize",
    "train",
    "unit_weights",
    "write_outputs",
]

if __name__ == "__main__":
    sys.exit(main())
