"""Checkpoints: atomic writes, last-K + best retention, ``weights_only`` loading.

``modeling/train.py`` writes a *training* checkpoint every ``save_every`` steps (model, optimizer,
RNG, step, metric history) and a *model* checkpoint (weights + config only) for the best eval loss;
``modeling/registry.py`` logs the model checkpoint to MLflow and rebuilds an :class:`EventRNN` from
it; ``--init-from`` reads either kind. Payloads hold only tensors, numbers, strings, lists and dicts
(the architecture is a JSON string), so ``torch.load(..., weights_only=True)`` reads every one and
no pickle of project classes is ever executed.

Writes go to a temporary file in the same directory, are fsync'ed and then ``os.replace``d, so a
crash (``kill -9``) leaves either the previous file or the new one, never a torn one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from modeling.families.base import VariantConfig
from modeling.hparams import HParamsError, hparams_from_dict
from modeling.model import EventRNN

FORMAT_VERSION = 1
_CKPT = re.compile(r"ckpt-(\d{8})\.pt")
BEST = "best.pt"
_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here (one line, for exit 2)."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic(path: Path, write: Callable[[Any], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide outputs from other users
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, nothing between."""
    _atomic(Path(path), lambda fh: fh.write(data))


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_save(obj: Any, path: Path | str) -> None:
    """``torch.save`` made atomic."""
    _atomic(Path(path), lambda fh: torch.save(obj, fh))


def load(path: Path | str) -> dict[str, Any]:
    """A checkpoint payload via ``weights_only=True``; :class:`CheckpointError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt / foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a motif checkpoint (format {FORMAT_VERSION})")
    for key in ("config", "model"):
        if key not in payload:
            raise CheckpointError(f"{path} lacks {key!r}")
    return payload


def config_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The architecture/run config stored (as JSON) in a payload."""
    return json.loads(payload["config"])


def model_payload(
    model: EventRNN, config: dict[str, Any], step: int, metrics: dict[str, float] | None = None
) -> dict[str, Any]:
    """Weights + config only: what the registry serves and ``--init-from`` reads."""
    return {
        "format": FORMAT_VERSION,
        "kind": "model",
        "config": json.dumps(config, sort_keys=True),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "step": int(step),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
    }


def build_model(
    config: dict[str, Any], variant: VariantConfig | None = None
) -> tuple[EventRNN, VariantConfig]:
    """An untrained :class:`EventRNN` shaped as ``config`` describes, and its variant.

    The variant comes from :func:`modeling.variants.get_variant` unless given; its encoding must
    still produce the event space and sizes the checkpoint was trained with.
    """
    from modeling.variants import UnknownVariantError, get_variant

    try:
        base = variant or get_variant(str(config["variant"]))
        hp = hparams_from_dict(config["hparams"])
    except (KeyError, UnknownVariantError, HParamsError) as exc:
        raise CheckpointError(f"checkpoint config unusable: {exc}") from None
    enc = base.encoding
    for key, now in (
        ("event_space", enc.event_space),
        ("input_size", enc.input_size),
        ("num_classes", enc.num_classes),
    ):
        if key in config and config[key] != now:
            raise CheckpointError(
                f"checkpoint of {config['variant']} has {key} {config[key]!r} but the variant's "
                f"encoding now has {now!r}"
            )
    cfg = VariantConfig(base.name, base.family, enc, hp, base.description)
    attention = config.get("attention", "parallel")
    model = EventRNN(cfg, hp, attention="parallel" if attention == "none" else attention)
    return model, cfg


def load_state(model: EventRNN, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy ``state`` into ``model``; a key or shape mismatch is a :class:`CheckpointError`."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"{where}: parameters differ (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(
                f"{where}: {k} has shape {tuple(v.shape)}, model needs {tuple(own[k].shape)}"
            )
    model.load_state_dict(state)


def load_model(path: Path | str) -> tuple[EventRNN, VariantConfig, dict[str, Any]]:
    """(model in eval mode, variant with the checkpoint's hparams, payload) of a checkpoint."""
    payload = load(path)
    model, cfg = build_model(config_of(payload))
    load_state(model, payload["model"], str(path))
    return model.eval(), cfg, payload


class CheckpointDir:
    """``<output>/checkpoints``: ``ckpt-<step>.pt`` (last ``keep_last``) and ``best.pt``."""

    def __init__(self, root: Path | str, keep_last: int = 2) -> None:
        self.root = Path(root)
        self.keep_last = max(1, int(keep_last))

    def path_for(self, step: int) -> Path:
        return self.root / f"ckpt-{step:08d}.pt"

    @property
    def best_path(self) -> Path:
        return self.root / BEST

    def steps(self) -> list[tuple[int, Path]]:
        """Saved training checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for p in self.root.iterdir():
            m = _CKPT.fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found)

    def save(self, step: int, payload: dict[str, Any]) -> Path:
        """Write the step's checkpoint atomically, then drop all but the newest ``keep_last``."""
        path = self.path_for(step)
        atomic_save(payload, path)
        for _, old in self.steps()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, payload: dict[str, Any]) -> Path:
        atomic_save(payload, self.best_path)
        return self.best_path

    def latest(self) -> tuple[dict[str, Any], Path] | None:
        """The newest readable training checkpoint (a torn newer file is skipped, not fatal)."""
        for _, path in reversed(self.steps()):
            try:
                payload = load(path)
            except CheckpointError:
                continue
            if payload.get("kind") == "train":
                return payload, path
        return None
