"""MLflow tracking and model registry: one run per training, one registered model per variant.

A training (``modeling.training``) logs to an MLflow run and registers its best checkpoint as a
version of the registered model named after its variant, so
``mlflow.pyfunc.load_model("models:/<variant>@champion")`` and ``mlflow models serve`` work;
generation, evaluation and the studio read models back from here. The parts, in the order a
training meets them:

- :mod:`~modeling.registry.store`: where the store is (``$MLFLOW_TRACKING_URI``, default
  ``sqlite:///mlruns/mlflow.db``), :func:`client`, :class:`RegistryError`, the alias names;
- :mod:`~modeling.registry.locks`: the lock files that serialise processes on a local store;
- :mod:`~modeling.registry.provenance`: the example set's data version and the git commit;
- :mod:`~modeling.registry.tracker`: :class:`Tracker`, a training's run (params, metrics,
  artifacts, crash-safe ownership);
- :mod:`~modeling.registry.gate`: :func:`register` and the ``champion`` gate (the rule, and how
  concurrent registrations are serialised);
- :mod:`~modeling.registry.card`: model cards (descriptions, searchable tags, the quality
  verdict :func:`set_quality` records);
- :mod:`~modeling.registry.loading`: :func:`load_generator_model` / :func:`resolve_model_file`,
  always ``torch.load(weights_only=True)``;
- :mod:`~modeling.registry.cli`: :func:`list_models` and ``motif models``
  (``python -m modeling.registry``).

Everything callers use is re-exported here: ``from modeling import registry; registry.client()``.
Dependencies point one way: store <- card, loading <- gate <- tracker; cli needs only store.
"""

from __future__ import annotations

from modeling.registry.card import QUALITY_TAG, model_card, set_quality
from modeling.registry.cli import list_models, main
from modeling.registry.gate import register
from modeling.registry.loading import load_generator_model, resolve_model_file, version_of
from modeling.registry.loading import version_of as _version_of
from modeling.registry.provenance import data_version, git_commit
from modeling.registry.store import (
    CHAMPION,
    DEFAULT_TRACKING_URI,
    LATEST,
    PYFUNC_CKPT,
    RegistryError,
    client,
    mlflow_error,
    tracking_uri,
)
from modeling.registry.store import mlflow_error as _mlflow_error
from modeling.registry.tracker import Tracker, fail_orphaned_runs, owner_tags, proc_stat
from modeling.registry.tracker import owner_tags as _owner_tags
from modeling.registry.tracker import proc_stat as _proc_stat

__all__ = [
    "CHAMPION",
    "DEFAULT_TRACKING_URI",
    "LATEST",
    "PYFUNC_CKPT",
    "QUALITY_TAG",
    "RegistryError",
    "Tracker",
    "_mlflow_error",
    "_owner_tags",
    "_proc_stat",
    "_version_of",
    "client",
    "data_version",
    "fail_orphaned_runs",
    "git_commit",
    "list_models",
    "load_generator_model",
    "main",
    "mlflow_error",
    "model_card",
    "owner_tags",
    "proc_stat",
    "register",
    "resolve_model_file",
    "set_quality",
    "tracking_uri",
    "version_of",
]
