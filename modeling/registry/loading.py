"""Reading models back: a registry, run or file reference to a ready :class:`EventRNN`.

``modeling.generation``, ``modeling.evaluation``, the studio and ``--init-from`` read models with
:func:`load_generator_model` / :func:`resolve_model_file`, always through
``torch.load(weights_only=True)`` (:mod:`modeling.checkpoint`). A version is an MLflow
``python_function`` model with the checkpoint at :data:`~modeling.registry.store.PYFUNC_CKPT`; a
version registered before that layout (``model.pt`` at the top of its folder) still loads.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from modeling import checkpoint as ckpt
from modeling.families.base import VariantConfig
from modeling.model import EventRNN
from modeling.registry.store import LATEST, PYFUNC_CKPT, RegistryError, client, mlflow_error


def version_of(c: Any, uri: str) -> Any:
    """ModelVersion of ``models:/<name>@<alias>`` or ``models:/<name>/<version|latest>``."""
    MlflowException = mlflow_error()
    body = uri.removeprefix("models:/")
    try:
        if "/" in body:
            name, ref = body.split("/", 1)
            if ref.isdigit():
                return c.get_model_version(name, ref)
            if ref.lower() == LATEST:
                return c.get_model_version_by_alias(name, LATEST)
            raise RegistryError(f"{uri}: use models:/<name>@<alias> or models:/<name>/<version>")
        if "@" in body:
            name, alias = body.rsplit("@", 1)
            return c.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise RegistryError(f"{uri}: {exc.message.splitlines()[0]}") from None
    raise RegistryError(f"{uri}: use models:/<name>@<alias> or models:/<name>/<version>")


def resolve_model_file(uri: str) -> Path:
    """Local path of the checkpoint a registry (``models:/``) or run (``runs:/``) URI names.

    A version is an MLflow model directory with the checkpoint at
    :data:`modeling.pyfunc.CHECKPOINT`; a version registered before that layout is a folder with
    ``model.pt`` at the top, read from there.
    """
    import mlflow

    c = client()
    MlflowException = mlflow_error()
    if uri.startswith("models:/"):
        source = version_of(c, uri).source
    elif uri.startswith("runs:/"):
        source = uri
    else:
        raise RegistryError(f"not a models:/ or runs:/ URI: {uri}")
    with contextlib.suppress(MlflowException, OSError):  # absent: the layout before MLmodel
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{source}/{PYFUNC_CKPT}"))
        if path.is_file():
            return path
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source))
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"{uri}: cannot fetch artifacts ({str(exc).splitlines()[0]})") from None
    path = local / "model.pt" if local.is_dir() else local
    if not path.is_file():
        raise RegistryError(
            f"{uri}: no {PYFUNC_CKPT} or model.pt in {source}; re-register it by training "
            f"again: python -m modeling.train --variant <variant> ..."
        )
    return path


def load_generator_model(uri: str) -> tuple[EventRNN, VariantConfig, dict[str, Any]]:
    """A ready model for generation: ``(EventRNN in eval mode, VariantConfig, metadata)``.

    ``uri`` is ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/...`` or a local
    checkpoint (file, or a training output directory -> its ``checkpoints/best.pt``). Weights are
    read with ``weights_only=True``; no optimizer or training state is loaded and gradients are
    off.
    """
    meta: dict[str, Any] = {"uri": uri}
    if uri.startswith(("models:/", "runs:/")):
        c = client()
        if uri.startswith("models:/"):
            mv = version_of(c, uri)
            meta.update(
                {
                    "name": mv.name,
                    "version": int(mv.version),
                    "aliases": list(mv.aliases or []),
                    "run_id": mv.run_id,
                    "tags": dict(mv.tags or {}),
                }
            )
        path = resolve_model_file(uri)
    else:
        path = Path(uri)
        if path.is_dir():
            path = next(
                (
                    p
                    for p in (path / "checkpoints" / ckpt.BEST, path / ckpt.BEST, path / "model.pt")
                    if p.is_file()
                ),
                path / ckpt.BEST,
            )
    model, cfg, payload = ckpt.load_model(path)
    model.requires_grad_(False)
    config = ckpt.config_of(payload)
    meta.update(
        {
            "path": str(path),
            "config": config,
            "step": int(payload.get("step", -1)),
            "metrics": dict(payload.get("metrics", {})),
            "data_version": config.get("data_version", ""),
        }
    )
    return model, cfg, meta
