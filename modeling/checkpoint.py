"""Checkpoints: atomic writes, last-K + best retention, ``weights_only`` loading.

``modeling/train.py`` writes a *training* checkpoint every ``save_every`` steps (model, optimizer,
RNG, step, metric history) and a *model* checkpoint (weights + config only) for the best eval loss;
``modeling/registry/`` logs the model checkpoint to MLflow and rebuilds an :class:`EventRNN` from
it; ``--init-from`` reads either kind. Payloads hold only tensors, numbers, strings, lists and dicts
(the architecture is a JSON string), so ``torch.load(..., weights_only=True)`` reads every one and
no pickle of project classes is ever executed.

Writes go to a temporary file in the same directory, are fsync'ed and then ``os.replace``d, so a
crash (``kill -9``) leaves either the previous file or the new one, never a torn one; the
temporary file such a crash strands is removed when the next run starts (:meth:`clean_tmp`).

:class:`ResumeStore` keeps hard links to the newest training checkpoints (and ``best.pt``) outside
the output directory, keyed by the run's config, because ``dvc repro`` deletes a stage's outputs
before it re-runs the stage: the links keep the files alive so the re-run resumes instead of
starting from step 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
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
# what _atomic / link_or_copy name their temporary files (".<final name>.<random>.tmp")
_TMP = re.compile(r"\.(ckpt-\d{8}\.pt|best\.pt)\.\w+\.tmp")
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


def link_or_copy(src: Path | str, dst: Path | str) -> None:
    """Make ``dst`` the same file as ``src``: a hard link (no bytes written), a copy where the
    file system cannot link; atomic like every other write here."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.link{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(src, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)


def _unreadable(exc: BaseException) -> str:
    """Why torch could not read a file, in one line and without torch's advice to retry with
    ``weights_only=False`` (which would execute whatever pickle the file holds)."""
    text = str(exc).strip()
    refused = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\s*\n|$)", text, re.S)
    if refused:
        # the first sentence only: the rest advises allow-listing the class
        detail = re.split(r"(?<=\.)\s", " ".join(refused.group(1).split()))[0].rstrip(".")
        return (
            "not a checkpoint of plain tensors and data (corrupt, or it holds pickled objects, "
            f"which motif never loads: {detail})"
        )
    if isinstance(exc, EOFError) or "EOF" in text:
        return "the file is empty or truncated"
    if "zip archive" in text or "PytorchStreamReader" in text:
        return "not a torch.save file, or a corrupt one (its zip structure is unreadable)"
    lines = [ln for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
    return lines[0].strip() if lines else type(exc).__name__


def load(path: Path | str) -> dict[str, Any]:
    """A checkpoint payload via ``weights_only=True``; :class:`CheckpointError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt / foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {_unreadable(exc)}") from None
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


FIRST_INPUT_WEIGHT = "lstms.0.weight_ih_l0"
"""The only weight that reads the model's inputs when the first layer is a plain LSTM."""


def with_control_inputs(state: dict[str, torch.Tensor], controls: int) -> dict[str, torch.Tensor]:
    """``state`` for inputs with ``controls`` more leading columns (the conditioned encodings put
    controls before the event one-hot), their weights zero: the widened model computes exactly
    what the source did, whatever the controls, and learns to use them from there."""
    weight = state[FIRST_INPUT_WEIGHT]
    zeros = weight.new_zeros(weight.shape[0], controls)
    return {**state, FIRST_INPUT_WEIGHT: torch.cat([zeros, weight], dim=1)}


def with_new_terms(state: dict[str, torch.Tensor], model: EventRNN) -> dict[str, torch.Tensor]:
    """``state`` of a source without some of ``model``'s output terms (none at all, or no
    control terms), given ``model``'s fresh ones: they start at zero (no term), so the model
    computes exactly what the source did."""
    if model.terms is None:
        return state
    new = {k: v for k, v in model.state_dict().items() if k.startswith("terms.") and k not in state}
    return {**state, **new} if new else state


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

    def clean_tmp(self) -> list[Path]:
        """Remove temporary files a killed writer left behind (call before this run writes)."""
        if not self.root.is_dir():
            return []
        stale = [p for p in self.root.iterdir() if _TMP.fullmatch(p.name)]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

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


class ResumeStore:
    """``<root>/<name>-<key>/``: links to a run's newest training checkpoints and ``best.pt``.

    ``key`` is a digest of everything that shapes the run's trajectory (see
    ``modeling.train.resume_key``), so a run with other settings never resumes from this state;
    stores of the same output under another key are deleted when a run starts, and a run's own
    store when it finishes, so at most one store per output exists and only while it is unfinished.
    """

    def __init__(self, root: Path | str, name: str, key: str, keep_last: int = 2) -> None:
        self.root = Path(root)
        self.name = name
        self.key = key
        self.dir = self.root / f"{name}-{key}"
        self.ckpts = CheckpointDir(self.dir, keep_last)

    def latest(self) -> tuple[dict[str, Any], Path] | None:
        """The newest readable training checkpoint here, if any."""
        return self.ckpts.latest()

    @property
    def best_path(self) -> Path:
        return self.dir / BEST

    def prepare(self, record: dict[str, Any]) -> None:
        """Drop this output's stores under other keys (``record["output"]`` names the output)
        and stale temporary files; write ``run.json`` (what the key stands for, for whoever
        looks in here)."""
        pattern = re.compile(re.escape(self.name) + r"-[0-9a-f]{16}")
        for other in self.root.iterdir() if self.root.is_dir() else ():
            if other == self.dir or not pattern.fullmatch(other.name) or not other.is_dir():
                continue
            try:
                owner = json.loads((other / "run.json").read_text()).get("output")
            except (OSError, ValueError, AttributeError):
                owner = None  # half-written: nobody's
            if owner in (None, record.get("output")):
                shutil.rmtree(other, ignore_errors=True)
        self.ckpts.clean_tmp()
        atomic_write_text(self.dir / "run.json", json.dumps(record, indent=2, sort_keys=True))

    def add(self, path: Path) -> None:
        """Link a just-written training checkpoint here and keep only the newest ``keep_last``."""
        link_or_copy(path, self.dir / path.name)
        for _, old in self.ckpts.steps()[: -self.ckpts.keep_last]:
            old.unlink(missing_ok=True)

    def add_best(self, path: Path) -> None:
        link_or_copy(path, self.best_path)

    def remove(self) -> None:
        """Forget the state (the run finished); the root goes too once empty."""
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()
