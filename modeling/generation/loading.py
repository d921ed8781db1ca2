"""Loading a model for generation: the registry or a checkpoint, both through
:func:`modeling.registry.load_generator_model` (``weights_only`` loading), and ``--hparams``.

Every problem is a :class:`~modeling.generation.request.GenerateError` about the ``model`` field
(or ``hparams``), so the CLI prints one line and the studio highlights its model picker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modeling import first_line

from .request import GenerateError


def _registered_names() -> list[str]:
    from modeling import registry

    c = registry.client()
    return sorted(m.name for m in c.search_registered_models())


def load_model(
    model_uri: str | None, checkpoint: str | None, config: str | None
) -> tuple[Any, dict[str, Any]]:
    """(EventRNN in eval mode, metadata) from the registry or a checkpoint; one-line errors."""
    from modeling import registry
    from modeling.checkpoint import CheckpointError

    if model_uri and checkpoint:
        raise GenerateError("model", "give {model} or {checkpoint}, not both")
    uri = model_uri or checkpoint
    if uri is None:
        if not config:
            raise GenerateError(
                "model",
                "give {model} models:/<name>@<alias>, {checkpoint} PATH or "
                "{config} NAME (= models:/NAME@champion)",
            )
        uri = f"models:/{config}@champion"
    if checkpoint is None and not uri.startswith(("models:/", "runs:/")):
        raise GenerateError(
            "model",
            f"{{model}} {uri}: expected models:/<name>@<alias> or "
            "models:/<name>/<version>; use {checkpoint} for a file",
        )
    if uri.startswith("models:/"):
        name = uri.removeprefix("models:/").split("@", 1)[0].split("/", 1)[0]
        try:
            names = _registered_names()
        except registry.RegistryError as exc:  # e.g. no store yet
            raise GenerateError(
                "model", f"{exc}; train a model first or use {{checkpoint}}"
            ) from None
        except Exception as exc:  # mlflow store unreachable / corrupt
            first = first_line(exc)
            raise GenerateError(
                "model", f"registry at {registry.tracking_uri()}: {first}"
            ) from None
        if name not in names:
            listed = ", ".join(names) if names else "none"
            raise GenerateError(
                "model",
                f"model {name!r} is not in the registry at "
                f"{registry.tracking_uri()}; registered: {listed}",
            )
    elif checkpoint is not None and not Path(checkpoint).exists():
        raise GenerateError("checkpoint", f"{{checkpoint}} {checkpoint}: no such file or directory")
    try:
        model, _cfg, meta = registry.load_generator_model(uri)
    except (registry.RegistryError, CheckpointError) as exc:
        raise GenerateError("model", str(exc)) from None
    if config and config != model.variant:
        raise GenerateError(
            "config", f"{{config}} {config} but the model is a {model.variant} model"
        )
    return model.eval(), meta


def apply_hparams(model: Any, text: str | None) -> dict[str, Any]:
    """Magenta's ``--hparams`` at generation: architecture keys must match the checkpoint;
    training-only keys (batch_size, dropout, clip, learning rate) have no effect here."""
    from modeling.hparams import HParamsError, hparams_to_dict, parse_hparams

    if not text or not text.strip():
        return {}
    try:
        hp = parse_hparams(text, model.hparams)
    except HParamsError as exc:
        raise GenerateError("hparams", str(exc), topic="hparams") from None
    for key in ("rnn_layer_sizes", "attn_length"):
        want, have = getattr(hp, key), getattr(model.hparams, key)
        if want != have:
            raise GenerateError(
                "hparams",
                f"{{hparams}} {key}={list(want) if isinstance(want, tuple) else want}"
                f" differs from the checkpoint's "
                f"{list(have) if isinstance(have, tuple) else have}",
            )
    return hparams_to_dict(hp)
