"""Magenta-style ``--hparams`` strings <-> :class:`~modeling.families.base.HParams`.

``modeling/train.py`` takes ``--hparams "batch_size=64,rnn_layer_sizes=[64,64]"`` (the syntax of
Magenta's ``tf.contrib.training.HParams.parse``) and applies it on top of the variant's defaults;
``params.yaml`` holds the same overrides as a mapping (:func:`hparams_from_mapping`), and
:func:`format_hparams` turns such a mapping back into the command-line string a DVC stage passes.
Checkpoints and MLflow store hparams as JSON (:func:`hparams_to_dict` / :func:`hparams_from_dict`).

Every problem is a :class:`HParamsError` whose message is one line naming the offending key and, for
unknown keys, the valid ones, so the CLI can print it and exit 2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from modeling.families.base import HParams


class HParamsError(ValueError):
    """A malformed, misspelled or out-of-range hyper-parameter (one line, for exit 2)."""


_VALID = tuple(sorted(f.name for f in fields(HParams)))

# name = [list] | scalar, separated by commas (commas inside brackets belong to the list).
_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\[[^\]]*\]|[^,\[\]]*)\s*(?:,|$)")


def _valid_keys() -> str:
    return ", ".join(_VALID)


def _split(text: str) -> list[tuple[str, str]]:
    """``"a=1,b=[2,3]"`` -> ``[("a", "1"), ("b", "[2,3]")]`` (Magenta's grammar, no nesting)."""
    items: list[tuple[str, str]] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m or m.end() == pos:
            raise HParamsError(
                f"cannot parse hparams at {text[pos:]!r}; expected name=value pairs separated by "
                f"commas, lists in brackets (e.g. batch_size=64,rnn_layer_sizes=[64,64])"
            )
        items.append((m.group(1), m.group(2).strip()))
        pos = m.end()
    return items


def _convert_scalar(name: str, raw: Any, default: Any) -> Any:
    """Convert one value to the type of the field's default (bool before int: bool is an int)."""
    kind = type(default)
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            low = str(raw).strip().lower()
            if low in ("true", "1"):
                return True
            if low in ("false", "0"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            if isinstance(raw, str) and not re.fullmatch(r"[+-]?\d+", raw.strip()):
                raise ValueError(raw)
            return int(raw)
        if isinstance(default, float):
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
        return kind(raw)
    except (TypeError, ValueError):
        raise HParamsError(f"hparam {name}: cannot read {raw!r} as {kind.__name__}") from None


def _convert(name: str, raw: Any) -> Any:
    default = getattr(HParams(), name)
    if isinstance(default, tuple):
        if isinstance(raw, str):
            body = raw.strip()
            if not (body.startswith("[") and body.endswith("]")):
                raise HParamsError(f"hparam {name}: expected a list like [128,128], got {raw!r}")
            parts = [p for p in (s.strip() for s in body[1:-1].split(",")) if p]
        elif isinstance(raw, (list, tuple)):
            parts = list(raw)
        else:
            raise HParamsError(f"hparam {name}: expected a list, got {raw!r}")
        element = default[0] if default else 0
        return tuple(_convert_scalar(name, p, element) for p in parts)
    return _convert_scalar(name, raw, default)


def validate(hp: HParams) -> HParams:
    """Range checks Magenta leaves to a TF crash deep in graph building."""
    problems = []
    if hp.batch_size < 1:
        problems.append(f"batch_size must be >= 1 (got {hp.batch_size})")
    if not hp.rnn_layer_sizes or any(s < 1 for s in hp.rnn_layer_sizes):
        problems.append(
            f"rnn_layer_sizes must be a non-empty list of sizes >= 1 "
            f"(got {list(hp.rnn_layer_sizes)})"
        )
    if not 0.0 < hp.dropout_keep_prob <= 1.0:
        problems.append(f"dropout_keep_prob must be in (0, 1] (got {hp.dropout_keep_prob})")
    if hp.attn_length < 0:
        problems.append(f"attn_length must be >= 0 (got {hp.attn_length})")
    if hp.clip_norm <= 0:
        problems.append(f"clip_norm must be > 0 (got {hp.clip_norm})")
    if hp.learning_rate <= 0:
        problems.append(f"learning_rate must be > 0 (got {hp.learning_rate})")
    if problems:
        raise HParamsError("; ".join(problems))
    return hp


def hparams_from_mapping(values: Mapping[str, Any], base: HParams | None = None) -> HParams:
    """``base`` (default: HParams()) with ``values`` applied, type-checked and range-checked."""
    base = base or HParams()
    bad = sorted(set(values) - set(_VALID))
    if bad:
        raise HParamsError(f"unknown hparam(s) {', '.join(bad)}; valid: {_valid_keys()}")
    changes = {name: _convert(name, raw) for name, raw in values.items()}
    return validate(base.override(**changes))


def parse_hparams(text: str | None, base: HParams | None = None) -> HParams:
    """Apply a Magenta ``--hparams`` string to ``base``; a key given twice is an error."""
    base = base or HParams()
    if text is None or not text.strip():
        return validate(base)
    values: dict[str, str] = {}
    for name, raw in _split(text):
        if name in values:
            raise HParamsError(f"hparam {name} given twice in {text!r}")
        values[name] = raw
    return hparams_from_mapping(values, base)


def format_hparams(values: Mapping[str, Any] | HParams) -> str:
    """The ``--hparams`` string for a mapping (e.g. a ``params.yaml`` entry) or an HParams."""
    if isinstance(values, HParams):
        values = hparams_to_dict(values)
    out = []
    for name, value in values.items():
        if isinstance(value, (list, tuple)):
            out.append(f"{name}=[{','.join(str(v) for v in value)}]")
        else:
            out.append(f"{name}={value}")
    return ",".join(out)


def hparams_to_dict(hp: HParams) -> dict[str, Any]:
    """JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(hp).items()}


def hparams_from_dict(values: Mapping[str, Any]) -> HParams:
    """Inverse of :func:`hparams_to_dict` (checkpoints, registry metadata)."""
    return hparams_from_mapping(values, HParams())
