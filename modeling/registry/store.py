"""The MLflow store: where it is, opening a client on it, and the names every part shares.

Store: ``$MLFLOW_TRACKING_URI``, default ``sqlite:///mlruns/mlflow.db`` with artifacts under
``mlruns/`` (both relative to the working directory, the repo root in DVC stages). MLflow creates
a fresh sqlite store's tables on first open with no guard against a second process doing the same
(``table ... already exists``), so :func:`client` opens a local sqlite store under an exclusive
lock file beside it (``<db>.init.lock``, :mod:`modeling.registry.locks`).

Every other part of :mod:`modeling.registry` reaches MLflow through :func:`client`, and reports a
failed lookup as a :class:`RegistryError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modeling import quiet_libraries
from modeling.registry.locks import file_lock

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
CHAMPION = "champion"
LATEST = "latest"
PYFUNC_CKPT = "artifacts/model.pt"  # = modeling.pyfunc.CHECKPOINT (not imported: needs mlflow)


class RegistryError(ValueError):
    """A registry lookup that failed (one line, for exit 2)."""


def tracking_uri() -> str:
    """The store every lookup and training uses (the environment wins over the default)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sqlite_path(uri: str | None = None) -> Path | None:
    """The database file of a local sqlite store (the stores a lock file can guard), else None."""
    uri = uri or tracking_uri()
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def client(create: bool = False) -> Any:
    """An ``MlflowClient`` on :func:`tracking_uri`.

    A local sqlite store is created only when ``create`` (a training about to log); a lookup in
    a store that does not exist is a :class:`RegistryError`, not a new empty database. The first
    open (which creates the tables) runs under ``<db>.init.lock``, so trainings starting at once
    on a store that does not exist yet all get it.
    """
    uri = tracking_uri()
    db = sqlite_path(uri)
    if db is not None:
        if not create and not db.is_file():
            raise RegistryError(f"no MLflow store at {db} (MLFLOW_TRACKING_URI={uri})")
        db.parent.mkdir(parents=True, exist_ok=True)
        # absolute, so MLflow's per-URI store cache cannot point at another working directory
        db = db.resolve()
        uri = f"sqlite:///{db}"
    import mlflow
    from mlflow import MlflowClient

    quiet_libraries()  # after the import: mlflow sets its logger to INFO when imported
    mlflow.set_tracking_uri(uri)
    if db is None:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    with file_lock(db.with_name(f"{db.name}.init.lock"), required=create):
        c = MlflowClient(tracking_uri=uri, registry_uri=uri)
        # open both stores now, inside the lock: whichever opens a fresh file creates the tables
        c.search_experiments(max_results=1)
        c.search_registered_models(max_results=1)
    return c


def mlflow_error() -> type[Exception]:
    """MLflow's exception class, imported only when a caller needs to catch it (importing
    mlflow costs seconds)."""
    from mlflow.exceptions import MlflowException

    return MlflowException
